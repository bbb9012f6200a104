"""Backfill: send every object already under a prefix through the same path as the OSS trigger.

    python scripts/backfill.py my-media --prefix library/ --mode invoke --account-id 123   # async-invoke FC
    python scripts/backfill.py my-media --prefix uploads/ --mode local --param LibraryFpDBId=...  # in-process
    python scripts/backfill.py my-media --prefix library/ --dry-run                        # list only

For each object it builds the event OSS would have sent (`{"events":[{"eventName":"ObjectCreated:...",
"eventSource":"acs:oss",...}]}`, reference §3) and hands its bytes to `submit_on_upload`, so the function's
idempotent claim (object key + ETag + library) makes a backfill safe to repeat or to run next to live uploads.
Only keys some OSS trigger in template.yml fires for are sent (`--all-keys` to send every key). Calls are
rate-limited with `shared.mps.ratelimit.TokenBucket`; `--start-after KEY` resumes an interrupted run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Protocol
from urllib.parse import quote

import typer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/backfill.py` without an installed checkout
    sys.path.insert(0, str(ROOT))

from engine.template import Template, TemplateError, load_template, parse_assignments  # noqa: E402
from shared.mps.ratelimit import RateLimiter, TokenBucket  # noqa: E402

FUNCTION = "submit_on_upload"
Submit = Callable[[bytes], Any]


class ObjectInfo(Protocol):
    """What a listing gives per object (oss2's SimplifiedObjectInfo)."""

    key: str
    etag: str
    size: int
    last_modified: int
    type: str


# -------------------------------------------------------------------------------------- list & events


def list_objects(bucket: Any, prefix: str, *, start_after: str = "") -> Iterator[ObjectInfo]:
    """Every object under `prefix` (oss2 `ObjectIterator`, paged), in key order, after `start_after`.
    Folder placeholders (`dir/`) are skipped: there is nothing to fingerprint."""
    import oss2

    for info in oss2.ObjectIterator(bucket, prefix=prefix, marker=start_after, max_keys=1000):
        if not info.key.endswith("/"):
            yield info


_EVENT_BY_TYPE = {"Multipart": "ObjectCreated:CompleteMultipartUpload", "Appendable": "ObjectCreated:AppendObject"}


def event_name_for(info: ObjectInfo) -> str:
    """The event OSS sent when this object was written, judged from its type."""
    return _EVENT_BY_TYPE.get(getattr(info, "type", "") or "", "ObjectCreated:PutObject")


def oss_event(
    bucket: str,
    region: str,
    info: ObjectInfo,
    *,
    account_id: str = "",
    event_name: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The FC OSS-trigger event for one existing object, field for field as OSS sends it (reference §3)."""
    etag = info.etag.strip('"').upper()  # OSS events carry the ETag upper-case, without quotes
    event_time = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(info.last_modified or time.time()))
    return {
        "events": [
            {
                "eventName": event_name or event_name_for(info),
                "eventSource": "acs:oss",
                "eventTime": event_time,
                "eventVersion": "1.0",
                "oss": {
                    "bucket": {
                        "arn": f"acs:oss:{region}:{account_id}:{bucket}",
                        "name": bucket,
                        "ownerIdentity": account_id,
                    },
                    "object": {
                        "deltaSize": int(info.size),
                        "eTag": etag,
                        # URL-encoded like the recorded events: the parser decodes it back to the exact key.
                        "key": quote(info.key, safe="/"),
                        "size": int(info.size),
                    },
                    "ossSchemaVersion": "1.0",
                    "ruleId": "fpscreen-backfill",
                },
                "region": region,
                "requestParameters": {"sourceIPAddress": ""},
                "responseElements": {"requestId": (request_id or uuid.uuid4().hex[:24]).upper()},
                "userIdentity": {"principalId": account_id},
            }
        ]
    }


def event_bytes(event: dict[str, Any]) -> bytes:
    """FC hands the handler the event as UTF-8 JSON bytes."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def trigger_filter(template: Template, bucket: str) -> Callable[[ObjectInfo], bool]:
    """True for objects an OSS trigger of `FUNCTION` would have fired for (the bucket is compared once known)."""
    triggers = [t for t in template.oss_triggers() if t.function == FUNCTION]

    def select(info: ObjectInfo) -> bool:
        name = event_name_for(info)
        return any(t.fires_for(name, info.key) and (t.bucket.startswith("${") or t.bucket == bucket) for t in triggers)

    return select


# ------------------------------------------------------------------------------------------- backfill


@dataclass
class Stats:
    listed: int = 0
    submitted: int = 0
    skipped: int = 0
    failed: int = 0
    last_key: str = ""  # resume point for --start-after
    errors: list[tuple[str, str]] = field(default_factory=list)


def backfill(
    objects: Iterable[ObjectInfo],
    *,
    bucket: str,
    region: str,
    submit: Submit,
    limiter: RateLimiter,
    select: Callable[[ObjectInfo], bool] | None = None,
    account_id: str = "",
    dry_run: bool = False,
    limit: int | None = None,
    on_progress: Callable[[Stats, str], None] | None = None,
) -> Stats:
    """Build an event per selected object and `submit` its bytes, at most `limiter`'s rate. A failure is
    recorded and the run goes on: each object is independent, and a rerun only redoes what is missing."""
    stats = Stats()
    for info in objects:
        if limit is not None and stats.submitted + stats.failed >= limit:
            break
        stats.listed += 1
        if select is not None and not select(info):
            stats.skipped += 1
        elif dry_run:
            stats.submitted += 1
        else:
            payload = event_bytes(oss_event(bucket, region, info, account_id=account_id))
            limiter.acquire()
            try:
                submit(payload)
            except Exception as exc:  # one bad object must not stop the run
                stats.failed += 1
                stats.errors.append((info.key, f"{type(exc).__name__}: {exc}"))
            else:
                stats.submitted += 1
        stats.last_key = info.key
        if on_progress is not None:
            on_progress(stats, info.key)
    return stats


# ------------------------------------------------------------------------------------------ submitters


def invoke_submitter(client: Any, service: str, function: str = FUNCTION, qualifier: str | None = None) -> Submit:
    """Invoke the deployed function asynchronously, as OSS does (fc2 `invoke_function`)."""

    def submit(payload: bytes) -> Any:
        return client.invoke_function(
            service, function, payload=payload, headers={"x-fc-invocation-type": "Async"}, qualifier=qualifier
        )

    return submit


def local_context(template: Template, function: str = FUNCTION) -> SimpleNamespace:
    """An FC-like context for an in-process call; credentials come from the environment (shared.credentials)."""
    fn = template.function(function)
    return SimpleNamespace(
        request_id=f"backfill-{uuid.uuid4().hex}",
        credentials=None,
        function=SimpleNamespace(name=fn.name, handler=fn.handler, memory=fn.memory_size, timeout=fn.timeout),
        service=SimpleNamespace(name=template.service.name, log_project="", log_store="", qualifier="LATEST"),
        region=str(template.region or ""),
        account_id="",
    )


def load_local_handler(template: Template, function: str = FUNCTION) -> Callable[[bytes, Any], Any]:
    """The function's own handler, imported from its file (functions/<name>/index.py)."""
    fn = template.function(function)
    path = fn.handler_file(template.root)
    spec = importlib.util.spec_from_file_location(f"fpscreen_local_{function}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"no handler module at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, fn.handler_attr)


def local_submitter(handler: Callable[[bytes, Any], Any], context: Callable[[], Any]) -> Submit:
    """Call the handler in-process, one fresh context (request id) per event, as FC would."""
    return lambda payload: handler(payload, context())


def apply_function_env(
    template: Template, function: str = FUNCTION, environ: dict[str, str] | None = None
) -> list[str]:
    """Give an in-process run the function's template environment (variables already set win).
    Returns the variables still holding an unfilled `${Parameter}`."""
    env = os.environ if environ is None else environ
    unfilled = []
    for name, value in template.function(function).environment.items():
        env.setdefault(name, value)
        if "${" in env[name]:
            unfilled.append(name)
    return unfilled


# ------------------------------------------------------------------------------------------------ CLI


class Mode(str, Enum):
    invoke = "invoke"
    local = "local"


def _parse_params(values: list[str]) -> dict[str, str]:
    try:
        return parse_assignments(values)
    except TemplateError as exc:
        raise typer.BadParameter(str(exc)) from exc


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    bucket: Annotated[str, typer.Argument(help="OSS bucket to backfill")],
    prefix: Annotated[str, typer.Option(help="only objects under this prefix")] = "",
    mode: Annotated[Mode, typer.Option(help="invoke: async-invoke the deployed function; local: in-process")] = (
        Mode.invoke
    ),
    template_path: Annotated[Path, typer.Option("--template")] = ROOT / "template.yml",
    param: Annotated[list[str] | None, typer.Option(help="template parameter NAME=VALUE (repeatable)")] = None,
    region: Annotated[str, typer.Option(help="bucket/FC region (the stack's region)")] = "cn-shanghai",
    endpoint: Annotated[
        str | None, typer.Option(help="OSS endpoint (default: https://oss-<region>.aliyuncs.com)")
    ] = None,
    account_id: Annotated[str | None, typer.Option(envvar="ALIBABA_CLOUD_ACCOUNT_ID")] = None,
    qps: Annotated[float, typer.Option(help="submissions per second")] = 10.0,
    start_after: Annotated[str, typer.Option(help="resume after this key")] = "",
    limit: Annotated[int | None, typer.Option(help="stop after this many submissions")] = None,
    all_keys: Annotated[bool, typer.Option(help="also send keys no OSS trigger would fire for")] = False,
    dry_run: Annotated[bool, typer.Option(help="list and count; submit nothing")] = False,
) -> None:
    import oss2
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from shared.credentials import resolve_credentials

    console = Console(highlight=False, emoji=False, markup=False)
    parameters = _parse_params(param or [])
    parameters["ALIYUN::Region"] = region
    template = load_template(template_path, parameters)
    creds = resolve_credentials(None)
    auth = (
        oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
        if creds.security_token
        else oss2.Auth(creds.access_key_id, creds.access_key_secret)
    )
    oss_bucket = oss2.Bucket(auth, endpoint or f"https://oss-{region}.aliyuncs.com", bucket)

    submit: Submit = lambda _payload: None  # noqa: E731 - replaced below unless --dry-run
    if not dry_run and mode is Mode.invoke:
        if not account_id:
            raise typer.BadParameter("--account-id (or ALIBABA_CLOUD_ACCOUNT_ID) is required with --mode invoke")
        import fc2

        client = fc2.Client(
            endpoint=f"https://{account_id}.{region}.fc.aliyuncs.com",
            accessKeyID=creds.access_key_id,
            accessKeySecret=creds.access_key_secret,
            securityToken=creds.security_token or "",
        )
        submit = invoke_submitter(client, template.service.name)
    elif not dry_run:
        unfilled = apply_function_env(template)
        if unfilled:
            raise typer.BadParameter(
                f"{unfilled} need template parameters: pass --param or set them in the environment"
            )
        submit = local_submitter(load_local_handler(template), lambda: local_context(template))

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("listing…", total=None)

        def on_progress(stats: Stats, key: str) -> None:
            bar.update(
                task, description=f"{stats.submitted} sent, {stats.skipped} skipped, {stats.failed} failed  {key}"
            )

        stats = backfill(
            list_objects(oss_bucket, prefix, start_after=start_after),
            bucket=bucket,
            region=region,
            submit=submit,
            limiter=TokenBucket(rate=qps, burst=max(1.0, min(qps, 10.0))),
            select=None if all_keys else trigger_filter(template, bucket),
            account_id=account_id or "",
            dry_run=dry_run,
            limit=limit,
            on_progress=on_progress,
        )
    verb = "would send" if dry_run else "sent"
    console.print(f"{stats.listed} listed, {verb} {stats.submitted}, skipped {stats.skipped}, failed {stats.failed}")
    for key, error in stats.errors[:20]:
        console.print(f"  failed {key}: {error}")
    if stats.last_key:
        console.print(f"resume with --start-after {shlex.quote(stats.last_key)}")
    if stats.failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

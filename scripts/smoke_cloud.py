"""Smoke test of a deployed fpscreen: upload one video, one audio file and one text to `uploads/`, wait until
the pipeline has stored a verdict for each, and report.

    python scripts/smoke_cloud.py                       # the stack scripts/deploy.py created (default `fpscreen`)
    python scripts/smoke_cloud.py --bucket my-media --store-url tablestore://inst@inst.cn-shanghai.ots.aliyuncs.com
    python scripts/smoke_cloud.py --local-data-dir ~/.fpscreen   # against a running `fpscreen up` instead

Credentials come from the environment (ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / ALIBABA_CLOUD_SECURITY_TOKEN).
The bucket and the store are read from the ROS stack (its MediaBucketName parameter and PublicStoreUrl output)
unless given. The files are generated (a few seconds of synthetic video with a soundtrack, music, English text)
under a fresh `uploads/fpscreen-smoke/<run>/` prefix: screened only (`nosave`), they never enter a library.

Passes (exit 0) when every upload reaches a finished job (`clean` or `copy`) within --timeout; a failed job, or
one still pending at the timeout, fails it (exit 1) with what was stored.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/smoke_cloud.py` without an installed checkout
    sys.path.insert(0, str(ROOT))

from engine.localstack.results import ScreeningResult, screening_results  # noqa: E402
from shared.credentials import Credentials, resolve_credentials  # noqa: E402
from shared.ports import ResultStore  # noqa: E402

PREFIX = "uploads/fpscreen-smoke"
# One file of each kind the routes send somewhere: video (with a soundtrack), audio, plain text.
SAMPLES = {"video": "clip.mp4", "audio": "song.mp3", "text": "notes.txt"}
FINISHED = frozenset({"clean", "copy"})


class Uploader(Protocol):
    def put(self, key: str, path: Path) -> None: ...


@dataclass
class OssUploader:
    """Uploads through OSS (oss2): the bucket's trigger does the rest, as for any user upload."""

    bucket: Any  # oss2.Bucket

    def put(self, key: str, path: Path) -> None:
        self.bucket.put_object_from_file(key, str(path))


@dataclass
class LocalUploader:
    """Uploads into a local stack's bucket (what `fpscreen upload` does): its watcher fires the same trigger."""

    data_dir: Path
    bucket: str

    def put(self, key: str, path: Path) -> None:
        from engine.localstack.stack import StackPaths, upload_file

        upload_file(StackPaths.under(self.data_dir), path, key, bucket=self.bucket)


def make_samples(workdir: Path, seed: int) -> dict[str, Path]:
    """Small files of each kind, different on every run (`seed`), so none is a copy of an earlier one."""
    from engine.synth import audio as synth_audio
    from engine.synth import av as synth_av
    from engine.synth import text as synth_text

    workdir.mkdir(parents=True, exist_ok=True)
    video = synth_av.make_av(workdir / SAMPLES["video"], seed=seed, seconds=6.0, size=(160, 120), fps=10.0)
    audio = synth_audio.write_audio(workdir / SAMPLES["audio"], synth_audio.music(seed + 1, 6.0), bitrate=64_000)
    text = workdir / SAMPLES["text"]
    text.write_text(synth_text.document(seed + 2, 1500), encoding="utf-8")
    return {"video": video, "audio": audio, "text": text}


def upload_samples(uploader: Uploader, samples: Mapping[str, Path], run: str) -> dict[str, str]:
    """kind → the key it was uploaded as."""
    keys = {}
    for kind, path in samples.items():
        keys[kind] = f"{PREFIX}/{run}/{path.name}"
        uploader.put(keys[kind], path)
    return keys


def wait_for_verdicts(
    store: ResultStore,
    keys: list[str],
    *,
    timeout: float,
    poll_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, ScreeningResult]:
    """The stored result of each key once none is pending any more (or at the timeout: what there is)."""
    deadline = clock() + timeout
    while True:
        rows = {r.upload: r for r in screening_results(store, limit=1000, include_library=False) if r.upload in keys}
        if all(key in rows and rows[key].verdict != "pending" for key in keys) or clock() >= deadline:
            return rows
        # The store is remote (Tablestore) and offers no change feed: polling is the way to learn of a verdict.
        time.sleep(poll_seconds)


def report(keys: Mapping[str, str], rows: Mapping[str, ScreeningResult], console: Console, seconds: float) -> bool:
    ok = True
    for kind, key in keys.items():
        row = rows.get(key)
        if row is None:
            console.print(f"{kind:<6} {'missing':<8} {key}  no job stored: the trigger or the submit did not run")
            ok = False
            continue
        detail = row.code or (f"{len(row.matches)} matched item(s)" if row.matches else "")
        console.print(f"{kind:<6} {row.verdict:<8} {key}  job {row.job_id} {row.state}  {detail}".rstrip())
        ok = ok and row.verdict in FINISHED
    console.print(f"{'PASS' if ok else 'FAIL'}: {len(keys)} uploads, {seconds:.0f} s")
    return ok


def stack_settings(stack_name: str, region: str, endpoint: str | None, credentials: Credentials) -> dict[str, str]:
    """The stack's parameters and outputs (ROS GetStack), by name."""
    from alibabacloud_ros20190910 import models
    from alibabacloud_ros20190910.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    host = endpoint or "ros.aliyuncs.com"
    client = Client(
        open_api_models.Config(
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token or None,
            region_id=region,
            endpoint=host.removeprefix("http://").removeprefix("https://"),
            protocol="http" if host.startswith("http://") else "https",
        )
    )
    stacks = client.list_stacks(models.ListStacksRequest(region_id=region, stack_name=[stack_name])).body.stacks or []
    live = [s for s in stacks if s.stack_name == stack_name and s.status != "DELETE_COMPLETE"]
    if not live:
        raise typer.BadParameter(f"no stack {stack_name!r} in {region}: deploy first, or pass --bucket and --store-url")
    body = client.get_stack(models.GetStackRequest(region_id=region, stack_id=live[0].stack_id)).body
    settings = {str(p.parameter_key): str(p.parameter_value) for p in body.parameters or []}
    settings.update({str(o["OutputKey"]): str(o["OutputValue"]) for o in body.outputs or []})
    return settings


app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


@app.command()
def main(
    stack_name: Annotated[str, typer.Option(help="the ROS stack scripts/deploy.py created")] = "fpscreen",
    region: Annotated[str, typer.Option(envvar="ALIBABA_CLOUD_REGION_ID")] = "cn-shanghai",
    bucket: Annotated[str | None, typer.Option(help="media bucket (default: the stack's MediaBucketName)")] = None,
    store_url: Annotated[str | None, typer.Option(help="default: the stack's PublicStoreUrl output")] = None,
    oss_endpoint: Annotated[str | None, typer.Option(help="default https://oss-<region>.aliyuncs.com")] = None,
    ros_endpoint: Annotated[str | None, typer.Option(help="default ros.aliyuncs.com")] = None,
    local_data_dir: Annotated[Path | None, typer.Option(help="a running local stack's --data-dir instead")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="where the samples are generated (default: a temp dir)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the verdicts")] = 600.0,
    poll_seconds: Annotated[float, typer.Option(help="seconds between store reads")] = 5.0,
) -> None:
    import tempfile

    console = Console(highlight=False, emoji=False, markup=False, soft_wrap=True)
    run = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    uploader: Uploader
    if local_data_dir is not None:
        from engine.localstack.stack import DEFAULT_BUCKET, StackPaths
        from shared.store import open_store

        uploader = LocalUploader(local_data_dir, bucket or DEFAULT_BUCKET)
        store = open_store(store_url or f"sqlite:///{StackPaths.under(local_data_dir).results}")
    else:
        import oss2

        from shared.store import open_store

        credentials = resolve_credentials(None, dict(os.environ))
        if bucket is None or store_url is None:
            settings = stack_settings(stack_name, region, ros_endpoint, credentials)
            bucket = bucket or settings["MediaBucketName"]
            store_url = store_url or settings["PublicStoreUrl"]
        auth = (
            oss2.StsAuth(credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
            if credentials.security_token
            else oss2.Auth(credentials.access_key_id, credentials.access_key_secret)
        )
        uploader = OssUploader(oss2.Bucket(auth, oss_endpoint or f"https://oss-{region}.aliyuncs.com", bucket))
        store = open_store(store_url, credentials=credentials)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fpscreen-smoke-") as tmp:
        samples = make_samples(work_dir or Path(tmp), seed=uuid.uuid4().int % 100_000)
        keys = upload_samples(uploader, samples, run)
    console.print(f"uploaded {', '.join(keys.values())}; waiting for the verdicts …")
    rows = wait_for_verdicts(store, list(keys.values()), timeout=timeout, poll_seconds=poll_seconds)
    if not report(keys, rows, console, time.monotonic() - started):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

"""Deploy fpscreen to Alibaba Cloud with one command: template.yml as one ROS stack.

    python scripts/deploy.py --param MediaBucketName=my-media --param MpsPipelineId=... \\
        --param LibraryFpDBId=... --param TextLibraryFpDBId=...          # create or update everything
    python scripts/deploy.py --dry-run --param MediaBucketName=my-media   # the plan: every resource; calls nothing
    python scripts/deploy.py --print-policy                               # the functions' RAM policy
    python scripts/deploy.py --delete                                     # delete the stack and all it created

What a deploy does, in order: build one code archive per function (its folder, the packages its
`Metadata.Bundle` names, i.e. `shared/`, and pyproject's runtime dependencies pip-installed for the runtime's
Python, once per set of pins); upload them to OSS with `oss2` under content-hashed keys (an unchanged archive is
not re-uploaded and does not update its function); create the ROS stack, or update it if it exists, through the
official ROS SDK; wait for it with a progress display; print the stack's outputs, or on failure the failing
resources' events (exit status 1). Re-running it is safe: ROS applies only what changed.

Credentials: ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (/ ALIBABA_CLOUD_SECURITY_TOKEN). The VSwitch's zone is asked
from FC (GetAccountSettings: a zone FC supports) unless `--param ZoneId=...` is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tomllib
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/deploy.py` without an installed checkout
    sys.path.insert(0, str(ROOT))

from engine.template import CodeArtifact, Template, TemplateError, load_template, parse_assignments  # noqa: E402

DEFAULT_STACK = "fpscreen"
DEFAULT_REGION = "cn-shanghai"
CODE_PREFIX = "fpscreen-deploy"  # where the archives go in the code bucket (no trigger watches it)
ZONE_PARAMETER = "ZoneId"
RETENTION_PARAMETER = "DataRetentionSeconds"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible zips: same sources, same key, no needless code update
# Stack states after which nothing more happens (everything else ends in _IN_PROGRESS).
SUCCESS_STATES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_CREATE_COMPLETE"})
FAILED_EVENT_STATES = ("CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED", "ROLLBACK_FAILED")
# A stack whose creation failed and was rolled back holds nothing and cannot be updated: it must be deleted.
DEAD_STATES = frozenset({"ROLLBACK_COMPLETE", "CREATE_ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_ROLLBACK_FAILED"})

Installer = Callable[[list[str], Path], None]


class DeployError(RuntimeError):
    """The deploy could not complete; the message says why (and what failed)."""


# ---------------------------------------------------------------------------------------------- build


def _files(folder: Path, exclude: frozenset[str] = frozenset()) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" and p.name not in exclude
    )


def _write_zip(target: Path, entries: Iterable[tuple[Path, str]]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, name in sorted(entries, key=lambda entry: entry[1]):
            if name in seen:
                raise DeployError(f"{target.name}: two files would be stored as {name}")
            seen.add(name)
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    return target


def runtime_requirements(root: Path) -> list[str]:
    """The functions' dependencies: pyproject's runtime dependencies (pinned there and only there)."""
    with open(root / "pyproject.toml", "rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def runtime_python_version(runtime: str) -> str:
    """`python3.10` → `3.10` (FC's plain `python3` runtime is 3.6)."""
    version = runtime.removeprefix("python")
    return "3.6" if version == "3" else version


def pip_installer(python: str, runtime: str) -> Installer:
    """Install into `target` with `<python> -m pip`. `python` must be the runtime's version: wheels such as
    pydantic-core are built per interpreter version, and several Alibaba SDKs are sdist-only, so pip's
    cross-platform `--python-version` mode (wheels only) cannot install them."""

    def install(requirements: list[str], target: Path) -> None:
        expected = runtime_python_version(runtime)
        probe = [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        found = subprocess.run(probe, capture_output=True, text=True, check=False).stdout.strip()
        if found != expected:
            raise DeployError(
                f"{python} is Python {found or '?'}, but the functions run {runtime}: pass --runtime-python with a "
                f"Python {expected} (or build on a matching image)"
            )
        command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        subprocess.run([*command, "--target", str(target), *requirements], check=True)
        shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: useless in a function

    return install


def install_dependencies(root: Path, out_dir: Path, install: Installer | None) -> Path | None:
    """pyproject's runtime dependencies in `out_dir/deps-<hash of the pins>`, installed once and reused while the
    pins stay the same: a re-install compiles sdist-only C extensions (crcmod) anew, with different bytes, which
    would change every archive's key and redeploy every function for nothing. None without an installer."""
    if install is None:
        return None
    requirements = runtime_requirements(root)
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]
    deps = out_dir / f"deps-{digest}"
    marker = deps / ".fpscreen-complete"
    if marker.is_file():
        return deps
    shutil.rmtree(deps, ignore_errors=True)
    deps.mkdir(parents=True)
    install(requirements, deps)
    marker.write_text("\n".join(requirements) + "\n")  # written last: an interrupted install is redone
    return deps


def build_archive(artifact: CodeArtifact, template: Template, out_dir: Path, deps: Path | None) -> Path:
    """The function's folder at the zip root (so `index.handler` resolves), its bundled packages beside it
    (`shared/...`), and the dependencies (FC puts the code root on sys.path)."""
    root = template.root
    source = (root / artifact.source).resolve()
    if artifact.kind == "function":
        fn = template.function(artifact.name)
        if not fn.handler_file(root).is_file():
            raise DeployError(f"{fn.name}: handler module {fn.handler_file(root)} does not exist")
    entries = [(p, p.relative_to(source).as_posix()) for p in _files(source)]
    for package in artifact.bundle:
        folder = root / package
        if not (folder / "__init__.py").is_file():
            raise DeployError(f"{artifact.logical_id}: Metadata.Bundle names {package!r}, which is not a package")
        entries += [(p, f"{package}/{p.relative_to(folder).as_posix()}") for p in _files(folder)]
    if deps is not None:
        entries += [(p, p.relative_to(deps).as_posix()) for p in _files(deps, frozenset({".fpscreen-complete"}))]
    return _write_zip(out_dir / f"{artifact.name}.zip", entries)


def object_key(artifact: CodeArtifact, archive: Path) -> str:
    """Content-addressed: ROS updates a function's code only when its OssObjectName changes."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    return f"{CODE_PREFIX}/{artifact.name}-{digest}.zip"


# ----------------------------------------------------------------------------------------------- plan


def describe_resources(template: Template) -> list[str]:
    """One line per resource of the stack: logical id, type and what it is."""
    lines = []
    for name, body in template.resources.items():
        props = body.get("Properties") or {}
        label = next(
            (
                str(props[key])
                for key in (
                    "FunctionName",
                    "TriggerName",
                    "ServiceName",
                    "TableName",
                    "InstanceName",
                    "TopicName",
                    "QueueName",
                    "LogstoreName",
                    "Name",
                    "RoleName",
                    "VpcName",
                    "VSwitchName",
                    "SecurityGroupName",
                    "LayerName",
                )
                if key in props
            ),
            "",
        )
        lines.append(f"{name:<24} {body['Type']:<28} {label}")
    return lines


def stack_parameters(template: Template, values: dict[str, str]) -> list[tuple[str, str]]:
    """The (key, value) pairs CreateStack/UpdateStack get: declared parameters given a value, in order."""
    return [(name, str(values[name])) for name in template.parameters if name in values]


def missing_parameters(template: Template, values: dict[str, str]) -> list[str]:
    return [name for name, spec in template.parameters.items() if spec.default is None and name not in values]


# -------------------------------------------------------------------------------------------------- ROS


def _code(exc: Exception) -> str:
    return str(getattr(exc, "code", "") or "")


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", "") or exc)


def _event_line(event: Any) -> str:
    reason = f"  {event.status_reason}" if event.status_reason else ""
    return f"{event.logical_resource_id:<24} {event.resource_type or '':<28} {event.status}{reason}"


@dataclass
class Stack:
    """A ROS stack driven through the official SDK (`alibabacloud_ros20190910`)."""

    client: Any
    region: str
    name: str
    console: Console
    poll_seconds: float = 5.0
    timeout_minutes: int = 60
    _seen_events: set[str] = field(default_factory=set)

    def find(self) -> Any | None:
        """The live stack of this name (not one deleted earlier), or None."""
        from alibabacloud_ros20190910 import models

        request = models.ListStacksRequest(region_id=self.region, stack_name=[self.name], page_size=50)
        stacks = self.client.list_stacks(request).body.stacks or []
        live = [s for s in stacks if s.stack_name == self.name and s.status != "DELETE_COMPLETE"]
        return live[0] if live else None

    def create(self, body: str, parameters: list[tuple[str, str]]) -> str:
        from alibabacloud_ros20190910 import models

        request = models.CreateStackRequest(
            region_id=self.region,
            stack_name=self.name,
            template_body=body,
            parameters=[models.CreateStackRequestParameters(parameter_key=k, parameter_value=v) for k, v in parameters],
            timeout_in_minutes=self.timeout_minutes,
            disable_rollback=False,
        )
        return str(self.client.create_stack(request).body.stack_id)

    def update(self, stack_id: str, body: str, parameters: list[tuple[str, str]]) -> bool:
        """UpdateStack; False when ROS says nothing changed."""
        from alibabacloud_ros20190910 import models

        request = models.UpdateStackRequest(
            region_id=self.region,
            stack_id=stack_id,
            template_body=body,
            parameters=[models.UpdateStackRequestParameters(parameter_key=k, parameter_value=v) for k, v in parameters],
            timeout_in_minutes=self.timeout_minutes,
        )
        try:
            self.client.update_stack(request)
        except Exception as exc:
            # ROS refuses an update that changes nothing ("... completely same stack ...").
            if _code(exc) == "NotSupported" and "same" in _message(exc).lower():
                return False
            raise
        return True

    def delete(self, stack_id: str) -> None:
        from alibabacloud_ros20190910 import models

        self.client.delete_stack(models.DeleteStackRequest(region_id=self.region, stack_id=stack_id))

    def get(self, stack_id: str) -> Any | None:
        from alibabacloud_ros20190910 import models

        try:
            return self.client.get_stack(models.GetStackRequest(region_id=self.region, stack_id=stack_id)).body
        except Exception as exc:
            if _code(exc) == "StackNotFound":
                return None
            raise

    def events(self, stack_id: str, statuses: Iterable[str] = ()) -> Iterator[Any]:
        """Every event of the stack, oldest first as ROS pages them."""
        from alibabacloud_ros20190910 import models

        page = 1
        while True:
            request = models.ListStackEventsRequest(
                region_id=self.region, stack_id=stack_id, page_number=page, page_size=50, status=list(statuses) or None
            )
            body = self.client.list_stack_events(request).body
            yield from body.events or []
            if page * (body.page_size or 50) >= (body.total_count or 0):
                return
            page += 1

    def wait(self, stack_id: str, total: int, action: str) -> Any | None:
        """Poll until the stack leaves *_IN_PROGRESS, showing resources done of `total`; the final GetStack."""
        done: set[str] = set()
        with Progress(
            TextColumn(f"{action} {self.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        ) as progress:
            task = progress.add_task("", total=total)
            while True:
                stack = self.get(stack_id)
                for event in self.events(stack_id):
                    if event.event_id in self._seen_events:
                        continue
                    self._seen_events.add(event.event_id)
                    if event.logical_resource_id != self.name and event.status.endswith("_COMPLETE"):
                        done.add(event.logical_resource_id)
                    where = f"{event.logical_resource_id} {event.status}"
                    progress.update(task, completed=len(done), description=where)
                if stack is None or not str(stack.status).endswith("_IN_PROGRESS"):
                    if stack is not None and stack.status in SUCCESS_STATES:
                        progress.update(task, completed=total)
                    return stack
                time.sleep(self.poll_seconds)  # a remote API: polling is the only way to learn of progress

    def failures(self, stack_id: str) -> list[str]:
        return [_event_line(e) for e in self.events(stack_id, FAILED_EVENT_STATES) if e.logical_resource_id]


def ros_client(region: str, endpoint: str | None, credentials: Any) -> Any:
    from alibabacloud_ros20190910.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    host = endpoint or "ros.aliyuncs.com"
    protocol = "http" if host.startswith("http://") else "https"
    config = open_api_models.Config(
        access_key_id=credentials.access_key_id,
        access_key_secret=credentials.access_key_secret,
        security_token=credentials.security_token or None,
        region_id=region,
        endpoint=host.removeprefix("http://").removeprefix("https://"),
        protocol=protocol,
    )
    return Client(config)


def oss_bucket(bucket: str, region: str, endpoint: str | None, credentials: Any) -> Any:
    import oss2

    auth = (
        oss2.StsAuth(credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
        if credentials.security_token
        else oss2.Auth(credentials.access_key_id, credentials.access_key_secret)
    )
    return oss2.Bucket(auth, endpoint or f"https://oss-{region}.aliyuncs.com", bucket)


def fc_zone(account_id: str, region: str, credentials: Any, endpoint: str | None = None) -> str:
    """A zone FC supports in the region (GetAccountSettings' availableAZs): the VSwitch must be in one."""
    import fc2

    client = fc2.Client(
        endpoint=endpoint or f"https://{account_id}.{region}.fc.aliyuncs.com",
        accessKeyID=credentials.access_key_id,
        accessKeySecret=credentials.access_key_secret,
        securityToken=credentials.security_token or "",
    )
    zones = client.get_account_settings().data.get("availableAZs") or []
    if not zones:
        raise DeployError(f"FC lists no available zone in {region}; pass --param ZoneId=...")
    return str(zones[0])


# --------------------------------------------------------------------------------------------- deploy


@dataclass
class Deployment:
    template_path: Path
    parameters: dict[str, str]
    region: str
    stack: Stack
    bucket_for: Callable[[str], Any]  # bucket name → oss2.Bucket
    build_dir: Path
    install: Installer | None
    console: Console
    # Store URL (the stack's PublicStoreUrl) → a Tablestore client, to set the retention ROS cannot; None: skip.
    tablestore_for: Callable[[str], Any] | None = None

    def apply_retention(self, template: Template, outputs: dict[str, str]) -> list[str]:
        """fp_jobs and fp_verdicts expire after DataRetentionSeconds too: ROS cannot set a time to live on a
        table with a secondary index (that needs UpdateRow disallowed, a property ROS lacks), so it is set here,
        through Tablestore's UpdateTable, after every successful deploy."""
        if self.tablestore_for is None:
            return []
        from shared.store.tablestore import apply_retention

        parameter = template.parameters.get(RETENTION_PARAMETER)
        seconds = int(self.parameters.get(RETENTION_PARAMETER) or (parameter.default if parameter else -1))
        url = outputs.get("PublicStoreUrl")
        if not url:
            raise DeployError("the stack has no PublicStoreUrl output: cannot set the tables' retention")
        tables = apply_retention(self.tablestore_for(url), seconds)
        kept = "forever" if seconds == -1 else f"{seconds} s ({seconds / 86400:g} days)"
        self.console.print(f"retention  {', '.join(tables)}: rows kept {kept}, UpdateRow disallowed")
        return tables

    def build_and_upload(self, template: Template) -> dict[str, str]:
        """Archives built and uploaded; their parameters (bucket and key) for the stack."""
        deps = install_dependencies(template.root, self.build_dir, self.install)
        values: dict[str, str] = {}
        for artifact in template.artifacts:
            bucket_name = self.parameters.get(artifact.bucket_parameter) or self.parameters["MediaBucketName"]
            archive = build_archive(artifact, template, self.build_dir, deps)
            key = object_key(artifact, archive)
            bucket = self.bucket_for(bucket_name)
            if bucket.object_exists(key):
                self.console.print(f"unchanged  oss://{bucket_name}/{key}")
            else:
                bucket.put_object_from_file(key, str(archive))
                self.console.print(f"uploaded   oss://{bucket_name}/{key}  ({archive.stat().st_size} bytes)")
            values[artifact.bucket_parameter] = bucket_name
            values[artifact.object_parameter] = key
        return values

    def run(self) -> dict[str, str]:
        """Create or update the stack; its outputs. Raises DeployError with the failing resources' events."""
        draft = load_template(self.template_path, {"ALIYUN::Region": self.region})
        given = {**self.parameters}
        generated = {a.bucket_parameter for a in draft.artifacts} | {a.object_parameter for a in draft.artifacts}
        missing = [name for name in missing_parameters(draft, given) if name not in generated]
        if missing:
            raise DeployError(f"give --param for {missing}")
        values = {**given, **self.build_and_upload(draft)}
        template = load_template(self.template_path, {**values, "ALIYUN::Region": self.region})
        body = json.dumps(template.raw, ensure_ascii=False)
        parameters = stack_parameters(template, values)
        existing = self.stack.find()
        if existing is None:
            stack_id = self.stack.create(body, parameters)
            action = "creating"
        elif existing.status in DEAD_STATES:
            raise DeployError(
                f"stack {self.stack.name} is {existing.status} (its creation failed and was undone): "
                "remove it with --delete, then deploy again"
            )
        else:
            stack_id = str(existing.stack_id)
            if not self.stack.update(stack_id, body, parameters):
                self.console.print(f"stack {self.stack.name} is up to date: nothing to change")
                outputs = self._outputs(self.stack.get(stack_id))
                self.apply_retention(template, outputs)
                return outputs
            action = "updating"
        final = self.stack.wait(stack_id, len(template.resources), action)
        if final is None or final.status not in SUCCESS_STATES:
            status = final.status if final is not None else "gone"
            reason = f" ({final.status_reason})" if final is not None and final.status_reason else ""
            failed = self.stack.failures(stack_id)
            raise DeployError("\n".join([f"stack {self.stack.name} {status}{reason}", *failed]))
        outputs = self._outputs(final)
        self.apply_retention(template, outputs)
        return outputs

    def _outputs(self, stack: Any) -> dict[str, str]:
        outputs = {str(o["OutputKey"]): str(o.get("OutputValue")) for o in (stack.outputs or [])} if stack else {}
        for key, value in outputs.items():
            self.console.print(f"{key:<20} {value}")
        return outputs

    def delete(self) -> None:
        existing = self.stack.find()
        if existing is None:
            self.console.print(f"no stack {self.stack.name} in {self.region}: nothing to delete")
            return
        stack_id = str(existing.stack_id)
        template = load_template(self.template_path, {"ALIYUN::Region": self.region})
        self.stack.delete(stack_id)
        final = self.stack.wait(stack_id, len(template.resources), "deleting")
        if final is not None and final.status != "DELETE_COMPLETE":
            failed = self.stack.failures(stack_id)
            raise DeployError("\n".join([f"stack {self.stack.name} {final.status}: {final.status_reason}", *failed]))
        self.console.print(f"stack {self.stack.name} deleted (the code archives stay in oss://…/{CODE_PREFIX}/)")


def tablestore_client(url: str, credentials: Any) -> Any:
    """An SDK client on the store a `tablestore://instance@host` URL names (the deploying user's credentials)."""
    from tablestore import OTSClient

    from shared.store import _tablestore_target

    endpoint, instance = _tablestore_target(url.partition("://")[2], url)
    return OTSClient(
        endpoint,
        credentials.access_key_id,
        credentials.access_key_secret,
        instance,
        sts_token=credentials.security_token,
    )


def print_plan(template: Template, values: dict[str, str], stack_name: str, region: str, console: Console) -> None:
    console.print(f"# plan for stack {stack_name} in {region} (dry run: nothing is called)")
    generated = {a.bucket_parameter for a in template.artifacts} | {a.object_parameter for a in template.artifacts}
    for name in missing_parameters(template, values):
        if name not in generated and name != ZONE_PARAMETER:
            console.print(f"! parameter {name} has no value (--param {name}=...)")
    for artifact in template.artifacts:
        bundled = " + ".join([artifact.source, *artifact.bundle, "runtime dependencies"])
        console.print(f"build+upload  {artifact.name}.zip  ({bundled}) → {artifact.object_parameter}")
    console.print(f"create-or-update ROS stack {stack_name}: {len(template.resources)} resources")
    for line in describe_resources(template):
        console.print(f"  {line}")


app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


@app.command()
def main(
    template_path: Annotated[Path, typer.Option("--template", help="template.yml to deploy")] = ROOT / "template.yml",
    param: Annotated[list[str] | None, typer.Option(help="template parameter NAME=VALUE (repeatable)")] = None,
    stack_name: Annotated[str, typer.Option(help="ROS stack name")] = DEFAULT_STACK,
    region: Annotated[str, typer.Option(envvar="ALIBABA_CLOUD_REGION_ID", help="region of everything")] = (
        DEFAULT_REGION
    ),
    account_id: Annotated[
        str | None, typer.Option(envvar="ALIBABA_CLOUD_ACCOUNT_ID", help="Alibaba Cloud UID (to ask FC for a zone)")
    ] = None,
    ros_endpoint: Annotated[str | None, typer.Option(help="ROS endpoint (default ros.aliyuncs.com)")] = None,
    oss_endpoint: Annotated[str | None, typer.Option(help="OSS endpoint (default https://oss-<region>...)")] = None,
    fc_endpoint: Annotated[str | None, typer.Option(help="FC endpoint (default https://<UID>.<region>.fc...)")] = None,
    build_dir: Annotated[Path, typer.Option(help="where the archives are built")] = ROOT / "build" / "deploy",
    runtime_python: Annotated[str, typer.Option(help="Python of the FC runtime, to pip-install the deps")] = (
        shutil.which("python3.10") or sys.executable
    ),
    skip_deps: Annotated[bool, typer.Option(help="archives without dependencies (inspection/tests only)")] = False,
    poll_seconds: Annotated[float, typer.Option(help="seconds between stack status polls")] = 5.0,
    build: Annotated[bool, typer.Option(help="with --dry-run: also build the archives into --build-dir")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the plan; call nothing")] = False,
    print_policy: Annotated[bool, typer.Option(help="print the functions' RAM policy document and exit")] = False,
    delete: Annotated[bool, typer.Option(help="delete the stack and everything it created")] = False,
    retention: Annotated[
        bool, typer.Option(help="set fp_jobs/fp_verdicts' time to live (DataRetentionSeconds) after the deploy")
    ] = True,
) -> None:
    console = Console(soft_wrap=True, highlight=False, emoji=False, markup=False)
    try:
        parameters = parse_assignments(param or [])
        template = load_template(template_path, {**parameters, "ALIYUN::Region": region})
    except TemplateError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if print_policy:
        for document in template.policy_documents():
            console.print_json(json.dumps(document.as_ram_json()))
        return
    runtimes = sorted({fn.runtime for fn in template.functions})
    install = None if skip_deps else pip_installer(runtime_python, runtimes[0])
    if dry_run:
        print_plan(template, parameters, stack_name, region, console)
        if build:
            deps = install_dependencies(template.root, build_dir, install)
            for artifact in template.artifacts:
                archive = build_archive(artifact, template, build_dir, deps)
                console.print(f"built {archive}  ({archive.stat().st_size} bytes)  key {object_key(artifact, archive)}")
        return

    from shared.credentials import resolve_credentials

    credentials = resolve_credentials(None, dict(os.environ))
    client = ros_client(region, ros_endpoint, credentials)
    stack = Stack(client, region, stack_name, console, poll_seconds=poll_seconds)
    deployment = Deployment(
        template_path,
        parameters,
        region,
        stack,
        lambda name: oss_bucket(name, region, oss_endpoint, credentials),
        build_dir,
        install,
        console,
        (lambda url: tablestore_client(url, credentials)) if retention else None,
    )
    try:
        if delete:
            deployment.delete()
            return
        if ZONE_PARAMETER in template.parameters and ZONE_PARAMETER not in parameters:
            if not account_id:
                raise DeployError("pass --param ZoneId=... or --account-id (FC is asked for a zone it supports)")
            parameters[ZONE_PARAMETER] = fc_zone(account_id, region, credentials, fc_endpoint)
            console.print(f"zone {parameters[ZONE_PARAMETER]} (FC supports it in {region})")
        deployment.run()
    except DeployError as exc:
        console.print(f"deploy failed: {exc}")
        raise typer.Exit(1) from exc
    except Exception as exc:
        if not getattr(exc, "code", None):
            raise
        # An API refusal (ROS, OSS, FC): its code and message say what to fix.
        console.print(f"deploy failed: {exc.code}: {_message(exc)}")  # type: ignore[attr-defined]
        raise typer.Exit(1) from exc


if __name__ == "__main__":
    app()

"""Deploy fpscreen to Function Compute 2.0 from template.yml with the fc2 SDK.

    python scripts/deploy.py --dry-run --param MediaBucketName=my-media           # print the plan, touch nothing
    python scripts/deploy.py --account-id 123 --role-arn acs:ram::123:role/fpscreen \
        --param MediaBucketName=my-media --param MpsPipelineId=... --param LibraryFpDBId=...
    python scripts/deploy.py --print-policy                                       # the RAM policy for that role

What it does, in order: build one code zip per function and the layer zip (`python/shared/...` plus the
layer's dependencies pip-installed into `python/`), publish the layer, then create-or-update the service, each
function (code, settings, layer, async-invoke config) and each trigger. Re-running it is safe.

Not done here (create them once, e.g. with the console or `fun deploy`): the Tablestore instance and tables, the
Log project and Logstore, the MNS topic and dead-letter queue, the media bucket, and the service's RAM role
(`--role-arn`; attach the policy from `--print-policy`).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import tomllib
import typer
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/deploy.py` without an installed checkout
    sys.path.insert(0, str(ROOT))

from engine.template import Function, Template, TemplateError, load_template, parse_assignments  # noqa: E402

LAYER_NAME = "fpscreen-shared"
LAYER_PARAMETER = "SharedLayerArn"
# The roles OSS and MNS assume to invoke a function, unless a trigger names its own InvocationRole.
DEFAULT_INVOCATION_ROLES = {"oss": "aliyunosseventnotificationrole", "mns_topic": "aliyunmnsnotificationrole"}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible zips: same sources, same checksum, no needless code update

Installer = Callable[[list[str], Path], None]


# ---------------------------------------------------------------------------------------------- build


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _write_zip(target: Path, entries: Iterable[tuple[Path, str]]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, name in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    return target


def build_code_zip(fn: Function, root: Path, out_dir: Path) -> Path:
    """The function's CodeUri folder, zipped with the handler module at the zip root."""
    code_dir = fn.code_dir(root)
    if not fn.handler_file(root).is_file():
        raise FileNotFoundError(f"{fn.name}: handler module {fn.handler_file(root)} does not exist")
    return _write_zip(out_dir / f"{fn.name}.zip", ((p, p.relative_to(code_dir).as_posix()) for p in _files(code_dir)))


def layer_requirements(root: Path) -> list[str]:
    """The layer's dependencies: pyproject's runtime dependencies (pinned there and only there)."""
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
            raise RuntimeError(
                f"{python} is Python {found or '?'}, but the functions run {runtime}: pass --layer-python with a "
                f"Python {expected} (or build on a matching image)"
            )
        command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        subprocess.run([*command, "--target", str(target), *requirements], check=True)

    return install


def build_layer_zip(root: Path, out_dir: Path, install: Installer | None) -> Path:
    """`python/shared/...` + dependencies in `python/` (FC puts the layer's `python/` on sys.path)."""
    staging = out_dir / "layer"
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    site.mkdir(parents=True)
    if install is not None:
        install(layer_requirements(root), site)
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: useless in a layer
    shared = root / "shared"
    for source in _files(shared):
        target = site / "shared" / source.relative_to(shared)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return _write_zip(out_dir / f"{LAYER_NAME}.zip", ((p, p.relative_to(staging).as_posix()) for p in _files(staging)))


# ----------------------------------------------------------------------------------------------- plan


@dataclass
class Context:
    region: str
    account_id: str
    role_arn: str | None
    code_zips: dict[str, Path] = field(default_factory=dict)


@dataclass
class Step:
    """One create-or-update call; `describe()` is what --dry-run prints, `apply()` what a deploy does."""

    kind: str
    target: str
    details: dict[str, Any]
    run: Callable[[Any], None] | None = None

    def describe(self) -> str:
        return f"{self.kind:<13} {self.target}  {json.dumps(self.details, ensure_ascii=False, sort_keys=True)}"


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) == 404


def _upsert(get: Callable[[], Any], create: Callable[[], Any], update: Callable[[], Any]) -> None:
    try:
        get()
    except Exception as exc:  # fc2 raises FcError; only "does not exist" means create
        if not _is_not_found(exc):
            raise
        create()
    else:
        update()


def _signed(client: Any, method: str, path: str, body: dict[str, Any]) -> Any:
    # fc2 2.5.2 has no layer API and no `layers` argument: send those FC API calls with its own signer.
    headers = client._build_common_headers(method, path, {})
    return client._do_request(method, path, headers, body=json.dumps(body).encode("utf-8")).json()


def publish_layer(client: Any, zip_path: Path, runtimes: list[str], region: str, account_id: str) -> str:
    """PublishLayerVersion; returns the new version's ARN."""
    path = f"/{client.api_version}/layers/{LAYER_NAME}/versions"
    data = _signed(
        client,
        "POST",
        path,
        {
            "code": {"zipFile": base64.b64encode(zip_path.read_bytes()).decode("ascii")},
            "compatibleRuntime": runtimes,
            "description": "fpscreen shared package and its dependencies",
        },
    )
    arn = data.get("arn") or data.get("layerVersionArn")
    return arn or f"acs:fc:{region}:{account_id}:layers/{LAYER_NAME}/versions/{data['version']}"


def plan(template: Template, ctx: Context) -> list[Step]:
    service = template.service
    steps: list[Step] = []
    log_config = None
    if service.log_config is not None:
        log_config = {"project": service.log_config.project, "logStore": service.log_config.logstore}
        if service.log_config.enable_request_metrics is not None:
            log_config["enableRequestMetrics"] = service.log_config.enable_request_metrics
    role = service.role or ctx.role_arn
    svc_args = {
        "description": service.description,
        "logConfig": log_config,
        "role": role,
        "internetAccess": service.internet_access,
    }
    steps.append(
        Step(
            "service",
            service.name,
            svc_args,
            lambda c: _upsert(
                lambda: c.get_service(service.name),
                lambda: c.create_service(service.name, **svc_args),
                lambda: c.update_service(service.name, **svc_args),
            ),
        )
    )
    for fn in template.functions:
        steps += _function_steps(service.name, fn, ctx)
    return steps


def _function_steps(service: str, fn: Function, ctx: Context) -> list[Step]:
    code = ctx.code_zips.get(fn.name)
    args: dict[str, Any] = {
        "runtime": fn.runtime,
        "handler": fn.handler,
        "memorySize": fn.memory_size,
        "timeout": fn.timeout,
        "environmentVariables": dict(fn.environment),
        "description": fn.description,
        "initializer": fn.initializer,
        "codeZipFile": str(code) if code else f"<{fn.name}.zip>",
    }
    if fn.initialization_timeout is not None:
        args["initializationTimeout"] = fn.initialization_timeout
    if fn.instance_concurrency is not None:
        args["instanceConcurrency"] = fn.instance_concurrency
    summary = {k: v for k, v in args.items() if k != "environmentVariables"} | {"env": sorted(fn.environment)}
    steps = [
        Step(
            "function",
            f"{service}/{fn.name}",
            summary,
            partial(_upsert_function, service=service, name=fn.name, args=args),
        ),
        Step(
            "layers",
            f"{service}/{fn.name}",
            {"layers": fn.layers},
            partial(_put_layers, service=service, name=fn.name, layers=fn.layers),
        ),
    ]
    if fn.async_config is not None:
        async_config = fn.async_config.fc_config()
        steps.append(
            Step(
                "async-config",
                f"{service}/{fn.name}@LATEST",
                async_config,
                partial(_put_async_config, service=service, function=fn.name, config=async_config),
            )
        )
    # Runners get their values bound now (partial), never through closures over loop variables.
    for trigger in fn.triggers:
        source = trigger.source_arn(ctx.region, ctx.account_id)
        role = trigger.invocation_role
        if role is None and trigger.fc_type in DEFAULT_INVOCATION_ROLES:
            role = f"acs:ram::{ctx.account_id}:role/{DEFAULT_INVOCATION_ROLES[trigger.fc_type]}"
        config = trigger.fc_config()
        qualifier = trigger.qualifier
        steps.append(
            Step(
                "trigger",
                f"{service}/{fn.name}/{trigger.name}",
                {"type": trigger.fc_type, "config": config, "sourceArn": source, "invocationRole": role},
                _trigger_runner(service, fn.name, trigger.name, trigger.fc_type, config, source, role, qualifier),
            )
        )
    return steps


def _upsert_function(client: Any, *, service: str, name: str, args: dict[str, Any]) -> None:
    _upsert(
        lambda: client.get_function(service, name),
        lambda: client.create_function(service, name, **args),
        lambda: client.update_function(service, name, **args),
    )


def _put_layers(client: Any, *, service: str, name: str, layers: list[str]) -> None:
    _signed(client, "PUT", f"/{client.api_version}/services/{service}/functions/{name}", {"layers": layers})


def _put_async_config(client: Any, *, service: str, function: str, config: dict[str, Any]) -> None:
    client.put_function_async_invoke_config(service, "LATEST", function, config)


def _trigger_runner(
    service: str,
    fn: str,
    name: str,
    kind: str,
    config: dict[str, Any],
    source: str | None,
    role: str | None,
    qualifier: str | None,
) -> Callable[[Any], None]:
    def run(c: Any) -> None:
        _upsert(
            lambda: c.get_trigger(service, fn, name),
            lambda: c.create_trigger(service, fn, name, kind, config, source, role, qualifier=qualifier),
            # The event source and type of a trigger cannot change in place; config and role can.
            lambda: c.update_trigger(service, fn, name, triggerConfig=config, invocationRole=role, qualifier=qualifier),
        )

    return run


# --------------------------------------------------------------------------------------------- deploy


def check_deployable(template: Template, ctx: Context) -> None:
    """Fail before building or calling anything if a deploy could not complete."""
    missing = template.missing_parameters - {LAYER_PARAMETER}
    if missing:
        raise typer.BadParameter(f"give --param for {sorted(missing)}")
    if template.service.role is None and not ctx.role_arn:
        raise typer.BadParameter("the service needs a RAM role: pass --role-arn (policy: --print-policy)")


def deploy(
    template_path: Path,
    parameters: dict[str, str],
    ctx: Context,
    client: Any,
    build_dir: Path,
    install: Installer | None,
    echo: Callable[[str], None] = print,
) -> Template:
    """Build, publish the layer, then apply every step. Returns the template as deployed."""
    draft = load_template(template_path, parameters)
    check_deployable(draft, ctx)
    ctx.code_zips = {fn.name: build_code_zip(fn, draft.root, build_dir) for fn in draft.functions}
    layer_zip = build_layer_zip(draft.root, build_dir, install)
    runtimes = sorted({fn.runtime for fn in draft.functions})
    arn = publish_layer(client, layer_zip, runtimes, ctx.region, ctx.account_id)
    echo(f"published layer {arn}")
    template = load_template(template_path, {**parameters, LAYER_PARAMETER: arn})
    for step in plan(template, ctx):
        echo(step.describe())
        assert step.run is not None
        step.run(client)
    return template


def _parse_params(values: list[str]) -> dict[str, str]:
    try:
        return parse_assignments(values)
    except TemplateError as exc:
        raise typer.BadParameter(str(exc)) from exc


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    template_path: Annotated[Path, typer.Option("--template", help="template.yml to deploy")] = ROOT / "template.yml",
    param: Annotated[list[str] | None, typer.Option(help="template parameter NAME=VALUE (repeatable)")] = None,
    region: Annotated[str | None, typer.Option(help="region (default: the template's Region parameter)")] = None,
    account_id: Annotated[str | None, typer.Option(envvar="ALIBABA_CLOUD_ACCOUNT_ID", help="Alibaba Cloud UID")] = None,
    role_arn: Annotated[str | None, typer.Option(help="RAM role FC assumes (needs the template's policy)")] = None,
    build_dir: Annotated[Path, typer.Option(help="where the zips are built")] = ROOT / "build" / "deploy",
    layer_python: Annotated[str, typer.Option(help="Python of the FC runtime, to pip-install the layer deps")] = (
        shutil.which("python3.10") or sys.executable
    ),
    skip_deps: Annotated[bool, typer.Option(help="build the layer without dependencies (inspection only)")] = False,
    build: Annotated[bool, typer.Option(help="with --dry-run: also build the zips into --build-dir")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the plan; call nothing")] = False,
    print_policy: Annotated[bool, typer.Option(help="print the service role's RAM policy document and exit")] = False,
) -> None:
    console = Console(soft_wrap=True, highlight=False, emoji=False, markup=False)
    parameters = _parse_params(param or [])
    if region:
        parameters["Region"] = region
    template = load_template(template_path, parameters)
    if print_policy:
        for doc in template.service.policies:
            console.print_json(json.dumps(doc if isinstance(doc, str) else doc.as_ram_json()))
        return
    region = str(template.parameter_values.get("Region") or region or "")
    ctx = Context(region=region, account_id=account_id or "<account-id>", role_arn=role_arn)
    runtimes = sorted({fn.runtime for fn in template.functions})
    install = None if skip_deps else pip_installer(layer_python, runtimes[0])
    if dry_run:
        console.print(f"# plan for {template_path.name} → FC {region} (dry run: nothing is called)")
        for name in sorted(template.missing_parameters - {LAYER_PARAMETER}):
            console.print(f"! parameter {name} has no value (--param {name}=...)")
        if build:
            ctx.code_zips = {fn.name: build_code_zip(fn, template.root, build_dir) for fn in template.functions}
            layer_zip = build_layer_zip(template.root, build_dir, install)
            console.print(f"build         {layer_zip}  ({layer_zip.stat().st_size} bytes)")
        console.print(f"publish-layer {LAYER_NAME}  {json.dumps({'compatibleRuntime': runtimes})}")
        for step in plan(template, ctx):
            console.print(step.describe())
        return
    if not account_id:
        raise typer.BadParameter("--account-id (or ALIBABA_CLOUD_ACCOUNT_ID) is required to deploy")
    check_deployable(template, ctx)
    import fc2  # deploy-time only

    # fc2 logs every 4xx at ERROR on the root logger; a 404 from a get-before-create is expected here.
    logging.getLogger().addFilter(lambda record: "Client error: 404" not in record.getMessage())

    from shared.credentials import resolve_credentials

    creds = resolve_credentials(None, dict(os.environ))
    client = fc2.Client(
        endpoint=f"https://{account_id}.{region}.fc.aliyuncs.com",
        accessKeyID=creds.access_key_id,
        accessKeySecret=creds.access_key_secret,
        securityToken=creds.security_token or "",
    )
    deploy(template_path, parameters, ctx, client, build_dir, install, echo=console.print)


if __name__ == "__main__":
    app()

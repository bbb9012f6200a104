"""scripts/deploy.py: the dry-run plan, the zips it builds, and a full deploy through the real fc2 SDK against a
recording FC API stand-in on 127.0.0.1."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import fc2
import pytest
from typer.testing import CliRunner

from engine.template import load_template

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {
    "MediaBucketName": "media-bucket",
    "MpsPipelineId": "pipe-1",
    "LibraryFpDBId": "fpdb-1",
    "TextLibraryFpDBId": "fpdb-text-1",
}


@pytest.fixture(scope="module")
def deploy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fpscreen_scripts_deploy", ROOT / "scripts" / "deploy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


class FakeInstaller:
    """Stands in for pip: records what it was asked to install and drops one package into the target."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Path]] = []

    def __call__(self, requirements: list[str], target: Path) -> None:
        self.calls.append((list(requirements), target))
        (target / "fakedep").mkdir(parents=True)
        (target / "fakedep" / "__init__.py").write_text("VERSION = 1\n")
        (target / "fakedep-1.0.dist-info").mkdir()
        (target / "fakedep-1.0.dist-info" / "METADATA").write_text("Name: fakedep\n")
        (target / "bin").mkdir()
        (target / "bin" / "fakedep").write_text("#!/bin/sh\n")


# ---------------------------------------------------------------------------------------------- zips


def test_code_zips_hold_the_handler_at_the_root(deploy: ModuleType, tmp_path: Path) -> None:
    template = load_template(ROOT / "template.yml")
    for fn in template.functions:
        if not fn.handler_file(template.root).is_file():
            pytest.skip(f"{fn.name}'s handler is not written yet")
        path = deploy.build_code_zip(fn, template.root, tmp_path)
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            assert "index.py" in names, names
            assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
            source = (template.root / fn.code_uri / "index.py").read_bytes()
            assert archive.read("index.py") == source


def test_layer_zip_layout(deploy: ModuleType, tmp_path: Path) -> None:
    installer = FakeInstaller()
    path = deploy.build_layer_zip(ROOT, tmp_path, installer)
    (requirements, target), *_ = installer.calls
    assert requirements == deploy.layer_requirements(ROOT)
    assert any(r.startswith("pydantic==") for r in requirements) and any(r.startswith("oss2==") for r in requirements)
    assert target.name == "python"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert all(n.startswith("python/") for n in names)
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "shared").rglob("*.py") if "__pycache__" not in p.parts}
    expected = {f"python/{n}" for n in shipped}
    assert expected <= names
    assert "python/shared/__init__.py" in names
    assert not [n for n in names if n.startswith("python/engine/")], "the template reader (engine/) is not layer code"
    assert {"python/fakedep/__init__.py", "python/fakedep-1.0.dist-info/METADATA"} <= names
    assert not [n for n in names if n.startswith("python/bin/") or "__pycache__" in n]


def test_zips_are_reproducible(deploy: ModuleType, tmp_path: Path) -> None:
    first = deploy.build_layer_zip(ROOT, tmp_path / "a", None).read_bytes()
    second = deploy.build_layer_zip(ROOT, tmp_path / "b", None).read_bytes()
    assert first == second  # same sources, same bytes: FC sees the same checksum


# ------------------------------------------------------------------------------------------- dry run


def test_dry_run_prints_the_plan(deploy: ModuleType) -> None:
    args = ["--dry-run", "--account-id", "123", "--param", "MediaBucketName=media-bucket"]
    result = CliRunner().invoke(deploy.app, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "nothing is called" in out
    assert "! parameter LibraryFpDBId has no value" in out and "! parameter MpsPipelineId has no value" in out
    assert "! parameter TextLibraryFpDBId has no value" in out
    assert "SharedLayerArn has no value" not in out  # the deploy publishes it
    assert re.search(r"^publish-layer +fpscreen-shared .*python3\.10", out, re.M)
    assert re.search(r"^service +fpscreen ", out, re.M)
    for name in ("submit_on_upload", "store_results", "report_failed"):
        assert re.search(rf"^function +fpscreen/{name} .*\"handler\": \"index.handler\"", out, re.M)
        assert re.search(rf"^layers +fpscreen/{name} ", out, re.M)
    assert re.search(r"^async-config +fpscreen/submit_on_upload@LATEST .*onFailure", out, re.M)
    assert len(re.findall(r"^trigger ", out, re.M)) == 4
    assert "acs:oss:cn-shanghai:123:media-bucket" in out
    assert "acs:ram::123:role/aliyunosseventnotificationrole" in out
    assert re.search(r'^trigger +fpscreen/report_failed/every-minute .*"type": "timer"', out, re.M)


def test_dry_run_can_build_the_zips(deploy: ModuleType, tmp_path: Path) -> None:
    args = ["--dry-run", "--build", "--skip-deps", "--build-dir", str(tmp_path)] + [
        f"--param={k}={v}" for k, v in PARAMS.items()
    ]
    result = CliRunner().invoke(deploy.app, args)
    assert result.exit_code == 0, result.output
    assert "has no value" not in result.output
    assert (tmp_path / "fpscreen-shared.zip").is_file()
    for name in ("submit_on_upload", "store_results", "report_failed"):
        assert (tmp_path / f"{name}.zip").is_file()
        assert str(tmp_path / f"{name}.zip") in result.output


def test_print_policy(deploy: ModuleType) -> None:
    result = CliRunner().invoke(deploy.app, ["--print-policy"])
    assert result.exit_code == 0, result.output
    policy = json.loads(result.output)
    assert policy["Version"] == "1"
    assert "mts:SubmitFpShotJob" in {a for s in policy["Statement"] for a in s["Action"]}


def test_deploy_refuses_missing_parameters(deploy: ModuleType, tmp_path: Path) -> None:
    result = CliRunner().invoke(deploy.app, ["--account-id", "123", "--role-arn", "r", "--build-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "LibraryFpDBId" in result.output


# ------------------------------------------------------------------------------ deploy via real fc2


class FakeFc:
    """The FC 2016-08-15 API surface the deploy uses: resources exist once created; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.existing: set[str] = set()
        self.layer_versions = 0
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls.append((method, path, body))
            if method == "POST" and path.endswith("/versions"):
                self.layer_versions += 1
                name = path.split("/")[3]
                arn = f"acs:fc:cn-shanghai:123:layers/{name}/versions/{self.layer_versions}"
                return 200, {"layerName": name, "version": self.layer_versions, "arn": arn}
            if method == "GET":
                if path in self.existing:
                    return 200, {}
                return 404, {"ErrorCode": "NotFound", "ErrorMessage": f"{path} does not exist"}
            if method == "POST":
                name = body.get("triggerName") or body.get("functionName") or body.get("serviceName")
                self.existing.add(f"{path}/{name}")
                return 200, body
            if method == "PUT":
                return 200, body
            return 400, {"ErrorCode": "BadRequest", "ErrorMessage": method}


@pytest.fixture
def fake_fc() -> Iterator[tuple[FakeFc, str]]:
    fake = FakeFc()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            assert self.headers["Authorization"].startswith("FC ")  # signed by fc2
            status, payload = fake.handle(self.command, self.path.split("?")[0], json.loads(raw) if raw else {})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run_deploy(deploy: ModuleType, endpoint: str, build_dir: Path) -> Any:
    client = fc2.Client(endpoint=endpoint, accessKeyID="ak", accessKeySecret="sk")
    ctx = deploy.Context(region="cn-shanghai", account_id="123", role_arn="acs:ram::123:role/fpscreen")
    return deploy.deploy(
        ROOT / "template.yml", dict(PARAMS), ctx, client, build_dir, FakeInstaller(), echo=lambda _: None
    )


def test_deploy_creates_then_updates(deploy: ModuleType, fake_fc: tuple[FakeFc, str], tmp_path: Path) -> None:
    fake, endpoint = fake_fc
    template = _run_deploy(deploy, endpoint, tmp_path / "first")
    api = "/2016-08-15"
    by_call = {(m, p): b for m, p, b in fake.calls}

    layer = by_call[("POST", f"{api}/layers/fpscreen-shared/versions")]
    assert layer["compatibleRuntime"] == ["python3.10"]
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(layer["code"]["zipFile"]))) as archive:
        assert "python/shared/config.py" in archive.namelist()

    service = by_call[("POST", f"{api}/services")]
    assert service["serviceName"] == "fpscreen" and service["role"] == "acs:ram::123:role/fpscreen"
    assert service["logConfig"] == {
        "project": "fpscreen-logs",
        "logStore": "fc-invocations",
        "enableRequestMetrics": True,
    }

    created = [b for m, p, b in fake.calls if (m, p) == ("POST", f"{api}/services/fpscreen/functions")]
    assert [f["functionName"] for f in created] == ["submit_on_upload", "store_results", "report_failed"]
    for body in created:
        fn = template.function(body["functionName"])
        assert body["runtime"] == "python3.10" and body["handler"] == "index.handler"
        assert body["environmentVariables"] == fn.environment
        assert body["environmentVariables"]["MPS_PIPELINE_ID"] == "pipe-1"
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(body["code"]["zipFile"]))) as archive:
            assert "index.py" in archive.namelist()
        layers = by_call[("PUT", f"{api}/services/fpscreen/functions/{fn.name}")]
        assert layers == {"layers": ["acs:fc:cn-shanghai:123:layers/fpscreen-shared/versions/1"]}

    async_config = by_call[("PUT", f"{api}/services/fpscreen.LATEST/functions/submit_on_upload/async-invoke-config")]
    assert async_config["destinationConfig"]["onFailure"]["destination"].startswith("acs:mns:::/queues/")

    triggers = {b["triggerName"]: b for m, p, b in fake.calls if m == "POST" and p.endswith("/triggers")}
    assert set(triggers) == {"library-upload", "screen-upload", "mps-notify", "every-minute"}
    oss = triggers["library-upload"]
    assert oss["triggerType"] == "oss" and oss["sourceArn"] == "acs:oss:cn-shanghai:123:media-bucket"
    assert oss["triggerConfig"]["filter"] == {"key": {"prefix": "library/", "suffix": ""}}
    assert triggers["mps-notify"]["sourceArn"] == "acs:mns:cn-shanghai:123:/topics/fpscreen-mps-notify"
    assert triggers["every-minute"]["triggerType"] == "timer" and triggers["every-minute"]["sourceArn"] is None

    # Second run: everything exists, so it updates in place and points the functions at the new layer version.
    fake.calls.clear()
    _run_deploy(deploy, endpoint, tmp_path / "second")
    posts = [p for m, p, _ in fake.calls if m == "POST"]
    assert posts == [f"{api}/layers/fpscreen-shared/versions"]
    puts = {p: b for m, p, b in fake.calls if m == "PUT"}
    assert puts[f"{api}/services/fpscreen"]["role"] == "acs:ram::123:role/fpscreen"
    assert puts[f"{api}/services/fpscreen/functions/store_results/triggers/mps-notify"]["triggerConfig"] == {
        "notifyContentFormat": "JSON",
        "notifyStrategy": "BACKOFF_RETRY",
    }
    layer_puts = [b["layers"] for m, _, b in fake.calls if m == "PUT" and "layers" in b]
    assert layer_puts == [["acs:fc:cn-shanghai:123:layers/fpscreen-shared/versions/2"]] * 3


def test_layer_deps_need_the_runtime_python(deploy: ModuleType, tmp_path: Path) -> None:
    assert deploy.runtime_python_version("python3.10") == "3.10"
    assert deploy.runtime_python_version("python3") == "3.6"
    mismatched = "python3.9" if sys.version_info[:2] != (3, 9) else "python3.10"
    with pytest.raises(RuntimeError, match="--layer-python"):
        # checked before pip runs: wheels such as pydantic-core only work on the version they were built for
        deploy.pip_installer(sys.executable, mismatched)(["pydantic"], tmp_path)
    assert not any(tmp_path.iterdir())

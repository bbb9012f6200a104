"""scripts/deploy.py end to end against loopback stand-ins: archives built from template.yml, uploaded to the
local stack's OSS-compatible shim, and one ROS stack created, updated and deleted through the official ROS SDK
against tests/support/fake_ros.py, which verifies each request's signature and the template it receives."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import threading
import uuid
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import oss2
import pytest
from rich.console import Console
from typer.testing import CliRunner

from engine.localstack.oss_compat import OssCompatServer
from engine.template import load_template, load_yaml
from shared.ports import JobRecord
from shared.store.tablestore import TablestoreStore, create_tables
from tests.store.fake_ots import FakeOTSClient
from tests.support.fake_ros import AK, SK, FakeRos

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yml"
USER_PARAMS = {
    "MpsPipelineId": "pipe-0123",
    "LibraryFpDBId": "fpdb-0123",
    "TextLibraryFpDBId": "fpdb-text-0456",
    "AudioLibraryFpDBId": "fpdb-audio-0789",
    "ZoneId": "cn-shanghai-e",
    "ReviewSecret": "0123456789abcdef0123",
}


@pytest.fixture(scope="module")
def deploy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fpscreen_scripts_deploy", ROOT / "scripts" / "deploy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def oss() -> Iterator[OssCompatServer]:
    with OssCompatServer(region="cn-shanghai") as server:
        yield server


@pytest.fixture
def media(oss: OssCompatServer) -> oss2.Bucket:
    bucket = oss.bucket(f"media-{uuid.uuid4().hex[:12]}")
    bucket.create_bucket()
    return bucket


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK}
    for name in ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_REGION_ID", "ALIBABA_CLOUD_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    return values


def _fake_installer(requirements: list[str], target: Path) -> None:
    """Stands in for pip: one package per requirement, so the archive's dependency layer is visible."""
    for requirement in requirements:
        package = target / requirement.split("==")[0].replace("-", "_")
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"# {requirement}\n")


def _cli(deploy: ModuleType, args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(deploy.app, args, env=env, catch_exceptions=False)
    return result.exit_code, result.output


def _deploy_args(
    fake: FakeRos, oss: OssCompatServer, media: oss2.Bucket, tmp_path: Path, drop: str = "", **extra: str
) -> list[str]:
    params = {"MediaBucketName": media.bucket_name, **USER_PARAMS, **extra}
    params.pop(drop, None)
    args = ["--ros-endpoint", fake.endpoint, "--oss-endpoint", oss.endpoint, "--poll-seconds", "0.01"]
    args += ["--build-dir", str(tmp_path / "build"), "--skip-deps", "--region", "cn-shanghai"]
    args += ["--no-retention"]  # the retention step talks to Tablestore: test_retention_* cover it
    for name, value in params.items():
        args += ["--param", f"{name}={value}"]
    return args


# ---------------------------------------------------------------------------------------------- build


def test_archives_hold_the_handler_shared_and_the_dependencies(deploy: ModuleType, tmp_path: Path) -> None:
    template = load_template(TEMPLATE)
    deps = deploy.install_dependencies(ROOT, tmp_path, _fake_installer)
    assert {a.name for a in template.artifacts} == {"submit_on_upload", "store_results", "report_failed", "review"}
    for artifact in template.artifacts:
        archive = deploy.build_archive(artifact, template, tmp_path, deps)
        names = set(zipfile.ZipFile(archive).namelist())
        assert "index.py" in names  # Handler index.handler resolves at the code root
        assert {"shared/__init__.py", "shared/config.py", "pydantic/__init__.py", "tablestore/__init__.py"} <= names
        assert not [n for n in names if n.startswith("engine/")]  # the template reader needs PyYAML: not shipped
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_archives_and_keys_are_reproducible(deploy: ModuleType, tmp_path: Path) -> None:
    template = load_template(TEMPLATE)
    artifact = template.artifacts[0]
    first = deploy.build_archive(artifact, template, tmp_path / "a", None)
    second = deploy.build_archive(artifact, template, tmp_path / "b", None)
    assert first.read_bytes() == second.read_bytes()
    key = deploy.object_key(artifact, first)
    assert key == deploy.object_key(artifact, second)
    assert key.startswith(f"fpscreen-deploy/{artifact.name}-") and key.endswith(".zip")


def test_dependencies_are_installed_once_per_set_of_pins(deploy: ModuleType, tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def counting(requirements: list[str], target: Path) -> None:
        calls.append(requirements)
        _fake_installer(requirements, target)

    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["pydantic==2.13.4"]\n')
    first = deploy.install_dependencies(root, tmp_path / "build", counting)
    again = deploy.install_dependencies(root, tmp_path / "build", counting)
    assert first == again and len(calls) == 1  # reused: same bytes, same archive keys, no needless redeploy
    (root / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["pydantic==2.13.5"]\n')
    changed = deploy.install_dependencies(root, tmp_path / "build", counting)
    assert changed != first and calls[-1] == ["pydantic==2.13.5"] and len(calls) == 2
    archive = deploy.build_archive(load_template(TEMPLATE).artifacts[0], load_template(TEMPLATE), tmp_path, changed)
    assert ".fpscreen-complete" not in zipfile.ZipFile(archive).namelist()


def test_runtime_deps_need_the_runtime_python(deploy: ModuleType, tmp_path: Path) -> None:
    assert deploy.runtime_python_version("python3.10") == "3.10"
    assert deploy.runtime_python_version("python3") == "3.6"
    mismatched = "python3.9" if sys.version_info[:2] != (3, 9) else "python3.10"
    with pytest.raises(deploy.DeployError, match="--runtime-python"):
        # checked before pip runs: wheels such as pydantic-core only work on the version they were built for
        deploy.pip_installer(sys.executable, mismatched)(["pydantic"], tmp_path)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------- plan & policy


def test_dry_run_names_every_resource_and_calls_nothing(deploy: ModuleType, env: dict[str, str]) -> None:
    code, out = _cli(deploy, ["--dry-run", "--param", "MediaBucketName=my-media"], env)
    assert code == 0, out
    for name, body in load_yaml(TEMPLATE)["Resources"].items():
        assert f"{name} " in out and body["Type"] in out
    assert "! parameter MpsPipelineId has no value" in out
    assert "! parameter MediaBucketName" not in out
    assert "build+upload  submit_on_upload.zip  (functions/submit_on_upload + shared + runtime dependencies)" in out


def test_dry_run_can_build(deploy: ModuleType, env: dict[str, str], tmp_path: Path) -> None:
    args = ["--dry-run", "--build", "--skip-deps", "--build-dir", str(tmp_path)]
    code, out = _cli(deploy, args, env)
    assert code == 0, out
    assert sorted(p.name for p in tmp_path.glob("*.zip")) == [
        "report_failed.zip",
        "review.zip",
        "store_results.zip",
        "submit_on_upload.zip",
    ]


def test_print_policy(deploy: ModuleType, env: dict[str, str]) -> None:
    code, out = _cli(deploy, ["--print-policy"], env)
    assert code == 0, out
    document = json.loads(out)
    actions = {a for statement in document["Statement"] for a in statement["Action"]}
    assert {"mts:SubmitFpShotJob", "ots:PutRow", "mns:SendMessage", "log:PostLogStoreLogs"} <= actions


# ------------------------------------------------------------------------------------------ end to end


def test_deploy_creates_updates_and_deletes_one_stack(
    deploy: ModuleType, oss: OssCompatServer, media: oss2.Bucket, env: dict[str, str], tmp_path: Path
) -> None:
    with FakeRos() as fake:
        code, out = _cli(deploy, _deploy_args(fake, oss, media, tmp_path), env)
        assert code == 0, out
        assert fake.actions()[:2] == ["ListStacks", "CreateStack"]
        assert {call.style for call in fake.calls} == {"ACS3"}  # the SDK's default signature, verified
        [stack] = fake.stacks.values()
        assert stack.status == "CREATE_COMPLETE"
        assert stack.template == load_yaml(TEMPLATE)  # template.yml itself (as JSON), checked by the stand-in
        # The archives are in the media bucket under the keys the stack was given, and hold the code.
        for key in ("SubmitOnUploadCodeObject", "StoreResultsCodeObject", "ReportFailedCodeObject"):
            archive = zipfile.ZipFile(io.BytesIO(media.get_object(stack.parameters[key]).read()))
            assert "index.py" in archive.namelist() and "shared/__init__.py" in archive.namelist()
        assert stack.parameters["CodeBucketName"] == media.bucket_name
        assert stack.parameters["MpsPipelineId"] == "pipe-0123"
        # The stack's outputs are printed, resolved for this account and region.
        assert (
            "StoreUrl             tablestore://fpscreen-db@fpscreen-db.cn-shanghai.vpc.tablestore.aliyuncs.com" in out
        )
        assert "NotifyTopic          fpscreen-mps-notify" in out

        # Same sources, same parameters: ROS refuses the no-op update, the deploy says so and succeeds.
        code, out = _cli(deploy, _deploy_args(fake, oss, media, tmp_path), env)
        assert code == 0, out
        assert "up to date" in out and "unchanged  oss://" in out
        assert len(fake.stacks) == 1

        code, out = _cli(deploy, _deploy_args(fake, oss, media, tmp_path, MpsPipelineId="pipe-9999"), env)
        assert code == 0, out
        assert stack.status == "UPDATE_COMPLETE" and stack.parameters["MpsPipelineId"] == "pipe-9999"
        assert fake.actions().count("UpdateStack") == 2

        code, out = _cli(deploy, [*_deploy_args(fake, oss, media, tmp_path), "--delete"], env)
        assert code == 0, out
        assert stack.status == "DELETE_COMPLETE" and "deleted" in out


class _AccountSettings(BaseHTTPRequestHandler):
    """FC 2.0's GetAccountSettings, as much as deploy.py reads of it; records what it was asked."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        ok = self.path == "/2016-08-15/account-settings" and self.headers.get("Authorization", "").startswith(
            f"FC {AK}:"
        )
        body = json.dumps({"availableAZs": ["cn-shanghai-f", "cn-shanghai-g"]} if ok else {"ErrorCode": "NotFound"})
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        return


def test_the_zone_is_one_fc_supports_unless_given(
    deploy: ModuleType, oss: OssCompatServer, media: oss2.Bucket, env: dict[str, str], tmp_path: Path
) -> None:
    fc = ThreadingHTTPServer(("127.0.0.1", 0), _AccountSettings)
    threading.Thread(target=fc.serve_forever, daemon=True).start()
    try:
        with FakeRos() as fake:
            args = _deploy_args(fake, oss, media, tmp_path, drop="ZoneId")
            args += ["--fc-endpoint", f"http://127.0.0.1:{fc.server_port}", "--account-id", "123"]
            code, out = _cli(deploy, args, env)
            assert code == 0, out
            [stack] = fake.stacks.values()
            assert stack.parameters["ZoneId"] == "cn-shanghai-f"
            assert "zone cn-shanghai-f (FC supports it in cn-shanghai)" in out
            assert [path for path, _ in _AccountSettings.seen] == ["/2016-08-15/account-settings"]
    finally:
        fc.shutdown()
        fc.server_close()


def test_a_failing_resource_fails_the_deploy_with_its_events(
    deploy: ModuleType, oss: OssCompatServer, media: oss2.Bucket, env: dict[str, str], tmp_path: Path
) -> None:
    with FakeRos(fail_resource="StoreVpcBinding") as fake:
        code, out = _cli(deploy, _deploy_args(fake, oss, media, tmp_path), env)
    assert code == 1
    assert "deploy failed: stack fpscreen CREATE_FAILED" in out
    [line] = [line for line in out.splitlines() if line.startswith("StoreVpcBinding")]
    assert "ALIYUN::OTS::VpcBinder" in line and "CREATE_FAILED" in line and "invalid" in line


def test_missing_parameters_are_refused_before_any_call(
    deploy: ModuleType, oss: OssCompatServer, media: oss2.Bucket, env: dict[str, str], tmp_path: Path
) -> None:
    with FakeRos() as fake:
        code, out = _cli(deploy, _deploy_args(fake, oss, media, tmp_path, drop="LibraryFpDBId"), env)
        assert code == 1 and "give --param for ['LibraryFpDBId']" in out
        assert fake.calls == [] and list(oss2.ObjectIterator(media)) == []


def test_a_wrong_secret_is_refused_by_the_stand_in(
    deploy: ModuleType, oss: OssCompatServer, media: oss2.Bucket, env: dict[str, str], tmp_path: Path
) -> None:
    with FakeRos() as fake:
        code, out = _cli(
            deploy, _deploy_args(fake, oss, media, tmp_path), {**env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"}
        )
        assert code == 1
        assert "deploy failed: IncompleteSignature" in out  # the ACS3 gateway's code for a signature mismatch
        assert fake.calls == [] and fake.stacks == {}


def test_a_rolled_back_stack_must_be_deleted_first(
    deploy: ModuleType, oss: OssCompatServer, media: oss2.Bucket, env: dict[str, str], tmp_path: Path
) -> None:
    with FakeRos() as fake:
        assert _cli(deploy, _deploy_args(fake, oss, media, tmp_path), env)[0] == 0
        [stack] = fake.stacks.values()
        stack.status = "CREATE_ROLLBACK_COMPLETE"
        code, out = _cli(deploy, _deploy_args(fake, oss, media, tmp_path, MpsPipelineId="pipe-2"), env)
        assert code == 1 and "is CREATE_ROLLBACK_COMPLETE" in out and "--delete" in out
        assert "UpdateStack" not in fake.actions()


def test_the_stand_in_checks_the_template_it_receives(
    deploy: ModuleType, fake_ros_stack: tuple[FakeRos, object]
) -> None:
    fake, stack = fake_ros_stack
    old = load_yaml(ROOT / "tests" / "template" / "fixtures" / "funcraft_template.yml")
    with pytest.raises(Exception, match="InvalidTemplate") as caught:
        stack.create(json.dumps(old), [])  # type: ignore[attr-defined]
    assert "Aliyun::Serverless::Service" in str(caught.value)
    assert fake.stacks == {}


@pytest.fixture
def fake_ros_stack(deploy: ModuleType) -> Iterator[tuple[FakeRos, object]]:
    from rich.console import Console

    from shared.credentials import Credentials

    with FakeRos() as fake:
        client = deploy.ros_client("cn-shanghai", fake.endpoint, Credentials(AK, SK))
        yield fake, deploy.Stack(client, "cn-shanghai", "fpscreen", Console(file=io.StringIO()), poll_seconds=0.01)


# ----------------------------------------------------------------------------------------- retention


def _deployment(deploy: ModuleType, clients: dict[str, FakeOTSClient], parameters: dict[str, str]) -> Any:
    console = Console(file=io.StringIO(), width=200)

    def tablestore_for(url: str) -> FakeOTSClient:
        return clients[url]

    return deploy.Deployment(
        TEMPLATE, parameters, "cn-shanghai", None, lambda _: None, Path("."), None, console, tablestore_for
    )


def test_retention_is_set_on_the_indexed_tables_ros_cannot(deploy: ModuleType) -> None:
    url = "tablestore://fpscreen-db@fpscreen-db.cn-shanghai.ots.aliyuncs.com"
    client = FakeOTSClient()
    create_tables(client)  # as ROS creates them: indexes, no time to live on fp_jobs / fp_verdicts
    template = load_template(TEMPLATE)
    deployment = _deployment(deploy, {url: client}, {"DataRetentionSeconds": str(30 * 86400)})
    assert deployment.apply_retention(template, {"PublicStoreUrl": url}) == ["fp_jobs", "fp_verdicts"]
    for name in ("fp_jobs", "fp_verdicts"):
        options = client.options(name)
        assert options is not None and (options.time_to_live, options.allow_update) == (30 * 86400, False)
    assert client.options("fp_failed_jobs").time_to_live == -1  # type: ignore[union-attr]
    # The template's default applies when no value is given; the store still works on the tables as set.
    deployment = _deployment(deploy, {url: client}, {})
    deployment.apply_retention(template, {"PublicStoreUrl": url})
    assert client.options("fp_jobs").time_to_live == 31536000  # type: ignore[union-attr]
    store = TablestoreStore(client, sleep=lambda _: None)
    assert store.save_job(JobRecord(job_id="j", state="Queuing")) and store.recent_jobs(1)[0].job_id == "j"


def test_retention_needs_the_store_url_output(deploy: ModuleType) -> None:
    deployment = _deployment(deploy, {}, {})
    with pytest.raises(deploy.DeployError, match="PublicStoreUrl"):
        deployment.apply_retention(load_template(TEMPLATE), {})

"""engine/template.py must reject what Funcraft's schema rejects, so a broken template fails in CI, not at deploy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from engine.template import TemplateError, load_template, load_yaml, parse_assignments, parse_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yml"


@pytest.fixture
def raw() -> dict[str, Any]:
    return copy.deepcopy(load_yaml(TEMPLATE))


def _fn(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return raw["Resources"]["fpscreen"][name]


def _parse(raw: dict[str, Any], **params: str) -> Any:
    return parse_template(raw, path=TEMPLATE, parameters=params or None)


def test_short_form_intrinsics_become_long_form(raw: dict[str, Any]) -> None:
    fn = _fn(raw, "submit_on_upload")
    assert fn["Properties"]["Layers"] == [{"Ref": "SharedLayerArn"}]
    assert fn["Properties"]["EnvironmentVariables"]["MPS_ENDPOINT"] == {"Fn::Sub": "mts.${Region}.aliyuncs.com"}


def test_long_form_intrinsics_resolve_too(raw: dict[str, Any]) -> None:
    env = _fn(raw, "store_results")["Properties"]["EnvironmentVariables"] = {
        "MPS_REGION": {"Ref": "Region"},
        "MPS_ENDPOINT": {"Fn::Sub": ["mts.${R}.aliyuncs.com", {"R": {"Ref": "Region"}}]},
    }
    assert env
    fn = _parse(raw, Region="cn-beijing").function("store_results")
    assert fn.environment == {"MPS_REGION": "cn-beijing", "MPS_ENDPOINT": "mts.cn-beijing.aliyuncs.com"}


def test_parameter_overrides(raw: dict[str, Any]) -> None:
    template = _parse(raw, Region="cn-hangzhou", MediaBucketName="b1")
    assert {t.bucket for t in template.oss_triggers()} == {"b1"}
    assert "MediaBucketName" not in template.missing_parameters
    with pytest.raises(TemplateError, match="undeclared"):
        _parse(raw, NoSuchParam="x")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: _fn(r, "submit_on_upload")["Properties"].update(Handlr="index.handler"), "Handlr"),
        (lambda r: _fn(r, "submit_on_upload")["Properties"].pop("CodeUri"), "CodeUri"),
        (lambda r: _fn(r, "submit_on_upload")["Properties"].update(memory_size=512), "memory_size"),
        (lambda r: _fn(r, "submit_on_upload")["Properties"].update(Runtime="python3.99"), "runtime"),
        (lambda r: _fn(r, "submit_on_upload")["Properties"].update(Handler="index"), "Handler"),
        (
            lambda r: _fn(r, "submit_on_upload")["Events"]["library-upload"]["Properties"]["Filter"]["Key"].pop(
                "Suffix"
            ),
            "Prefix and Suffix|both present",
        ),
        (
            lambda r: _fn(r, "submit_on_upload")["Events"]["library-upload"]["Properties"].update(
                Events=["ObjectCreated:*"]
            ),
            "oss: prefix",
        ),
        (
            lambda r: _fn(r, "store_results")["Events"]["mps-notify"]["Properties"].pop("TopicName"),
            "TopicName",
        ),
        (
            lambda r: _fn(r, "store_results")["Events"]["mps-notify"]["Properties"].update(
                NotifyStrategy="RETRY_FOREVER"
            ),
            "NotifyStrategy",
        ),
        (
            lambda r: _fn(r, "report_failed")["Events"]["every-minute"]["Properties"].update(
                CronExpression="* * * * *"
            ),
            "6-field",
        ),
        (
            lambda r: _fn(r, "report_failed")["Properties"]["EnvironmentVariables"].update(
                FPSCREEN_REPORT_MAX_ATTEMPTS=5
            ),
            "quoted string",
        ),
        (
            lambda r: _fn(r, "submit_on_upload")["Properties"]["AsyncConfiguration"].update(MaxAsyncRetryAttempts=9),
            "MaxAsyncRetryAttempts",
        ),
        (lambda r: _fn(r, "submit_on_upload")["Properties"].update(Layers=[{"Ref": "Nope"}]), "unknown parameter"),
        (
            lambda r: _fn(r, "submit_on_upload")["Properties"].update(Layers=[{"Fn::GetAtt": ["a", "b"]}]),
            "unsupported intrinsic",
        ),
        (lambda r: r["Resources"]["fpscreen-ots"]["fp_jobs"]["Properties"].update(PrimaryKeyList=[]), "PrimaryKey"),
        (
            lambda r: r["Resources"]["fpscreen-ots"]["fp_jobs"]["Properties"]["PrimaryKeyList"][0].update(Type="TEXT"),
            "STRING",
        ),
        (
            lambda r: r["Resources"]["fpscreen-logs"]["fc-invocations"].update(Type="Aliyun::Serverless::Log"),
            "Logstore",
        ),
        (lambda r: r["Resources"]["fpscreen"]["Properties"]["Policies"][0]["Statement"][0].pop("Resource"), "Resource"),
        (lambda r: r.update(Transform="Aliyun::Serverless-2099-01-01"), "Transform"),
        (lambda r: r["Resources"].pop("fpscreen"), "exactly one"),
        (lambda r: r["Resources"].update(bucket={"Type": "ALIYUN::OSS::Bucket"}), "unsupported resource"),
    ],
)
def test_invalid_templates_are_rejected(raw: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(raw)
    with pytest.raises(TemplateError, match=message):
        _parse(raw)


def test_duplicate_yaml_keys_are_rejected(tmp_path: Path) -> None:
    # PyYAML alone keeps the last duplicate, which would silently drop a resource.
    text = TEMPLATE.read_text(encoding="utf-8")
    duplicated = text + "\n  fpscreen-logs:\n    Type: 'Aliyun::Serverless::Log'\n    Properties: {Description: x}\n"
    path = tmp_path / "template.yml"
    path.write_text(duplicated, encoding="utf-8")
    with pytest.raises(TemplateError, match="duplicate key 'fpscreen-logs'"):
        load_template(path)


def test_unreadable_template(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.yml")


def test_parameter_assignments() -> None:
    assert parse_assignments(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(TemplateError, match="NAME=VALUE"):
        parse_assignments(["novalue"])

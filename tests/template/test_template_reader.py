"""engine/template.py reads template.yml exactly: a broken template fails in CI, not at deploy."""

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


def _props(raw: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return raw["Resources"][logical_id]["Properties"]


def _parse(raw: dict[str, Any], **params: str) -> Any:
    return parse_template(raw, path=TEMPLATE, parameters=params or None)


def test_short_form_intrinsics_become_long_form(raw: dict[str, Any]) -> None:
    env = _props(raw, "SubmitOnUpload")["EnvironmentVariables"]
    assert env["MPS_REGION"] == {"Ref": "ALIYUN::Region"}
    assert env["MPS_ENDPOINT"] == {"Fn::Sub": "mts.${ALIYUN::Region}.aliyuncs.com"}
    assert _props(raw, "ScreenUploadTrigger")["FunctionName"] == {"Fn::GetAtt": ["SubmitOnUpload", "FunctionName"]}


def test_long_form_intrinsics_resolve_too(raw: dict[str, Any]) -> None:
    _props(raw, "StoreResults")["EnvironmentVariables"] = {
        "MPS_REGION": {"Ref": "ALIYUN::Region"},
        "MPS_ENDPOINT": {"Fn::Sub": ["mts.${R}.aliyuncs.com", {"R": {"Ref": "ALIYUN::Region"}}]},
        "FPSCREEN_STORE_URL": {"Fn::Sub": "tablestore://${Store.InstanceName}@h"},
        "MPS_PIPELINE_ID": {"Fn::GetAtt": ["NotifyTopic", "TopicName"]},
    }
    fn = _parse(raw, **{"ALIYUN::Region": "cn-beijing"}).function("store_results")
    assert fn.environment == {
        "MPS_REGION": "cn-beijing",
        "MPS_ENDPOINT": "mts.cn-beijing.aliyuncs.com",
        "FPSCREEN_STORE_URL": "tablestore://fpscreen-db@h",  # GetAtt of a declared property: its value
        "MPS_PIPELINE_ID": "fpscreen-mps-notify",
    }


def test_attributes_the_cloud_assigns_stay_placeholders(raw: dict[str, Any]) -> None:
    template = _parse(raw)
    assert template.service.role == "${FunctionRole.Arn}"
    assert template.service.vpc_config is not None and template.service.vpc_config.vpc_id == "${Vpc.VpcId}"
    assert "FunctionRole.Arn" not in template.missing_parameters


def test_parameter_overrides(raw: dict[str, Any]) -> None:
    template = _parse(raw, **{"ALIYUN::Region": "cn-hangzhou", "MediaBucketName": "b1"})
    assert {t.bucket for t in template.oss_triggers()} == {"b1"}
    assert {t.region for t in template.mns_topic_triggers()} == {"cn-hangzhou"}
    assert "MediaBucketName" not in template.missing_parameters
    assert template.region == "cn-hangzhou"
    with pytest.raises(TemplateError, match="undeclared"):
        _parse(raw, NoSuchParam="x")
    with pytest.raises(TemplateError, match="does not match"):
        _parse(raw, TablestoreInstanceName="x")


def test_the_funcraft_template_is_refused() -> None:
    with pytest.raises(TemplateError, match=r"Transform.*deprecated"):
        load_template(TEMPLATE.parent / "tests" / "template" / "fixtures" / "funcraft_template.yml")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: _props(r, "SubmitOnUpload").update(Handlr="index.handler"), "Handlr"),
        (lambda r: _props(r, "SubmitOnUpload").update(Layers=["acs:fc:cn-shanghai:1:layers/x/versions/1"]), "Layers"),
        (lambda r: _props(r, "SubmitOnUpload").pop("Code"), "Code"),
        (lambda r: r["Resources"]["SubmitOnUpload"].pop("Metadata"), "Metadata.Source"),
        (lambda r: _props(r, "SubmitOnUpload").update(memory_size=512), "memory_size"),
        (lambda r: _props(r, "SubmitOnUpload").update(MemorySize=300), "multiple of 64"),
        (lambda r: _props(r, "SubmitOnUpload").update(Runtime="python3.99"), "runtime"),
        (lambda r: _props(r, "SubmitOnUpload").update(Handler="index"), "Handler"),
        (lambda r: _props(r, "LibraryUploadTrigger")["TriggerConfig"]["filter"]["key"].pop("suffix"), "suffix"),
        (
            lambda r: _props(r, "LibraryUploadTrigger")["TriggerConfig"].update(events=["ObjectCreated:*"]),
            "oss: prefix",
        ),
        (lambda r: _props(r, "LibraryUploadTrigger").update(SourceArn="my-bucket"), "SourceArn"),
        (lambda r: _props(r, "MpsNotifyTrigger").pop("SourceArn"), "SourceArn"),
        (
            lambda r: _props(r, "MpsNotifyTrigger")["TriggerConfig"].update(notifyStrategy="RETRY_FOREVER"),
            "notifyStrat",
        ),
        (lambda r: _props(r, "EveryMinuteTrigger")["TriggerConfig"].update(cronExpression="* * * * *"), "6-field"),
        (lambda r: _props(r, "EveryMinuteTrigger").update(TriggerType="logs"), "unsupported TriggerType"),
        (lambda r: _props(r, "EveryMinuteTrigger").update(TriggerType="http"), "authType"),
        (lambda r: _props(r, "EveryMinuteTrigger").update(FunctionName="nope"), "does not declare"),
        (
            lambda r: _props(r, "ReportFailed")["EnvironmentVariables"].update(FPSCREEN_REPORT_MAX_ATTEMPTS=5),
            "quoted string",
        ),
        (lambda r: _props(r, "SubmitOnUpload")["AsyncConfiguration"].update(MaxAsyncRetryAttempts=9), "MaxAsyncRetry"),
        (lambda r: _props(r, "SubmitOnUpload").update(Description={"Ref": "Nope"}), "unknown parameter"),
        (lambda r: _props(r, "SubmitOnUpload").update(Description={"Fn::GetAtt": ["Nope", "b"]}), "unknown resource"),
        (lambda r: _props(r, "SubmitOnUpload").update(Description={"Fn::Join": ["", []]}), "unsupported intrinsic"),
        (lambda r: _props(r, "JobsTable").update(PrimaryKey=[]), "PrimaryKey"),
        (lambda r: _props(r, "JobsTable")["PrimaryKey"][0].update(Type="TEXT"), "STRING"),
        (lambda r: _props(r, "JobsTable").update(InstanceName="elsewhere"), "in no Tablestore instance"),
        (lambda r: _props(r, "Store").update(InstanceName="fpscreen-ots"), "reserved word 'ots'"),
        (lambda r: _props(r, "Store").update(InstanceName="taobao-fp"), "reserved word 'taobao'"),
        (lambda r: _props(r, "FunctionRole")["Policies"][0]["PolicyDocument"]["Statement"][0].pop("Action"), "Action"),
        (lambda r: r.update(Transform="Aliyun::Serverless-2018-04-03"), "Transform"),
        (lambda r: r.update(ROSTemplateFormatVersion="2010-09-09"), "ROSTemplateFormatVersion"),
        (lambda r: r["Resources"].update(Service2=copy.deepcopy(r["Resources"]["Service"])), "exactly one"),
        (lambda r: r["Resources"].update(Bucket={"Type": "ALIYUN::OSS::Bucket"}), "unsupported resource"),
        (lambda r: r["Resources"]["Store"].update(Propertys={}), "unknown keys"),
    ],
)
def test_invalid_templates_are_rejected(raw: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(raw)
    with pytest.raises(TemplateError, match=message):
        _parse(raw)


def test_duplicate_yaml_keys_are_rejected(tmp_path: Path) -> None:
    # PyYAML alone keeps the last duplicate, which would silently drop a resource.
    text = TEMPLATE.read_text(encoding="utf-8")
    duplicated = text.replace(
        "\nOutputs:\n", "\n  LogProject:\n    Type: 'ALIYUN::SLS::Project'\n    Properties: {Name: x}\n\nOutputs:\n"
    )
    path = tmp_path / "template.yml"
    path.write_text(duplicated, encoding="utf-8")
    with pytest.raises(TemplateError, match="duplicate key 'LogProject'"):
        load_template(path)


def test_unreadable_template(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.yml")


def test_parameter_assignments() -> None:
    assert parse_assignments(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(TemplateError, match="NAME=VALUE"):
        parse_assignments(["novalue"])

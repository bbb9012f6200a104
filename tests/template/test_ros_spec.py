"""template.yml against ROS's published resource specifications (the ros-cdk-* jsii assemblies, read offline by
tests/support/ros_spec.py): every property exists, every required one is present, literal values have the
documented type, range and values, and every Ref/GetAtt/Sub names something real. The check must fail on the
Funcraft template this project used to ship, and on each of the mistakes it would let through."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.template import load_yaml
from tests.support.ros_spec import check_template, documented_runtimes, load_specs

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yml"
FUNCRAFT_TEMPLATE = Path(__file__).parent / "fixtures" / "funcraft_template.yml"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_yaml(TEMPLATE)


def _props(doc: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return doc["Resources"][logical_id]["Properties"]


def test_specs_come_from_the_assemblies() -> None:
    specs = load_specs()
    for type_name in (
        "ALIYUN::FC::Service",
        "ALIYUN::FC::Function",
        "ALIYUN::FC::Trigger",
        "ALIYUN::FC3::Function",
        "ALIYUN::OTS::Instance",
        "ALIYUN::OTS::VpcBinder",
        "ALIYUN::MNS::Queue",
        "ALIYUN::RAM::Role",
        "ALIYUN::SLS::Logstore",
        "ALIYUN::ECS::VSwitch",
        "ALIYUN::OSS::Bucket",
    ):
        assert type_name in specs.resources, type_name
    # Template names come from the renderers, not from capitalising the camelCase names.
    logstore = specs.resources["ALIYUN::SLS::Logstore"].shape.props
    assert {"TTL", "ShardCount", "LogstoreName"} <= set(logstore) and logstore["LogstoreName"].required
    assert logstore["TTL"].range == (1, 3650)
    vpc_config = specs.shapes["@alicloud/ros-cdk-fc.RosService.VpcConfigProperty"].props
    assert vpc_config["VSwitchIds"].required
    assert specs.resources["ALIYUN::OTS::Instance"].shape.props["ClusterType"].allowed == ["SSD", "HYBRID"]
    assert "ARN.WithSlash" in specs.resources["ALIYUN::MNS::Queue"].attributes
    assert {"python3.10", "python3.9", "python3", "custom"} <= documented_runtimes(specs)
    assert "python3.11" not in documented_runtimes(specs)


def test_template_conforms_to_the_ros_specifications(document: dict[str, Any]) -> None:
    assert check_template(document) == []


def test_the_funcraft_template_fails() -> None:
    problems = check_template(load_yaml(FUNCRAFT_TEMPLATE))
    assert "Transform 'Aliyun::Serverless-2018-04-03': not a native ROS template" in problems
    for name, kind in (
        ("fpscreen", "Service"),
        ("fpscreen-ots", "TableStore"),
        ("fpscreen-logs", "Log"),
        ("fpscreen-mps-notify", "MNSTopic"),
    ):
        assert f"Resources.{name}: 'Aliyun::Serverless::{kind}' is not a ROS resource type" in problems


Mutation = Callable[[dict[str, Any]], Any]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        # the Funcraft shapes, written into native resources
        (
            lambda d: _props(d, "SubmitOnUpload").update(CodeUri="functions/submit_on_upload"),
            "Resources.SubmitOnUpload.Properties: unknown property 'CodeUri'",
        ),
        (
            lambda d: _props(d, "SubmitOnUpload").update(Layers=["acs:fc:cn-shanghai:1:layers/x/versions/1"]),
            "Resources.SubmitOnUpload.Properties: unknown property 'Layers'",
        ),
        (
            lambda d: _props(d, "Store").update(InstanceName="fpscreen-ots"),
            "Resources.Store.InstanceName: 'fpscreen-ots' contains the reserved word 'ots'",
        ),
        (
            lambda d: _props(d, "Service")["LogConfig"].update(LogStore="fc-invocations"),
            "Resources.Service.Properties.LogConfig: unknown property 'LogStore' (did you mean Logstore?)",
        ),
        # documented values, types, ranges, required properties
        (
            lambda d: _props(d, "SubmitOnUpload").update(Runtime="python3.11"),
            "Resources.SubmitOnUpload.Runtime: 'python3.11' is not a documented FC runtime",
        ),
        (
            lambda d: _props(d, "SubmitOnUpload").pop("ServiceName"),
            "Resources.SubmitOnUpload.Properties: required property 'ServiceName' is missing",
        ),
        (
            lambda d: _props(d, "SubmitOnUpload").update(MemorySize="256"),
            'Resources.SubmitOnUpload.Properties.MemorySize: "256" does not have the type number',
        ),
        (
            lambda d: _props(d, "Store").update(ClusterType="Hybrid"),
            "Resources.Store.Properties.ClusterType: 'Hybrid' is not one of ['SSD', 'HYBRID']",
        ),
        (
            lambda d: _props(d, "Logstore").update(TTL=5000),
            "Resources.Logstore.Properties.TTL: 5000 is outside [1.0, 3650.0]",
        ),
        (
            lambda d: _props(d, "StoreVpcBinding")["Vpcs"][0].pop("VirtualSwitchId"),
            "Resources.StoreVpcBinding.Properties.Vpcs[0]: required property 'VirtualSwitchId' is missing",
        ),
        (
            lambda d: _props(d, "FunctionRole")["Policies"][0]["PolicyDocument"]["Statement"][4].update(Resource="*"),
            'Resources.FunctionRole.Properties.Policies[0].PolicyDocument.Statement[4].Resource: "*" does not have '
            "the type array<any>",
        ),
        (
            lambda d: _props(d, "Service")["VpcConfig"].update(VSwitchIds="vsw-1"),
            'Resources.Service.Properties.VpcConfig.VSwitchIds: "vsw-1" does not have the type array<string>',
        ),
        # references
        (
            lambda d: _props(d, "SubmitOnUpload").update(Description={"Fn::GetAtt": ["SharedLayer", "Arn"]}),
            "Fn::GetAtt SharedLayer.Arn names no resource 'SharedLayer'",
        ),
        (
            lambda d: _props(d, "SubmitOnUpload").update(Description={"Fn::GetAtt": ["Store", "Endpoint"]}),
            "Fn::GetAtt Store.Endpoint: ALIYUN::OTS::Instance has no attribute 'Endpoint' (it has ['InstanceName', "
            "'PrivateEndpoint', 'PublicEndpoint', 'VpcEndpoint'])",
        ),
        (
            lambda d: _props(d, "SubmitOnUpload").update(Description={"Fn::Sub": "${Region}"}),
            "Fn::Sub ${Region} names no parameter or resource",
        ),
        (lambda d: _props(d, "SubmitOnUpload").update(Description={"Ref": "SharedLayerArn"}), "Ref 'SharedLayerArn'"),
        (lambda d: d["Resources"]["Service"].update(DependsOn=["Nope"]), "Resources.Service.DependsOn: no resource"),
    ],
)
def test_each_mistake_is_caught(document: dict[str, Any], mutate: Mutation, expected: str) -> None:
    broken = copy.deepcopy(document)
    mutate(broken)
    problems = check_template(broken)
    assert [p for p in problems if p.startswith(expected)], problems

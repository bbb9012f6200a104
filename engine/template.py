"""A typed reader of `template.yml`, a plain ROS template (`ROSTemplateFormatVersion: '2015-09-01'`, native
`ALIYUN::*` resource types): the one description of what is deployed, read by the tests, `scripts/deploy.py`,
`scripts/backfill.py` and the local stack alike.

    template = load_template("template.yml", parameters={"MediaBucketName": "my-media"})
    fn = template.function("submit_on_upload")       # handler, runtime, env, async config, triggers
    for trigger in template.oss_triggers(): ...      # bucket, events, prefix, suffix (+ FC TriggerConfig)

The resources the product needs are read into typed models whose property objects are exact (unknown keys are
errors), so a misspelt key fails here, not at deploy time. Which properties ROS itself accepts is checked
separately against ROS's published resource specifications (tests/support/ros_spec.py).

ROS intrinsics are understood in both spellings (`!Ref X` / `{"Ref": "X"}`, `!Sub`, `!GetAtt`). `Ref` and `Sub`
resolve against the template's `Parameters` (defaults, overridden by `parameters=`) and the pseudo parameters
(`ALIYUN::Region`, `ALIYUN::AccountId`, `ALIYUN::StackName`, `ALIYUN::StackId`, also given in `parameters=`).
A parameter without a value resolves to the placeholder `${Name}` and is listed in `Template.missing_parameters`,
so the structure can be read before deploy-time values exist. `GetAtt X.Attr` resolves to X's property `Attr`
when X declares it (a function's `FunctionName`, the instance's `InstanceName`, ...); otherwise (an ARN, an id
the cloud assigns) to the placeholder `${X.Attr}`.

Imports stay light (PyYAML + pydantic). The functions never import it, and scripts/deploy.py leaves it out of
their archives (the runtime has no PyYAML).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ROS_FORMAT_VERSION = "2015-09-01"
# The Funcraft transform this template used to need: Funcraft is deprecated and its validator refuses ROS tags.
LEGACY_TRANSFORM = "Aliyun::Serverless-2018-04-03"

SERVICE_TYPE = "ALIYUN::FC::Service"
FUNCTION_TYPE = "ALIYUN::FC::Function"
TRIGGER_TYPE = "ALIYUN::FC::Trigger"
LAYER_TYPE = "ALIYUN::FC::Layer"
TABLESTORE_TYPE = "ALIYUN::OTS::Instance"
TABLE_TYPE = "ALIYUN::OTS::Table"
VPC_BINDER_TYPE = "ALIYUN::OTS::VpcBinder"
LOG_TYPE = "ALIYUN::SLS::Project"
LOGSTORE_TYPE = "ALIYUN::SLS::Logstore"
LOG_INDEX_TYPE = "ALIYUN::SLS::Index"
MNS_TOPIC_TYPE = "ALIYUN::MNS::Topic"
MNS_QUEUE_TYPE = "ALIYUN::MNS::Queue"
ROLE_TYPE = "ALIYUN::RAM::Role"
VPC_TYPE = "ALIYUN::ECS::VPC"
VSWITCH_TYPE = "ALIYUN::ECS::VSwitch"
SECURITY_GROUP_TYPE = "ALIYUN::ECS::SecurityGroup"
# Read as typed models above; these are kept as plain data (the spec check covers their properties).
_PLAIN_TYPES = frozenset({VPC_BINDER_TYPE, LOG_INDEX_TYPE, VPC_TYPE, VSWITCH_TYPE, SECURITY_GROUP_TYPE})

PSEUDO_PARAMETERS = ("ALIYUN::Region", "ALIYUN::AccountId", "ALIYUN::StackName", "ALIYUN::StackId")
# What the pseudo parameters are when nothing says otherwise (the local stack, tests): the stack's name only.
PSEUDO_DEFAULTS: dict[str, str | None] = {
    "ALIYUN::Region": None,
    "ALIYUN::AccountId": None,
    "ALIYUN::StackName": "fpscreen",
    "ALIYUN::StackId": None,
}

# FC 2.0 runtimes (ROS ALIYUN::FC::Function's documented list).
KNOWN_RUNTIMES = frozenset(
    {
        "nodejs4.4",
        "nodejs6",
        "nodejs8",
        "nodejs10",
        "nodejs12",
        "nodejs14",
        "nodejs16",
        "python2.7",
        "python3",
        "python3.9",
        "python3.10",
        "java8",
        "java11",
        "go1",
        "php7.2",
        "dotnetcore2.1",
        "dotnetcore3.1",
        "custom",
        "custom.debian10",
        "custom-container",
    }
)
# Words Tablestore refuses inside an instance name (CreateInstance).
TABLESTORE_RESERVED_WORDS = ("ali", "ay", "ots", "taobao", "admin")

# The product's functions and the environment each one must be given. Every function builds
# `shared.config.Settings` from the same variables, so each declares all of them (tests/template checks this
# against shared.config.FUNCTION_ENV and against what template.yml declares).
FUNCTION_NAMES: tuple[str, ...] = ("submit_on_upload", "store_results", "report_failed", "review")
_COMMON_ENV = ("FPSCREEN_ROUTES", "FPSCREEN_STORE_URL", "MPS_ENDPOINT", "MPS_REGION", "MPS_PIPELINE_ID")
REQUIRED_ENV: dict[str, tuple[str, ...]] = {name: _COMMON_ENV for name in FUNCTION_NAMES}
REQUIRED_ENV["review"] = (*_COMMON_ENV, "FPSCREEN_REVIEWERS", "FPSCREEN_REVIEW_SECRET")

# Actions the functions' role may be granted, by service (least privilege): what the code calls, and what FC
# does on the role's behalf (dead-letter queue, logs, the VSwitch's network interfaces).
ALLOWED_ACTIONS: dict[str, frozenset[str]] = {
    "mts": frozenset({"mts:SubmitFpShotJob", "mts:QueryFpShotJobList", "mts:ReportFpShotJobResult"}),
    "ots": frozenset(
        {
            "ots:GetRow",
            "ots:PutRow",
            "ots:UpdateRow",
            "ots:DeleteRow",
            "ots:GetRange",
            "ots:BatchWriteRow",
            "ots:BatchGetRow",
        }
    ),
    # FC sends failed async events to the OnFailure queue with the service role; verdicts go to their topic.
    "mns": frozenset({"mns:SendMessage", "mns:PublishMessage"}),
    # Verdict actions on the screened object: tag, ACL, quarantine copy.
    "oss": frozenset(
        {
            "oss:GetObject",
            "oss:GetObjectTagging",
            "oss:PutObjectTagging",
            "oss:PutObjectAcl",
            "oss:PutObject",
            "oss:DeleteObject",
        }
    ),
    # FC writes function logs to the service's Logstore with the service role.
    "log": frozenset({"log:PostLogStoreLogs"}),
    # FC attaches function instances to the service's VSwitch through ENIs it creates with the service role.
    "vpc": frozenset({"vpc:DescribeVSwitchAttributes"}),
    "ecs": frozenset(
        {
            "ecs:CreateNetworkInterface",
            "ecs:DeleteNetworkInterface",
            "ecs:DescribeNetworkInterfaces",
            "ecs:CreateNetworkInterfacePermission",
            "ecs:DescribeNetworkInterfacePermissions",
            "ecs:DeleteNetworkInterfacePermission",
        }
    ),
}

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]{0,127}$")
_EVERY = re.compile(r"^@every\s+(\d+[smh])+$")
_PARAM = re.compile(r"\$\{([A-Za-z][A-Za-z0-9:.]*)\}")
_TABLESTORE_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,14}[a-zA-Z0-9]$")


class TemplateError(ValueError):
    """template.yml is not readable or not valid; the message says where."""


# ---------------------------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that turns ROS short-form tags into their long form: `!Ref X` → `{"Ref": "X"}`,
    `!GetAtt a.b` → `{"Fn::GetAtt": ["a", "b"]}`, `!Sub s` → `{"Fn::Sub": s}`, `!Other v` → `{"Fn::Other": v}`."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # PyYAML keeps the last of two equal keys; in a template that silently drops a whole resource.
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: merged keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_multi_constructor("!", _intrinsic)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


class _Resolver:
    """Resolves `Ref`, `Fn::Sub` and `Fn::GetAtt` (see the module docstring); unknown names are errors."""

    def __init__(self, values: Mapping[str, Any], resources: Mapping[str, Any]) -> None:
        self.values = values
        self.resources = resources
        self.missing: set[str] = set()
        self._active: set[str] = set()

    def ref(self, name: str) -> Any:
        if name in self.resources:
            return "${" + name + "}"  # a resource's physical id: known once the stack exists
        if name not in self.values:
            raise TemplateError(f"reference to unknown parameter {name!r}")
        if self.values[name] is None:
            self.missing.add(name)
            return "${" + name + "}"
        return self.values[name]

    def get_att(self, resource: str, attribute: str) -> Any:
        body = self.resources.get(resource)
        if not isinstance(body, dict):
            raise TemplateError(f"Fn::GetAtt of unknown resource {resource!r}")
        props = body.get("Properties") or {}
        key = f"{resource}.{attribute}"
        if attribute in props and key not in self._active:
            self._active.add(key)
            try:
                return self.resolve(props[attribute])
            finally:
                self._active.discard(key)
        return "${" + key + "}"

    def sub(self, spec: Any) -> str:
        text, local = (spec[0], spec[1]) if isinstance(spec, list) else (spec, {})
        scope = {k: self.resolve(v) for k, v in (local or {}).items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in scope:
                return str(scope[name])
            if "." in name and not name.startswith("ALIYUN::"):
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute))
            return str(self.ref(name))

        return _PARAM.sub(one, str(text))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(str(value))
            if key == "Fn::Sub":
                return self.sub(value)
            if key == "Fn::GetAtt":
                if not (isinstance(value, list) and len(value) == 2):
                    raise TemplateError(f"Fn::GetAtt takes [resource, attribute], got {value!r}")
                return self.get_att(str(value[0]), str(value[1]))
            if isinstance(key, str) and key.startswith("Fn::"):
                raise TemplateError(f"unsupported intrinsic {key}: only Ref, Fn::Sub and Fn::GetAtt are resolved")
        return {key: self.resolve(value) for key, value in node.items()}


# -------------------------------------------------------------------------------------------- models


class _Props(BaseModel):
    """ROS property objects: exact (case-sensitive) keys, nothing unknown."""

    # Aliases only: a snake_case key (`memory_size:`) is as wrong in template.yml as a misspelt one.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Props):
    type: Literal["String", "Number", "CommaDelimitedList", "Json", "Boolean"] = Field(alias="Type")
    default: Any = Field(default=None, alias="Default")
    description: str | None = Field(default=None, alias="Description")
    allowed_values: list[Any] | None = Field(default=None, alias="AllowedValues")
    allowed_pattern: str | None = Field(default=None, alias="AllowedPattern")
    constraint_description: str | None = Field(default=None, alias="ConstraintDescription")
    association_property: str | None = Field(default=None, alias="AssociationProperty")
    label: str | None = Field(default=None, alias="Label")
    no_echo: bool | None = Field(default=None, alias="NoEcho")
    min_length: int | None = Field(default=None, alias="MinLength", ge=0)
    max_length: int | None = Field(default=None, alias="MaxLength", ge=0)
    min_value: float | None = Field(default=None, alias="MinValue")
    max_value: float | None = Field(default=None, alias="MaxValue")

    def check(self, name: str, value: Any) -> None:
        if value is None:
            return
        if self.min_length is not None and len(str(value)) < self.min_length:
            raise TemplateError(f"parameter {name} is shorter than {self.min_length} characters")
        if self.max_length is not None and len(str(value)) > self.max_length:
            raise TemplateError(f"parameter {name} is longer than {self.max_length} characters")
        if self.min_value is not None and float(value) < self.min_value:
            raise TemplateError(f"parameter {name}={value!r} is below {self.min_value}")
        if self.max_value is not None and float(value) > self.max_value:
            raise TemplateError(f"parameter {name}={value!r} is above {self.max_value}")
        if self.allowed_values is not None and value not in self.allowed_values:
            raise TemplateError(f"parameter {name}={value!r} is not one of {self.allowed_values}")
        if self.allowed_pattern is not None and not re.fullmatch(self.allowed_pattern, str(value)):
            raise TemplateError(f"parameter {name}={value!r} does not match {self.allowed_pattern}")


class PolicyStatement(_Props):
    effect: Literal["Allow", "Deny"] = Field(alias="Effect")
    action: list[str] = Field(alias="Action", min_length=1)
    resource: list[str] = Field(default_factory=list, alias="Resource")
    principal: dict[str, list[str]] | None = Field(default=None, alias="Principal")

    @field_validator("action", "resource", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("principal", mode="before")
    @classmethod
    def _principal_lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


class PolicyDocument(_Props):
    version: str = Field(alias="Version")
    statement: list[PolicyStatement] = Field(alias="Statement", min_length=1)

    def as_ram_json(self) -> dict[str, Any]:
        """The document as RAM takes it (CreatePolicy's PolicyDocument)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class RolePolicy(_Props):
    name: str = Field(alias="PolicyName", min_length=1)
    document: PolicyDocument = Field(alias="PolicyDocument")
    description: str | None = Field(default=None, alias="Description")


class Role(_Props):
    logical_id: str
    name: str = Field(alias="RoleName")
    description: str | None = Field(default=None, alias="Description")
    assume_role_policy: PolicyDocument = Field(alias="AssumeRolePolicyDocument")
    policies: list[RolePolicy] = Field(default_factory=list, alias="Policies")

    def trusted_services(self) -> set[str]:
        return {s for st in self.assume_role_policy.statement for s in (st.principal or {}).get("Service", [])}


class LogConfig(_Props):
    project: str = Field(alias="Project")
    logstore: str = Field(alias="Logstore")
    enable_request_metrics: bool | None = Field(default=None, alias="EnableRequestMetrics")


class VpcConfig(_Props):
    vpc_id: str = Field(alias="VpcId")
    vswitch_ids: list[str] = Field(alias="VSwitchIds", min_length=1)
    security_group_id: str = Field(alias="SecurityGroupId")


class AsyncDestination(_Props):
    on_success: str | None = Field(default=None, alias="OnSuccess")
    on_failure: str | None = Field(default=None, alias="OnFailure")


class AsyncConfig(_Props):
    # Ranges from FC's PutFunctionAsyncInvokeConfig.
    max_async_retry_attempts: int | None = Field(default=None, alias="MaxAsyncRetryAttempts", ge=0, le=8)
    max_async_event_age_in_seconds: int | None = Field(default=None, alias="MaxAsyncEventAgeInSeconds", ge=1, le=604800)
    destination: AsyncDestination | None = Field(default=None, alias="Destination")
    stateful_invocation: bool | None = Field(default=None, alias="StatefulInvocation")


class Code(_Props):
    bucket: str = Field(alias="OssBucketName", min_length=1)
    object: str = Field(alias="OssObjectName", min_length=1)


class _Trigger(_Props):
    logical_id: str
    name: str = Field(alias="TriggerName")
    function: str = Field(alias="FunctionName")
    service: str = Field(alias="ServiceName")
    invocation_role: str | None = Field(default=None, alias="InvocationRole")
    qualifier: str | None = Field(default=None, alias="Qualifier")
    source: str | None = Field(default=None, alias="SourceArn")

    @field_validator("name")
    @classmethod
    def _trigger_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"invalid trigger name {value!r}")
        return value

    def source_arn(self, region: str | None = None, account_id: str | None = None) -> str | None:
        return self.source


# An ARN's region and account may still be placeholders (`${ALIYUN::Region}`), which contain colons.
_ARN_PART = r"(\$\{[^}]*\}|[^:]*)"
_OSS_ARN = re.compile(rf"^acs:oss:{_ARN_PART}:{_ARN_PART}:([^:/]+)$")


class _OssKey(_Props):
    prefix: str
    suffix: str


class _OssFilter(_Props):
    key: _OssKey


class _OssConfig(_Props):
    # FC's OSS TriggerConfig; both prefix and suffix present (either may be "").
    events: list[str] = Field(min_length=1)
    filter: _OssFilter


class OssTrigger(_Trigger):
    type: Literal["oss"] = Field(default="oss", alias="TriggerType")
    source: str | None = Field(alias="SourceArn")  # required: the bucket
    config: _OssConfig = Field(alias="TriggerConfig")

    fc_type: ClassVar[str] = "oss"  # the FC API triggerType

    @field_validator("config")
    @classmethod
    def _oss_events(cls, value: _OssConfig) -> _OssConfig:
        for event in value.events:
            if not event.startswith("oss:"):
                raise ValueError(f"OSS trigger events are spelt with the oss: prefix, got {event!r}")
        return value

    @field_validator("source")
    @classmethod
    def _oss_arn(cls, value: str | None) -> str | None:
        if value is None or not _OSS_ARN.match(value):
            raise ValueError(f"an OSS trigger's SourceArn is acs:oss:<region>:<account>:<bucket>, got {value!r}")
        return value

    @property
    def bucket(self) -> str:
        match = _OSS_ARN.match(str(self.source))
        assert match is not None
        return match.group(3)

    @property
    def events(self) -> list[str]:
        return list(self.config.events)

    @property
    def prefix(self) -> str:
        return self.config.filter.key.prefix

    @property
    def suffix(self) -> str:
        return self.config.filter.key.suffix

    def fc_config(self) -> dict[str, Any]:
        return self.config.model_dump()

    def fires_for(self, event_name: str, key: str) -> bool:
        """Would OSS invoke this trigger for `event_name` (as in an event, e.g. `ObjectCreated:PutObject`)?"""
        if not (key.startswith(self.prefix) and key.endswith(self.suffix)):
            return False
        name = event_name if event_name.startswith("oss:") else f"oss:{event_name}"
        return any(
            name == pattern or (pattern.endswith(":*") and name.startswith(pattern[:-1])) for pattern in self.events
        )


class _MnsConfig(_Props):
    notifyContentFormat: Literal["STREAM", "JSON"] = "STREAM"
    notifyStrategy: Literal["BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"] = "BACKOFF_RETRY"
    filterTag: str | None = Field(default=None, max_length=16)


_MNS_TOPIC_ARN = re.compile(rf"^acs:mns:{_ARN_PART}:{_ARN_PART}:/topics/([^/]+)$")


class MnsTopicTrigger(_Trigger):
    type: Literal["mns_topic"] = Field(default="mns_topic", alias="TriggerType")
    source: str | None = Field(alias="SourceArn")  # required: the topic
    config: _MnsConfig = Field(alias="TriggerConfig")

    fc_type: ClassVar[str] = "mns_topic"

    @field_validator("source")
    @classmethod
    def _topic_arn(cls, value: str | None) -> str | None:
        if value is None or not _MNS_TOPIC_ARN.match(value):
            raise ValueError(
                f"an MNS topic trigger's SourceArn is acs:mns:<region>:<account>:/topics/<name>, got {value!r}"
            )
        return value

    @property
    def topic(self) -> str:
        match = _MNS_TOPIC_ARN.match(str(self.source))
        assert match is not None
        return match.group(3)

    @property
    def region(self) -> str:
        match = _MNS_TOPIC_ARN.match(str(self.source))
        assert match is not None
        return match.group(1)

    @property
    def notify_content_format(self) -> str:
        return self.config.notifyContentFormat

    @property
    def notify_strategy(self) -> str:
        return self.config.notifyStrategy

    @property
    def filter_tag(self) -> str | None:
        return self.config.filterTag

    def fc_config(self) -> dict[str, Any]:
        return self.config.model_dump(exclude_none=True)


class _TimerConfig(_Props):
    cronExpression: str = Field(min_length=1)
    enable: bool = True
    payload: str | None = None

    @field_validator("cronExpression")
    @classmethod
    def _cron_shape(cls, value: str) -> str:
        # FC timers take `@every 1m` or a 6-field cron expression whose first field is seconds.
        if not (_EVERY.match(value) or len(value.split()) == 6):
            raise ValueError(f"cronExpression {value!r} is neither '@every <n>[smh]' nor a 6-field cron")
        return value


class TimerTrigger(_Trigger):
    type: Literal["timer"] = Field(default="timer", alias="TriggerType")
    config: _TimerConfig = Field(alias="TriggerConfig")

    fc_type: ClassVar[str] = "timer"

    @property
    def cron(self) -> str:
        return self.config.cronExpression

    @property
    def enable(self) -> bool:
        return self.config.enable

    @property
    def payload(self) -> str | None:
        return self.config.payload

    def fc_config(self) -> dict[str, Any]:
        return self.config.model_dump(exclude_none=True)


class _HttpConfig(_Props):
    authType: Literal["anonymous", "function"]
    methods: list[Literal["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]] = Field(min_length=1)


class HttpTrigger(_Trigger):
    """An HTTP trigger: FC serves the function (WSGI on Python) at its URL. The local stack does not serve it:
    `fpscreen review` serves the same app (shared/review) locally."""

    type: Literal["http"] = Field(default="http", alias="TriggerType")
    config: _HttpConfig = Field(alias="TriggerConfig")

    fc_type: ClassVar[str] = "http"

    @property
    def auth_type(self) -> str:
        return self.config.authType

    @property
    def methods(self) -> list[str]:
        return list(self.config.methods)

    def fc_config(self) -> dict[str, Any]:
        return self.config.model_dump()


AnyTrigger = OssTrigger | MnsTopicTrigger | TimerTrigger | HttpTrigger
Trigger = Annotated[AnyTrigger, Field(discriminator="type")]


class Function(_Props):
    logical_id: str
    name: str = Field(alias="FunctionName")
    service: str = Field(alias="ServiceName")
    handler: str = Field(alias="Handler", pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    runtime: str = Field(alias="Runtime")
    code: Code = Field(alias="Code")
    code_uri: str = Field(min_length=1)  # the source folder (the resource's Metadata.Source)
    description: str | None = Field(default=None, alias="Description")
    memory_size: int = Field(default=128, alias="MemorySize", ge=128, le=32768)  # FC's default
    timeout: int = Field(default=3, alias="Timeout", ge=1, le=86400)
    initializer: str | None = Field(default=None, alias="Initializer")
    initialization_timeout: int | None = Field(default=None, alias="InitializationTimeout")
    environment: dict[str, str] = Field(default_factory=dict, alias="EnvironmentVariables")
    instance_concurrency: int | None = Field(default=None, alias="InstanceConcurrency", ge=1, le=100)
    instance_type: str | None = Field(default=None, alias="InstanceType")
    # ROS's ALIYUN::FC::Function has no Layers property (a `Layers:` key is refused as unknown); kept empty.
    layers: list[str] = Field(default_factory=list)
    async_config: AsyncConfig | None = Field(default=None, alias="AsyncConfiguration")
    triggers: list[Trigger] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _function_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"invalid function name {value!r}")
        return value

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        if value not in KNOWN_RUNTIMES:
            raise ValueError(f"unknown runtime {value!r}")
        return value

    @field_validator("memory_size")
    @classmethod
    def _memory_step(cls, value: int) -> int:
        if value % 64:
            raise ValueError(f"MemorySize {value} is not a multiple of 64 MB")
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _env_strings(cls, value: Any) -> Any:
        # FC environment values are strings; a bare YAML number or bool would be sent as the wrong type.
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(item, str):
                    raise ValueError(f"environment variable {key} must be a quoted string, got {item!r}")
        return value

    @property
    def handler_module(self) -> str:
        """`index` for `index.handler` (a dotted module for `pkg.mod.fn`)."""
        return self.handler.rsplit(".", 1)[0]

    @property
    def handler_attr(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    def code_dir(self, root: Path) -> Path:
        return (root / self.code_uri).resolve()

    def handler_file(self, root: Path) -> Path:
        """Where the Python runtime will look for the handler module inside the code package."""
        return self.code_dir(root) / (self.handler_module.replace(".", "/") + ".py")


class Layer(_Props):
    logical_id: str
    name: str = Field(alias="LayerName")
    description: str | None = Field(default=None, alias="Description")
    compatible_runtimes: list[str] = Field(alias="CompatibleRuntime", min_length=1)
    code: Code = Field(alias="Code")
    code_uri: str = Field(min_length=1)


class Service(_Props):
    logical_id: str
    name: str = Field(alias="ServiceName")
    description: str | None = Field(default=None, alias="Description")
    role: str | None = Field(default=None, alias="Role")
    internet_access: bool | None = Field(default=None, alias="InternetAccess")
    log_config: LogConfig | None = Field(default=None, alias="LogConfig")
    vpc_config: VpcConfig | None = Field(default=None, alias="VpcConfig")
    deletion_force: bool | None = Field(default=None, alias="DeletionForce")
    functions: list[Function] = Field(default_factory=list)


PkType = Literal["STRING", "INTEGER", "BINARY"]


class PrimaryKeyColumn(_Props):
    name: str = Field(alias="Name", min_length=1)
    type: PkType = Field(alias="Type")


class DefinedColumn(_Props):
    name: str = Field(alias="Name", min_length=1)
    type: Literal["INTEGER", "STRING", "BINARY", "BOOLEAN", "DOUBLE"] = Field(alias="Type")


class SecondaryIndex(_Props):
    name: str = Field(alias="IndexName", min_length=1)
    primary_keys: list[str] = Field(alias="PrimaryKeys", min_length=1, max_length=4)
    columns: list[str] = Field(alias="Columns")
    index_type: Literal["Global", "Local"] = Field(default="Global", alias="IndexType")


class Table(_Props):
    logical_id: str
    instance: str = Field(alias="InstanceName")
    name: str = Field(alias="TableName")
    primary_key: list[PrimaryKeyColumn] = Field(alias="PrimaryKey", min_length=1, max_length=4)
    time_to_live: int | str | None = Field(default=None, alias="TimeToLive")  # str: a parameter not given yet
    max_versions: int | None = Field(default=None, alias="MaxVersions")
    columns: list[DefinedColumn] = Field(default_factory=list, alias="Columns")
    secondary_indices: list[SecondaryIndex] = Field(default_factory=list, alias="SecondaryIndices")

    @property
    def defined_columns(self) -> tuple[tuple[str, str], ...]:
        return tuple((c.name, c.type) for c in self.columns)

    @property
    def indexes(self) -> dict[str, tuple[str, ...]]:
        """Index name → its key columns."""
        return {i.name: tuple(i.primary_keys) for i in self.secondary_indices}

    @property
    def key_schema(self) -> tuple[tuple[str, str], ...]:
        """`(("job_id", "STRING"), ...)` in key order, comparable with `shared.store.schema.TableSpec.primary_key`."""
        return tuple((c.name, c.type) for c in self.primary_key)


class TableStore(_Props):
    logical_id: str
    name: str = Field(alias="InstanceName")  # the instance name
    cluster_type: Literal["HYBRID", "SSD"] = Field(default="SSD", alias="ClusterType")
    description: str | None = Field(default=None, alias="Description")
    network: Literal["NORMAL", "VPC", "VPC_CONSOLE"] = Field(default="NORMAL", alias="Network")
    tables: list[Table] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _instance_name(cls, value: str) -> str:
        if value.startswith("${"):
            return value  # not known yet
        if not _TABLESTORE_NAME.match(value):
            raise ValueError(f"Tablestore instance name {value!r}: 3-16 letters, digits or '-', a letter first")
        reserved = [word for word in TABLESTORE_RESERVED_WORDS if word in value.lower()]
        if reserved:
            raise ValueError(f"Tablestore instance name {value!r} contains the reserved word {reserved[0]!r}")
        return value


class Logstore(_Props):
    logical_id: str
    project: str = Field(alias="ProjectName")
    name: str = Field(alias="LogstoreName")
    ttl: int = Field(default=30, alias="TTL", ge=1, le=3650)
    shard_count: int = Field(default=2, alias="ShardCount", ge=1, le=100)


class LogProject(_Props):
    logical_id: str
    name: str = Field(alias="Name")
    description: str | None = Field(default=None, alias="Description")
    logstores: list[Logstore] = Field(default_factory=list)


class MnsTopic(_Props):
    logical_id: str
    name: str = Field(alias="TopicName")
    maximum_message_size: int | None = Field(default=None, alias="MaximumMessageSize")
    logging_enabled: bool | None = Field(default=None, alias="LoggingEnabled")


class MnsQueue(_Props):
    logical_id: str
    name: str = Field(alias="QueueName")
    message_retention_period: int | None = Field(default=None, alias="MessageRetentionPeriod", ge=60, le=604800)


class CodeArtifact(BaseModel):
    """An archive the deploy builds and uploads: a function's code or the layer."""

    model_config = ConfigDict(frozen=True)

    logical_id: str
    kind: Literal["function", "layer"]
    name: str  # function or layer name
    source: str  # folder, relative to the template
    bundle: tuple[str, ...] = ()  # packages (folders next to the template) shipped with it, with their dependencies
    object_parameter: str  # the parameter that names its OSS key
    bucket_parameter: str  # the parameter that names its OSS bucket


class Template(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    raw: dict[str, Any]  # the document as ROS receives it (intrinsics in long form, YAML merges applied)
    parameters: dict[str, Parameter]
    parameter_values: dict[str, Any]  # declared parameters and pseudo parameters
    missing_parameters: frozenset[str]
    resources: dict[str, dict[str, Any]]  # every resource, resolved: {logical id: {Type, Properties, ...}}
    outputs: dict[str, Any]
    service: Service
    layers: list[Layer]
    tablestores: list[TableStore]
    log_projects: list[LogProject]
    mns_topics: list[MnsTopic]
    mns_queues: list[MnsQueue]
    roles: list[Role]
    artifacts: list[CodeArtifact]

    @property
    def root(self) -> Path:
        """The folder Metadata.Source paths are relative to."""
        return self.path.parent

    @property
    def region(self) -> str | None:
        return self.parameter_values.get("ALIYUN::Region")

    # --- functions & triggers
    @property
    def functions(self) -> list[Function]:
        return list(self.service.functions)

    def function(self, name: str) -> Function:
        for fn in self.service.functions:
            if fn.name == name:
                return fn
        raise KeyError(f"no function {name!r} in {self.path.name}; have {[f.name for f in self.functions]}")

    def triggers(self) -> Iterator[AnyTrigger]:
        for fn in self.service.functions:
            yield from fn.triggers

    def oss_triggers(self) -> list[OssTrigger]:
        return [t for t in self.triggers() if isinstance(t, OssTrigger)]

    def mns_topic_triggers(self) -> list[MnsTopicTrigger]:
        return [t for t in self.triggers() if isinstance(t, MnsTopicTrigger)]

    def timer_triggers(self) -> list[TimerTrigger]:
        return [t for t in self.triggers() if isinstance(t, TimerTrigger)]

    def http_triggers(self) -> list[HttpTrigger]:
        return [t for t in self.triggers() if isinstance(t, HttpTrigger)]

    def oss_triggers_for(self, event_name: str, key: str, bucket: str | None = None) -> list[OssTrigger]:
        """The OSS triggers OSS would fire for this object event (bucket compared only if given)."""
        return [
            t for t in self.oss_triggers() if t.fires_for(event_name, key) and (bucket is None or t.bucket == bucket)
        ]

    # --- data & logs
    @property
    def tablestore(self) -> TableStore:
        if len(self.tablestores) != 1:
            raise TemplateError(f"expected one Tablestore instance, found {len(self.tablestores)}")
        return self.tablestores[0]

    def tables(self) -> dict[str, Table]:
        return {t.name: t for store in self.tablestores for t in store.tables}

    @property
    def log_project(self) -> LogProject:
        if len(self.log_projects) != 1:
            raise TemplateError(f"expected one Log project, found {len(self.log_projects)}")
        return self.log_projects[0]

    # --- access
    def role(self, logical_id: str) -> Role:
        for role in self.roles:
            if role.logical_id == logical_id:
                return role
        raise KeyError(f"no RAM role {logical_id!r}")

    @property
    def function_role(self) -> Role:
        """The role the service runs its functions as (its `Role: !GetAtt <Role>.Arn`)."""
        match = re.fullmatch(r"\$\{([A-Za-z0-9]+)\.Arn\}", self.service.role or "")
        if match is None:
            raise TemplateError("the FC service's Role must be !GetAtt <a RAM role of this template>.Arn")
        return self.role(match.group(1))

    def policy_documents(self) -> list[PolicyDocument]:
        return [p.document for p in self.function_role.policies]

    def policy_statements(self) -> list[PolicyStatement]:
        return [s for doc in self.policy_documents() for s in doc.statement]

    def resource_types(self) -> dict[str, str]:
        return {name: str(body.get("Type")) for name, body in self.resources.items()}


# ---------------------------------------------------------------------------------------------- load

_TOP_LEVEL = frozenset(
    {
        "ROSTemplateFormatVersion",
        "Description",
        "Metadata",
        "Parameters",
        "Mappings",
        "Conditions",
        "Resources",
        "Outputs",
        "Rules",
        "Workspace",
    }
)
_RESOURCE_KEYS = frozenset({"Type", "Properties", "DependsOn", "Metadata", "DeletionPolicy", "Condition", "Count"})


def _source(body: Mapping[str, Any], where: str) -> str:
    source = (body.get("Metadata") or {}).get("Source")
    if not isinstance(source, str) or not source:
        raise TemplateError(f"{where}: Metadata.Source must name the folder the code is built from")
    return source


def _bundle(body: Mapping[str, Any], where: str) -> list[str]:
    bundle = (body.get("Metadata") or {}).get("Bundle") or []
    if not isinstance(bundle, list) or not all(isinstance(b, str) and b for b in bundle):
        raise TemplateError(f"{where}: Metadata.Bundle must be a list of package folders")
    return bundle


def _artifact(name: str, body: Mapping[str, Any], kind: Literal["function", "layer"]) -> CodeArtifact | None:
    """From the unresolved body: which parameters name the archive's bucket and key."""
    code = (body.get("Properties") or {}).get("Code") or {}
    obj, bucket = code.get("OssObjectName"), code.get("OssBucketName")
    if not (isinstance(obj, dict) and "Ref" in obj and isinstance(bucket, dict) and "Ref" in bucket):
        return None
    label = (body.get("Properties") or {}).get("FunctionName" if kind == "function" else "LayerName", name)
    return CodeArtifact(
        logical_id=name,
        kind=kind,
        name=str(label),
        source=_source(body, f"Resources.{name}"),
        bundle=tuple(_bundle(body, f"Resources.{name}")),
        object_parameter=str(obj["Ref"]),
        bucket_parameter=str(bucket["Ref"]),
    )


def parse_template(raw: Mapping[str, Any], *, path: Path, parameters: Mapping[str, Any] | None = None) -> Template:
    """Validate an already-loaded template document (see `load_template`)."""
    if not isinstance(raw, Mapping):
        raise TemplateError(f"{path}: the document is not a mapping")
    if "Transform" in raw:
        raise TemplateError(
            f"{path}: Transform {raw['Transform']!r} - write native ROS resources (ALIYUN::FC::*, ...) instead; "
            "Funcraft's Aliyun::Serverless transform is deprecated"
        )
    unknown = set(raw) - _TOP_LEVEL
    if unknown:
        raise TemplateError(f"{path}: unknown top-level keys {sorted(unknown)}")
    if raw.get("ROSTemplateFormatVersion") != ROS_FORMAT_VERSION:
        raise TemplateError(f"{path}: ROSTemplateFormatVersion must be '{ROS_FORMAT_VERSION}'")
    try:
        declared = {name: Parameter.model_validate(spec) for name, spec in (raw.get("Parameters") or {}).items()}
    except ValidationError as exc:
        raise TemplateError(f"{path}: Parameters: {exc}") from exc
    overrides = dict(parameters or {})
    undeclared = set(overrides) - set(declared) - set(PSEUDO_PARAMETERS)
    if undeclared:
        raise TemplateError(f"{path}: values given for undeclared parameters {sorted(undeclared)}")
    values: dict[str, Any] = {name: overrides.get(name, PSEUDO_DEFAULTS[name]) for name in PSEUDO_PARAMETERS}
    for name, spec in declared.items():
        values[name] = overrides.get(name, spec.default)
        spec.check(name, values[name])
    raw_resources = raw.get("Resources") or {}
    if not isinstance(raw_resources, Mapping) or not raw_resources:
        raise TemplateError(f"{path}: Resources must be a non-empty mapping")
    for name, body in raw_resources.items():
        if not isinstance(body, Mapping) or "Type" not in body:
            raise TemplateError(f"{path}: Resources.{name} needs a Type")
        extra = set(body) - _RESOURCE_KEYS
        if extra:
            raise TemplateError(f"{path}: Resources.{name}: unknown keys {sorted(extra)}")
    resolver = _Resolver(values, raw_resources)
    resources = {name: resolver.resolve(dict(body)) for name, body in raw_resources.items()}
    outputs = resolver.resolve(dict(raw.get("Outputs") or {}))
    try:
        return _build(raw, path, declared, values, resolver.missing, resources, outputs)
    except ValidationError as exc:
        raise TemplateError(f"{path}: {exc}") from exc


def _build(
    raw: Mapping[str, Any],
    path: Path,
    declared: dict[str, Parameter],
    values: dict[str, Any],
    missing: set[str],
    resources: dict[str, dict[str, Any]],
    outputs: dict[str, Any],
) -> Template:
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, body in resources.items():
        by_type.setdefault(body["Type"], []).append((name, body))
    known = {
        SERVICE_TYPE,
        FUNCTION_TYPE,
        TRIGGER_TYPE,
        LAYER_TYPE,
        TABLESTORE_TYPE,
        TABLE_TYPE,
        LOG_TYPE,
        LOGSTORE_TYPE,
        MNS_TOPIC_TYPE,
        MNS_QUEUE_TYPE,
        ROLE_TYPE,
        *_PLAIN_TYPES,
    }
    for kind, items in by_type.items():
        if kind not in known:
            raise TemplateError(f"{path}: Resources.{items[0][0]}: unsupported resource Type {kind!r}")

    def props(name: str, body: dict[str, Any]) -> dict[str, Any]:
        return {**(body.get("Properties") or {}), "logical_id": name}

    raw_resources = raw["Resources"]
    triggers: dict[str, list[Any]] = {}
    for name, body in by_type.get(TRIGGER_TYPE, []):
        p = props(name, body)
        trigger_models: dict[str, type[AnyTrigger]] = {
            "oss": OssTrigger,
            "mns_topic": MnsTopicTrigger,
            "timer": TimerTrigger,
            "http": HttpTrigger,
        }
        model = trigger_models.get(str(p.get("TriggerType")))
        if model is None:
            raise TemplateError(f"{path}: Resources.{name}: unsupported TriggerType {p.get('TriggerType')!r}")
        trigger = model.model_validate(p)
        triggers.setdefault(trigger.function, []).append(trigger)

    functions = []
    for name, body in by_type.get(FUNCTION_TYPE, []):
        where = f"Resources.{name}"
        fn = Function.model_validate({**props(name, body), "code_uri": _source(body, where)})
        functions.append(fn.model_copy(update={"triggers": triggers.pop(fn.name, [])}))
    if triggers:
        raise TemplateError(f"{path}: triggers for functions the template does not declare: {sorted(triggers)}")

    services = by_type.get(SERVICE_TYPE, [])
    if len(services) != 1:
        raise TemplateError(f"{path}: expected exactly one {SERVICE_TYPE}, found {len(services)}")
    service = Service.model_validate(props(*services[0]))
    strangers = [fn.name for fn in functions if fn.service != service.name]
    if strangers:
        raise TemplateError(f"{path}: functions {strangers} are not in the service {service.name!r}")
    service = service.model_copy(update={"functions": functions})

    tables = [Table.model_validate(props(n, b)) for n, b in by_type.get(TABLE_TYPE, [])]
    stores = []
    for name, body in by_type.get(TABLESTORE_TYPE, []):
        store = TableStore.model_validate(props(name, body))
        stores.append(store.model_copy(update={"tables": [t for t in tables if t.instance == store.name]}))
    orphans = [t.name for t in tables if t.instance not in {s.name for s in stores}]
    if orphans:
        raise TemplateError(f"{path}: tables {orphans} are in no Tablestore instance of the template")

    logstores = [Logstore.model_validate(props(n, b)) for n, b in by_type.get(LOGSTORE_TYPE, [])]
    projects = []
    for name, body in by_type.get(LOG_TYPE, []):
        project = LogProject.model_validate(props(name, body))
        projects.append(project.model_copy(update={"logstores": [s for s in logstores if s.project == project.name]}))

    layers = []
    for name, body in by_type.get(LAYER_TYPE, []):
        layers.append(Layer.model_validate({**props(name, body), "code_uri": _source(body, f"Resources.{name}")}))

    artifacts = []
    for kind, rtype in (("function", FUNCTION_TYPE), ("layer", LAYER_TYPE)):
        for name, _ in by_type.get(rtype, []):
            artifact = _artifact(name, raw_resources[name], kind)  # type: ignore[arg-type]
            if artifact is not None:
                artifacts.append(artifact)

    return Template(
        path=path,
        raw=dict(raw),
        parameters=declared,
        parameter_values=values,
        missing_parameters=frozenset(missing),
        resources=resources,
        outputs=outputs,
        service=service,
        layers=layers,
        tablestores=stores,
        log_projects=projects,
        mns_topics=[MnsTopic.model_validate(props(n, b)) for n, b in by_type.get(MNS_TOPIC_TYPE, [])],
        mns_queues=[MnsQueue.model_validate(props(n, b)) for n, b in by_type.get(MNS_QUEUE_TYPE, [])],
        roles=[Role.model_validate(props(n, b)) for n, b in by_type.get(ROLE_TYPE, [])],
        artifacts=artifacts,
    )


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`["Name=value", ...]` (a CLI's repeated `--param`) → parameter overrides."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise TemplateError(f"a parameter is NAME=VALUE, got {item!r}")
        values[name] = value
    return values


def load_yaml(path: str | Path) -> Any:
    """template.yml as plain data, with ROS short-form tags in their long form."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def load_template(path: str | Path = "template.yml", parameters: Mapping[str, Any] | None = None) -> Template:
    """Read and validate template.yml; `parameters` override the template's parameter defaults."""
    path = Path(path).resolve()
    try:
        raw = load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    return parse_template(raw, path=path, parameters=parameters)

"""A typed reader of `template.yml` (Funcraft / ROS `Aliyun::Serverless-2018-04-03`): the one description of
what is deployed, read by the tests, `scripts/deploy.py`, `scripts/backfill.py` and the local stack alike.

    template = load_template("template.yml", parameters={"MediaBucketName": "my-media"})
    fn = template.function("submit_on_upload")       # handler, runtime, env, async config, triggers
    for trigger in template.oss_triggers(): ...      # bucket, events, prefix, suffix (+ FC API config)

Property objects are validated like Funcraft's JSON schema (`additionalProperties: false`), so a misspelt key
fails here instead of being silently ignored at deploy time. Two documented extensions: `python3.9`/`python3.10`
runtimes and `Layers` (reference §4).

ROS intrinsics are understood in both spellings (`!Ref X` / `{"Ref": "X"}`, `!Sub` / `Fn::Sub`): `Ref` and `Sub`
resolve against the template's `Parameters` (defaults, overridden by `parameters=`). A parameter that has no value
yet resolves to the placeholder `${Name}` and is listed in `Template.missing_parameters`, so the structure can be
read before deploy-time values (bucket, pipeline id, published layer ARN) exist.

Imports stay light (PyYAML + pydantic). It lives in `engine`, not `shared`: the FC layer doesn't ship it, so the
layer needs no PyYAML.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TRANSFORM = "Aliyun::Serverless-2018-04-03"
ROS_FORMAT_VERSION = "2015-09-01"

SERVICE_TYPE = "Aliyun::Serverless::Service"
FUNCTION_TYPE = "Aliyun::Serverless::Function"
TABLESTORE_TYPE = "Aliyun::Serverless::TableStore"
TABLE_TYPE = "Aliyun::Serverless::TableStore::Table"
LOG_TYPE = "Aliyun::Serverless::Log"
LOGSTORE_TYPE = "Aliyun::Serverless::Log::Logstore"
MNS_TOPIC_TYPE = "Aliyun::Serverless::MNSTopic"

# Funcraft's runtime enum plus the python3.9/3.10 runtimes FC 2.0 has (reference §3/§4).
KNOWN_RUNTIMES = frozenset(
    {
        "nodejs6",
        "nodejs8",
        "nodejs10",
        "nodejs12",
        "python2.7",
        "python3",
        "python3.9",
        "python3.10",
        "java8",
        "java11",
        "php7.2",
        "dotnetcore2.1",
        "custom",
        "custom-container",
    }
)

# The product's functions and the environment each one must be given. Every function builds
# `shared.config.Settings` from the same variables, so each declares all of them (tests/template checks this
# against shared.config.FUNCTION_ENV and against what template.yml declares).
FUNCTION_NAMES: tuple[str, ...] = ("submit_on_upload", "store_results", "report_failed")
_COMMON_ENV = ("FPSCREEN_ROUTES", "FPSCREEN_STORE_URL", "MPS_ENDPOINT", "MPS_REGION", "MPS_PIPELINE_ID")
REQUIRED_ENV: dict[str, tuple[str, ...]] = {name: _COMMON_ENV for name in FUNCTION_NAMES}

# Actions the code calls, by service: the only ones the service role may be granted (least privilege).
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
}

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]{0,127}$")
_EVERY = re.compile(r"^@every\s+(\d+[smh])+$")
_PARAM = re.compile(r"\$\{([A-Za-z][A-Za-z0-9:]*)\}")


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


def _resolve(node: Any, values: Mapping[str, Any], missing: set[str]) -> Any:
    """Replace `Ref`/`Fn::Sub` of parameters with their values; unknown names are errors."""

    def lookup(name: str) -> Any:
        if name not in values:
            raise TemplateError(f"reference to unknown parameter {name!r}")
        if values[name] is None:
            missing.add(name)
            return "${" + name + "}"
        return values[name]

    if isinstance(node, list):
        return [_resolve(item, values, missing) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and "Ref" in node:
        return lookup(str(node["Ref"]))
    if len(node) == 1 and "Fn::Sub" in node:
        spec = node["Fn::Sub"]
        text, local = (spec[0], spec[1]) if isinstance(spec, list) else (spec, {})
        scope = {**values, **{k: _resolve(v, values, missing) for k, v in local.items()}}
        return _PARAM.sub(lambda m: str(_resolve({"Ref": m.group(1)}, scope, missing)), str(text))
    if len(node) == 1 and next(iter(node)).startswith("Fn::"):
        raise TemplateError(f"unsupported intrinsic {next(iter(node))}: only Ref and Fn::Sub are resolved")
    return {key: _resolve(value, values, missing) for key, value in node.items()}


# -------------------------------------------------------------------------------------------- models


class _Props(BaseModel):
    """Funcraft property objects: exact (case-sensitive) keys, nothing unknown."""

    # Aliases only: a snake_case key (`memory_size:`) is as wrong in template.yml as a misspelt one.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Props):
    type: Literal["String", "Number", "CommaDelimitedList", "Json", "Boolean"] = Field(alias="Type")
    default: Any = Field(default=None, alias="Default")
    description: str | None = Field(default=None, alias="Description")
    allowed_values: list[Any] | None = Field(default=None, alias="AllowedValues")


class PolicyStatement(_Props):
    effect: Literal["Allow", "Deny"] = Field(alias="Effect")
    action: list[str] = Field(alias="Action", min_length=1)
    resource: list[str] = Field(alias="Resource", min_length=1)

    @field_validator("action", "resource", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class PolicyDocument(_Props):
    version: str = Field(alias="Version")
    statement: list[PolicyStatement] = Field(alias="Statement", min_length=1)

    def as_ram_json(self) -> dict[str, Any]:
        """The document as RAM takes it (CreatePolicy's PolicyDocument)."""
        return self.model_dump(by_alias=True)


class LogConfig(_Props):
    project: str = Field(alias="Project")
    logstore: str = Field(alias="Logstore")
    enable_request_metrics: bool | None = Field(default=None, alias="EnableRequestMetrics")
    enable_instance_metrics: bool | None = Field(default=None, alias="EnableInstanceMetrics")


class AsyncDestination(_Props):
    on_success: str | None = Field(default=None, alias="OnSuccess")
    on_failure: str | None = Field(default=None, alias="OnFailure")


class AsyncConfig(_Props):
    # Ranges from FC's PutFunctionAsyncInvokeConfig (reference §3).
    max_async_retry_attempts: int | None = Field(default=None, alias="MaxAsyncRetryAttempts", ge=0, le=8)
    max_async_event_age_in_seconds: int | None = Field(default=None, alias="MaxAsyncEventAgeInSeconds", ge=1, le=604800)
    destination: AsyncDestination | None = Field(default=None, alias="Destination")
    stateful_invocation: bool | None = Field(default=None, alias="StatefulInvocation")

    def fc_config(self) -> dict[str, Any]:
        """FC API body of PutFunctionAsyncInvokeConfig."""
        config: dict[str, Any] = {}
        if self.max_async_retry_attempts is not None:
            config["maxAsyncRetryAttempts"] = self.max_async_retry_attempts
        if self.max_async_event_age_in_seconds is not None:
            config["maxAsyncEventAgeInSeconds"] = self.max_async_event_age_in_seconds
        if self.destination is not None:
            destinations = {}
            if self.destination.on_success:
                destinations["onSuccess"] = {"destination": self.destination.on_success}
            if self.destination.on_failure:
                destinations["onFailure"] = {"destination": self.destination.on_failure}
            config["destinationConfig"] = destinations
        if self.stateful_invocation is not None:
            config["statefulInvocation"] = self.stateful_invocation
        return config


class _Trigger(_Props):
    name: str
    function: str
    invocation_role: str | None = Field(default=None, alias="InvocationRole")
    qualifier: str | None = Field(default=None, alias="Qualifier")

    @field_validator("name")
    @classmethod
    def _trigger_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"invalid trigger name {value!r}")
        return value


class OssTrigger(_Trigger):
    type: Literal["OSS"] = "OSS"
    bucket: str = Field(alias="BucketName", min_length=1)
    events: list[str] = Field(alias="Events", min_length=1)
    prefix: str
    suffix: str

    @model_validator(mode="before")
    @classmethod
    def _flatten_filter(cls, data: Any) -> Any:
        # Funcraft's schema requires Filter.Key with both Prefix and Suffix (either may be "").
        if isinstance(data, dict) and "Filter" in data:
            data = dict(data)
            flt = data.pop("Filter")
            key = flt.get("Key") if isinstance(flt, dict) and set(flt) == {"Key"} else None
            if not isinstance(key, dict) or set(key) != {"Prefix", "Suffix"}:
                raise ValueError("OSS trigger Filter must be {Key: {Prefix: ..., Suffix: ...}}, both present")
            data["prefix"], data["suffix"] = key["Prefix"], key["Suffix"]
        return data

    @field_validator("events")
    @classmethod
    def _oss_events(cls, value: list[str]) -> list[str]:
        for event in value:
            if not event.startswith("oss:"):
                raise ValueError(f"OSS trigger events are spelt with the oss: prefix, got {event!r}")
        return value

    fc_type: ClassVar[str] = "oss"  # the FC API triggerType

    def fc_config(self) -> dict[str, Any]:
        return {"events": list(self.events), "filter": {"key": {"prefix": self.prefix, "suffix": self.suffix}}}

    def source_arn(self, region: str, account_id: str) -> str:
        return f"acs:oss:{region}:{account_id}:{self.bucket}"

    def fires_for(self, event_name: str, key: str) -> bool:
        """Would OSS invoke this trigger for `event_name` (as in an event, e.g. `ObjectCreated:PutObject`)?"""
        if not (key.startswith(self.prefix) and key.endswith(self.suffix)):
            return False
        name = event_name if event_name.startswith("oss:") else f"oss:{event_name}"
        return any(
            name == pattern or (pattern.endswith(":*") and name.startswith(pattern[:-1])) for pattern in self.events
        )


class MnsTopicTrigger(_Trigger):
    type: Literal["MNSTopic"] = "MNSTopic"
    topic: str = Field(alias="TopicName", min_length=1)
    region: str | None = Field(default=None, alias="Region")
    notify_content_format: Literal["STREAM", "JSON"] = Field(default="STREAM", alias="NotifyContentFormat")
    notify_strategy: Literal["BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"] = Field(
        default="BACKOFF_RETRY", alias="NotifyStrategy"
    )
    filter_tag: str | None = Field(default=None, alias="FilterTag", max_length=16)

    fc_type: ClassVar[str] = "mns_topic"

    def fc_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "notifyContentFormat": self.notify_content_format,
            "notifyStrategy": self.notify_strategy,
        }
        if self.filter_tag:
            config["filterTag"] = self.filter_tag
        return config

    def source_arn(self, region: str, account_id: str) -> str:
        return f"acs:mns:{self.region or region}:{account_id}:/topics/{self.topic}"


class TimerTrigger(_Trigger):
    type: Literal["Timer"] = "Timer"
    cron: str = Field(alias="CronExpression", min_length=1)
    enable: bool = Field(default=True, alias="Enable")
    payload: str | None = Field(default=None, alias="Payload")

    @field_validator("cron")
    @classmethod
    def _cron_shape(cls, value: str) -> str:
        # FC timers take `@every 1m` or a 6-field cron expression whose first field is seconds.
        if not (_EVERY.match(value) or len(value.split()) == 6):
            raise ValueError(f"CronExpression {value!r} is neither '@every <n>[smh]' nor a 6-field cron")
        return value

    fc_type: ClassVar[str] = "timer"

    def fc_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"cronExpression": self.cron, "enable": self.enable}
        if self.payload is not None:
            config["payload"] = self.payload
        return config

    def source_arn(self, region: str, account_id: str) -> str | None:
        return None  # timers have no event source


Trigger = Annotated[OssTrigger | MnsTopicTrigger | TimerTrigger, Field(discriminator="type")]


class Function(_Props):
    name: str
    handler: str = Field(alias="Handler", pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    runtime: str = Field(alias="Runtime")
    code_uri: str = Field(alias="CodeUri", min_length=1)
    description: str | None = Field(default=None, alias="Description")
    memory_size: int = Field(default=128, alias="MemorySize", ge=64, le=32768)  # Funcraft defaults
    timeout: int = Field(default=3, alias="Timeout", ge=1, le=86400)
    initializer: str | None = Field(default=None, alias="Initializer")
    initialization_timeout: int | None = Field(default=None, alias="InitializationTimeout")
    environment: dict[str, str] = Field(default_factory=dict, alias="EnvironmentVariables")
    instance_concurrency: int | None = Field(default=None, alias="InstanceConcurrency", ge=1, le=100)
    instance_type: Literal["e1", "c1"] | None = Field(default=None, alias="InstanceType")
    layers: list[str] = Field(default_factory=list, alias="Layers")
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


class Service(_Props):
    name: str
    description: str | None = Field(default=None, alias="Description")
    role: str | None = Field(default=None, alias="Role")
    policies: list[str | PolicyDocument] = Field(default_factory=list, alias="Policies")
    internet_access: bool | None = Field(default=None, alias="InternetAccess")
    log_config: LogConfig | None = Field(default=None, alias="LogConfig")
    vpc_config: dict[str, Any] | None = Field(default=None, alias="VpcConfig")
    nas_config: dict[str, Any] | None = Field(default=None, alias="NasConfig")
    tracing_config: Literal["Enable", "Disable"] | None = Field(default=None, alias="TracingConfig")
    functions: list[Function] = Field(default_factory=list)

    @field_validator("policies", mode="before")
    @classmethod
    def _policy_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value

    def policy_statements(self) -> list[PolicyStatement]:
        return [s for p in self.policies if isinstance(p, PolicyDocument) for s in p.statement]

    def managed_policies(self) -> list[str]:
        return [p for p in self.policies if isinstance(p, str)]


PkType = Literal["STRING", "INTEGER", "BINARY"]


class PrimaryKeyColumn(_Props):
    name: str = Field(alias="Name", min_length=1)
    type: PkType = Field(alias="Type")


class Throughput(_Props):
    read: int = Field(default=0, alias="ReadCapacityUnits", ge=-1)
    write: int = Field(default=0, alias="WriteCapacityUnits", ge=-1)


class Table(_Props):
    name: str
    primary_key: list[PrimaryKeyColumn] = Field(alias="PrimaryKeyList", min_length=1, max_length=4)
    throughput: Throughput = Field(default_factory=Throughput, alias="ProvisionedThroughput")

    @property
    def key_schema(self) -> tuple[tuple[str, str], ...]:
        """`(("job_id", "STRING"), ...)` in key order, comparable with `shared.store.schema.TableSpec.primary_key`."""
        return tuple((c.name, c.type) for c in self.primary_key)


class TableStore(_Props):
    name: str  # the instance name
    cluster_type: Literal["HYBRID", "SSD"] = Field(alias="ClusterType")
    description: str = Field(alias="Description")
    tables: list[Table] = Field(default_factory=list)


class Logstore(_Props):
    name: str
    ttl: int = Field(alias="TTL", ge=1, le=3650)
    shard_count: int = Field(alias="ShardCount", ge=1, le=100)


class LogProject(_Props):
    name: str
    description: str = Field(alias="Description")
    logstores: list[Logstore] = Field(default_factory=list)


class MnsTopic(_Props):
    name: str
    region: str = Field(alias="Region")
    maximum_message_size: int | None = Field(default=None, alias="MaximumMessageSize")
    logging_enabled: bool | None = Field(default=None, alias="LoggingEnabled")


class Template(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    parameters: dict[str, Parameter]
    parameter_values: dict[str, Any]
    missing_parameters: frozenset[str]
    service: Service
    tablestores: list[TableStore]
    log_projects: list[LogProject]
    mns_topics: list[MnsTopic]

    @property
    def root(self) -> Path:
        """The folder CodeUri paths are relative to."""
        return self.path.parent

    # --- functions & triggers
    @property
    def functions(self) -> list[Function]:
        return list(self.service.functions)

    def function(self, name: str) -> Function:
        for fn in self.service.functions:
            if fn.name == name:
                return fn
        raise KeyError(f"no function {name!r} in {self.path.name}; have {[f.name for f in self.functions]}")

    def triggers(self) -> Iterator[OssTrigger | MnsTopicTrigger | TimerTrigger]:
        for fn in self.service.functions:
            yield from fn.triggers

    def oss_triggers(self) -> list[OssTrigger]:
        return [t for t in self.triggers() if isinstance(t, OssTrigger)]

    def mns_topic_triggers(self) -> list[MnsTopicTrigger]:
        return [t for t in self.triggers() if isinstance(t, MnsTopicTrigger)]

    def timer_triggers(self) -> list[TimerTrigger]:
        return [t for t in self.triggers() if isinstance(t, TimerTrigger)]

    def oss_triggers_for(self, event_name: str, key: str, bucket: str | None = None) -> list[OssTrigger]:
        """The OSS triggers OSS would fire for this object event (bucket compared only if given)."""
        return [
            t for t in self.oss_triggers() if t.fires_for(event_name, key) and (bucket is None or t.bucket == bucket)
        ]

    # --- data & logs
    @property
    def tablestore(self) -> TableStore:
        if len(self.tablestores) != 1:
            raise TemplateError(f"expected one TableStore instance, found {len(self.tablestores)}")
        return self.tablestores[0]

    def tables(self) -> dict[str, Table]:
        return {t.name: t for store in self.tablestores for t in store.tables}

    @property
    def log_project(self) -> LogProject:
        if len(self.log_projects) != 1:
            raise TemplateError(f"expected one Log project, found {len(self.log_projects)}")
        return self.log_projects[0]

    def policy_statements(self) -> list[PolicyStatement]:
        return self.service.policy_statements()


# ---------------------------------------------------------------------------------------------- load


def _split_children(body: dict[str, Any], child_type: str, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A nested resource (Service, TableStore, Log): its Properties, and its children of `child_type`."""
    props = body.get("Properties") or {}
    children: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("Type", "Properties"):
            continue
        if not isinstance(value, dict) or value.get("Type") != child_type:
            raise TemplateError(f"{where}.{key}: expected a nested resource of Type {child_type}")
        children[key] = value
    return props, children


def _triggers(fn_name: str, events: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, event in (events or {}).items():
        if not isinstance(event, dict) or set(event) - {"Type", "Properties"}:
            raise TemplateError(f"{fn_name}.Events.{name}: expected {{Type, Properties}}")
        out.append({**(event.get("Properties") or {}), "type": event.get("Type"), "name": name, "function": fn_name})
    return out


def parse_template(raw: Mapping[str, Any], *, path: Path, parameters: Mapping[str, Any] | None = None) -> Template:
    """Validate an already-loaded template document (see `load_template`)."""
    if not isinstance(raw, Mapping):
        raise TemplateError(f"{path}: the document is not a mapping")
    unknown = set(raw) - {
        "ROSTemplateFormatVersion",
        "Transform",
        "Parameters",
        "Resources",
        "Description",
        "Metadata",
        "Outputs",
    }
    if unknown:
        raise TemplateError(f"{path}: unknown top-level keys {sorted(unknown)}")
    if raw.get("ROSTemplateFormatVersion") != ROS_FORMAT_VERSION:
        raise TemplateError(f"{path}: ROSTemplateFormatVersion must be '{ROS_FORMAT_VERSION}'")
    if raw.get("Transform") != TRANSFORM:
        raise TemplateError(f"{path}: Transform must be '{TRANSFORM}'")
    try:
        declared = {name: Parameter.model_validate(spec) for name, spec in (raw.get("Parameters") or {}).items()}
    except ValidationError as exc:
        raise TemplateError(f"{path}: Parameters: {exc}") from exc
    overrides = dict(parameters or {})
    undeclared = set(overrides) - set(declared)
    if undeclared:
        raise TemplateError(f"{path}: values given for undeclared parameters {sorted(undeclared)}")
    values = {name: overrides.get(name, spec.default) for name, spec in declared.items()}
    missing: set[str] = set()
    resources = _resolve(raw.get("Resources") or {}, values, missing)

    services, stores, logs, topics = [], [], [], []
    try:
        for name, body in resources.items():
            kind = body.get("Type") if isinstance(body, dict) else None
            where = f"Resources.{name}"
            if kind == SERVICE_TYPE:
                props, children = _split_children(body, FUNCTION_TYPE, where)
                functions = []
                for fn_name, fn in children.items():
                    if set(fn) - {"Type", "Properties", "Events"}:
                        raise TemplateError(f"{where}.{fn_name}: unexpected keys {sorted(set(fn) - {'Type'})}")
                    functions.append(
                        Function.model_validate(
                            {
                                **(fn.get("Properties") or {}),
                                "name": fn_name,
                                "triggers": _triggers(fn_name, fn.get("Events") or {}),
                            }
                        )
                    )
                services.append(Service.model_validate({**props, "name": name, "functions": functions}))
            elif kind == TABLESTORE_TYPE:
                props, children = _split_children(body, TABLE_TYPE, where)
                tables = [Table.model_validate({**(t.get("Properties") or {}), "name": n}) for n, t in children.items()]
                stores.append(TableStore.model_validate({**props, "name": name, "tables": tables}))
            elif kind == LOG_TYPE:
                props, children = _split_children(body, LOGSTORE_TYPE, where)
                stores_ = [
                    Logstore.model_validate({**(s.get("Properties") or {}), "name": n}) for n, s in children.items()
                ]
                logs.append(LogProject.model_validate({**props, "name": name, "logstores": stores_}))
            elif kind == MNS_TOPIC_TYPE:
                topics.append(MnsTopic.model_validate({**(body.get("Properties") or {}), "name": name}))
            else:
                raise TemplateError(f"{where}: unsupported resource Type {kind!r}")
    except ValidationError as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    if len(services) != 1:
        raise TemplateError(f"{path}: expected exactly one {SERVICE_TYPE}, found {len(services)}")
    return Template(
        path=path,
        parameters=declared,
        parameter_values=values,
        missing_parameters=frozenset(missing),
        service=services[0],
        tablestores=stores,
        log_projects=logs,
        mns_topics=topics,
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

"""template.yml, read through engine/template.py: handlers exist, tables match the store schema, triggers are
complete, the RAM policy is least-privilege, and every variable the code reads is declared."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
from datetime import datetime
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest
from croniter import croniter

from engine.template import (
    ALLOWED_ACTIONS,
    FUNCTION_NAMES,
    REQUIRED_ENV,
    HttpTrigger,
    MnsTopicTrigger,
    OssTrigger,
    Template,
    TemplateError,
    TimerTrigger,
    load_template,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yml"

# What a deploy supplies: the user's --param values, what scripts/deploy.py fills in (zone, code archives), and
# the pseudo parameters ROS sets.
DEPLOY_PARAMS = {
    "MediaBucketName": "media-bucket",
    "MpsPipelineId": "pipe-0123",
    "LibraryFpDBId": "fpdb-0123",
    "TextLibraryFpDBId": "fpdb-text-0456",
    "AudioLibraryFpDBId": "fpdb-audio-0789",
    "ZoneId": "cn-shanghai-e",
    "CodeBucketName": "media-bucket",
    "SubmitOnUploadCodeObject": "fpscreen-deploy/submit_on_upload-0123.zip",
    "StoreResultsCodeObject": "fpscreen-deploy/store_results-0123.zip",
    "ReportFailedCodeObject": "fpscreen-deploy/report_failed-0123.zip",
    "ReviewCodeObject": "fpscreen-deploy/review-0123.zip",
    "ReviewSecret": "0123456789abcdef0123",
    "ALIYUN::Region": "cn-shanghai",
    "ALIYUN::AccountId": "123456789",
}
REGION, ACCOUNT = DEPLOY_PARAMS["ALIYUN::Region"], DEPLOY_PARAMS["ALIYUN::AccountId"]
VIDEO_DB, AUDIO_DB = DEPLOY_PARAMS["LibraryFpDBId"], DEPLOY_PARAMS["AudioLibraryFpDBId"]
TEXT_DB = DEPLOY_PARAMS["TextLibraryFpDBId"]

# The product facts (the store engineer's shared/store/schema.py must agree, see below).
EXPECTED_TABLES = {
    "fp_objects": (("key", "STRING"),),
    "fp_jobs": (("job_id", "STRING"),),
    "fp_matches": (("job_id", "STRING"), ("slice_id", "STRING")),
    "fp_failed_jobs": (("job_id", "STRING"),),
    "fp_parked_messages": (("message_id", "STRING"),),
    "fp_verdicts": (("job_id", "STRING"),),
    "fp_job_results": (("job_id", "STRING"), ("part", "STRING")),
}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def deployed() -> Template:
    return load_template(TEMPLATE, parameters=DEPLOY_PARAMS)


def _import_handler_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fpscreen_fn_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------- functions


def test_one_service_with_the_three_functions(template: Template) -> None:
    assert template.service.name == "fpscreen"
    assert [f.name for f in template.functions] == list(FUNCTION_NAMES)
    for fn in template.functions:
        assert fn.runtime == "python3.10"
        assert fn.code_uri == f"functions/{fn.name}"
        assert fn.handler == "index.handler"
        assert 1 <= fn.timeout <= 600 and fn.memory_size >= 128


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_handler_resolves_to_a_real_function(template: Template, name: str) -> None:
    fn = template.function(name)
    path = fn.handler_file(template.root)
    assert path.parent == ROOT / "functions" / name
    if not path.is_file():
        pytest.skip(f"{path.relative_to(ROOT)} is not written yet")
    module = _import_handler_module(path, name)
    handler = getattr(module, fn.handler_attr, None)
    assert callable(handler), f"{path.name} has no callable {fn.handler_attr}"
    # FC calls handler(event, context) positionally.
    assert len(inspect.signature(handler).parameters) == 2


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_every_function_ships_shared_in_its_archive(template: Template, deployed: Template, name: str) -> None:
    # ROS's ALIYUN::FC::Function has no Layers property: shared/ travels in each function's archive.
    [artifact] = [a for a in template.artifacts if a.name == name]
    assert (artifact.kind, artifact.source, artifact.bundle) == ("function", f"functions/{name}", ("shared",))
    fn = deployed.function(name)
    assert fn.code.bucket == DEPLOY_PARAMS["CodeBucketName"]
    assert fn.code.object == DEPLOY_PARAMS[artifact.object_parameter]
    assert fn.layers == []


def test_deploy_time_parameters(template: Template, deployed: Template) -> None:
    assert template.missing_parameters == set(DEPLOY_PARAMS)
    assert deployed.missing_parameters == frozenset()


# ---------------------------------------------------------------------------------------------- tables


def test_tables_are_the_product_tables(template: Template) -> None:
    store = template.tablestore
    # Tablestore instance names: 3–16 letters, digits or '-', starting with a letter, not ending with '-'.
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{1,14}[A-Za-z0-9]", store.name)
    assert {name: table.key_schema for name, table in template.tables().items()} == EXPECTED_TABLES


def test_tables_equal_the_store_schema(template: Template) -> None:
    from shared.store import schema
    from shared.store.tablestore import defined_columns

    tables = {t.name: t for t in template.tablestore.tables}
    assert {name: t.key_schema for name, t in tables.items()} == {
        spec.name: tuple(spec.primary_key) for spec in schema.CLOUD_TABLES
    }
    for spec in schema.CLOUD_TABLES:  # the same indexes and predefined columns create_tables makes
        table = tables[spec.name]
        assert table.indexes == {index.name: spec.index_key(index) for index in spec.indexes}
        assert table.defined_columns == tuple(defined_columns(spec))
        assert all(i.index_type == "Global" and i.columns == [] for i in table.secondary_indices)


def test_what_expires_and_what_does_not(template: Template, deployed: Template) -> None:
    from shared.store import schema

    tables = {t.name: t for t in deployed.tablestore.tables}
    for spec in schema.CLOUD_TABLES:
        # Expiring tables without an index carry the retention in the template; indexed ones get it from
        # scripts/deploy.py (Tablestore needs UpdateRow disallowed there, which ROS cannot express).
        expected = 31536000 if spec.expires and not spec.indexes else None
        assert tables[spec.name].time_to_live == expected, spec.name


def test_tablestore_instance_name_is_accepted(template: Template) -> None:
    name = template.tablestore.name
    assert not [word for word in ("ali", "ay", "ots", "taobao", "admin") if word in name.lower()]
    assert template.parameters["TablestoreInstanceName"].allowed_pattern
    with pytest.raises(TemplateError, match="reserved word 'ots'"):
        load_template(TEMPLATE, {"TablestoreInstanceName": "fpscreen-ots"})


def test_store_url_is_the_instance_vpc_endpoint(deployed: Template) -> None:
    # shared.store.open_store's form: tablestore://<instance>@<endpoint host>
    instance = deployed.tablestore.name
    for fn in deployed.functions:
        url = urlsplit(fn.environment["FPSCREEN_STORE_URL"])
        assert url.scheme == "tablestore"
        assert (url.username, url.hostname) == (instance, f"{instance}.{REGION}.vpc.tablestore.aliyuncs.com")


def test_functions_reach_the_store_through_the_vpc(template: Template) -> None:
    vpc = template.service.vpc_config
    assert vpc is not None and template.service.internet_access  # Tablestore by the VPC, MPS on the Internet
    types = template.resource_types()
    vpc_id = "${" + next(n for n, t in types.items() if t == "ALIYUN::ECS::VPC") + ".VpcId}"
    [vswitch] = [n for n, t in types.items() if t == "ALIYUN::ECS::VSwitch"]
    [group] = [n for n, t in types.items() if t == "ALIYUN::ECS::SecurityGroup"]
    assert vpc.vpc_id == vpc_id and vpc.vswitch_ids == ["${" + vswitch + ".VSwitchId}"]
    assert vpc.security_group_id == "${" + group + ".SecurityGroupId}"
    assert template.resources[vswitch]["Properties"]["VpcId"] == vpc_id
    assert template.resources[group]["Properties"]["VpcId"] == vpc_id
    [binder] = [b for b in template.resources.values() if b["Type"] == "ALIYUN::OTS::VpcBinder"]
    assert binder["Properties"]["InstanceName"] == template.tablestore.name
    [binding] = binder["Properties"]["Vpcs"]
    assert (binding["VpcId"], binding["VirtualSwitchId"]) == (vpc_id, vpc.vswitch_ids[0])
    # The functions must not start before the instance accepts their VPC.
    service = next(b for b in template.raw["Resources"].values() if b["Type"] == "ALIYUN::FC::Service")
    assert "StoreVpcBinding" in service["DependsOn"]


# -------------------------------------------------------------------------------------------- triggers


def test_oss_triggers(deployed: Template) -> None:
    triggers = deployed.oss_triggers()
    assert {t.function for t in triggers} == {"submit_on_upload"}
    assert sorted(t.prefix for t in triggers) == ["library/", "uploads/"]
    role = deployed.role("TriggerRole")
    assert role.trusted_services() == {"oss.aliyuncs.com", "mns.aliyuncs.com"}
    for t in triggers:
        assert t.bucket == DEPLOY_PARAMS["MediaBucketName"]
        assert t.source_arn() == f"acs:oss:{REGION}:{ACCOUNT}:{t.bucket}"
        assert t.invocation_role == "${TriggerRole.Arn}"
        assert t.events == ["oss:ObjectCreated:*"]
        assert t.fc_config() == {"events": t.events, "filter": {"key": {"prefix": t.prefix, "suffix": t.suffix}}}
    # OSS refuses two rules on one bucket whose prefix/suffix ranges overlap.
    for a in triggers:
        for b in triggers:
            if a is not b and a.bucket == b.bucket:
                overlap_prefix = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
                overlap_suffix = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
                assert not (overlap_prefix and overlap_suffix), (a.name, b.name)


def test_oss_trigger_matching(deployed: Template) -> None:
    assert [t.name for t in deployed.oss_triggers_for("ObjectCreated:PutObject", "library/a.mp4")] == ["library-upload"]
    assert [t.name for t in deployed.oss_triggers_for("ObjectCreated:CompleteMultipartUpload", "uploads/x.MOV")] == [
        "screen-upload"
    ]
    assert deployed.oss_triggers_for("ObjectCreated:PutObject", "other/a.mp4") == []
    assert deployed.oss_triggers_for("ObjectRemoved:DeleteObject", "library/a.mp4") == []
    assert deployed.oss_triggers_for("ObjectCreated:PutObject", "library/a.mp4", bucket="elsewhere") == []


def test_mns_topic_trigger(deployed: Template) -> None:
    template = deployed
    (trigger,) = template.mns_topic_triggers()
    assert isinstance(trigger, MnsTopicTrigger)
    assert trigger.function == "store_results"
    assert trigger.topic in {t.name for t in template.mns_topics}, "the topic MPS notifies must be declared"
    assert trigger.notify_content_format in ("JSON", "STREAM")
    assert trigger.notify_strategy == "BACKOFF_RETRY"
    assert trigger.filter_tag is None, "MPS publishes without a tag: a FilterTag would drop every message"
    assert trigger.fc_config() == {"notifyContentFormat": "JSON", "notifyStrategy": "BACKOFF_RETRY"}
    assert trigger.source_arn() == f"acs:mns:{REGION}:{ACCOUNT}:/topics/fpscreen-mps-notify"
    assert trigger.invocation_role == "${TriggerRole.Arn}"


def test_timer_trigger_fires_every_minute(template: Template) -> None:
    (trigger,) = template.timer_triggers()
    assert isinstance(trigger, TimerTrigger)
    assert trigger.function == "report_failed" and trigger.enable
    if trigger.cron.startswith("@every"):
        assert trigger.cron == "@every 1m"
    else:
        assert croniter.is_valid(trigger.cron, second_at_beginning=True)
        ticks = croniter(trigger.cron, datetime(2024, 1, 1, 0, 0, 30), second_at_beginning=True)
        first, second = ticks.get_next(datetime), ticks.get_next(datetime)
        assert (second - first).total_seconds() == 60
    # A run must finish before the next tick starts.
    assert template.function("report_failed").timeout < 60
    assert json.loads(trigger.payload or "{}")


def test_every_trigger_has_a_valid_fc_type(template: Template) -> None:
    kinds = {type(t): t.fc_type for t in template.triggers()}
    assert kinds == {OssTrigger: "oss", MnsTopicTrigger: "mns_topic", TimerTrigger: "timer", HttpTrigger: "http"}


def test_the_review_page_is_an_anonymous_http_trigger_with_basic_auth_in_the_app(template: Template) -> None:
    [trigger] = template.http_triggers()
    assert (trigger.function, trigger.auth_type, trigger.methods) == ("review", "anonymous", ["GET", "POST"])
    review, store_results = template.function("review"), template.function("store_results")
    # The same store, policies and actions as store_results, plus the reviewers and the form key.
    assert {k: v for k, v in store_results.environment.items() if k in review.environment} == {
        k: v for k, v in review.environment.items() if k in store_results.environment
    }
    assert set(store_results.environment) <= set(review.environment)
    assert set(review.environment) - set(store_results.environment) == {"FPSCREEN_REVIEWERS", "FPSCREEN_REVIEW_SECRET"}
    for parameter in ("ReviewersJson", "ReviewSecret"):
        assert template.raw["Parameters"][parameter]["NoEcho"] is True


# --------------------------------------------------------------------------------------- async & logs


def test_upload_function_async_config(deployed: Template) -> None:
    config = deployed.function("submit_on_upload").async_config
    assert config is not None
    assert config.max_async_retry_attempts is not None and 1 <= config.max_async_retry_attempts <= 8
    assert config.max_async_event_age_in_seconds is not None
    assert config.destination is not None and config.destination.on_failure
    # The full form FC requires: region and account, and a queue the stack creates.
    queues = "|".join(q.name for q in deployed.mns_queues)
    assert re.fullmatch(rf"acs:mns:{REGION}:{ACCOUNT}:/queues/({queues})/messages", config.destination.on_failure)


def test_log_config_points_at_a_declared_logstore(deployed: Template) -> None:
    template = deployed
    log_config = template.service.log_config
    assert log_config is not None
    assert log_config.project == template.log_project.name
    assert log_config.logstore in {s.name for s in template.log_project.logstores}


# ----------------------------------------------------------------------------------------------- RAM


def test_policy_is_least_privilege(template: Template) -> None:
    role = template.function_role
    assert template.service.role == f"${{{role.logical_id}.Arn}}"
    assert role.trusted_services() == {"fc.aliyuncs.com"}
    raw_role = template.raw["Resources"][role.logical_id]["Properties"]
    assert "PolicyAttachments" not in raw_role, "managed policies grant far more than the code uses"
    statements = template.policy_statements()
    assert statements
    actions = [a for s in statements for a in s.action]
    assert all(s.effect == "Allow" for s in statements)
    assert not [a for a in actions if "*" in a], "no wildcard actions"
    assert {a.split(":", 1)[0] for a in actions} <= set(ALLOWED_ACTIONS)
    for action in actions:
        assert action in ALLOWED_ACTIONS[action.split(":", 1)[0]], action
    by_service = {prefix: {a for a in actions if a.startswith(prefix + ":")} for prefix in ALLOWED_ACTIONS}
    assert by_service["mts"] == ALLOWED_ACTIONS["mts"]
    assert by_service["ots"] == ALLOWED_ACTIONS["ots"]


def test_policy_resources_are_exactly_ours(deployed: Template) -> None:
    template = deployed
    resources: dict[str, set[str]] = {}
    for statement in template.policy_statements():
        for action in statement.action:
            resources.setdefault(action.split(":", 1)[0], set()).update(statement.resource)
    here = f"{REGION}:{ACCOUNT}"
    instance = template.tablestore.name
    indexes = [i for table in template.tables().values() for i in table.indexes]
    names = [*template.tables(), *indexes]
    assert resources["ots"] == {f"acs:ots:{here}:instance/{instance}/table/{t}" for t in names}
    assert resources["mts"] == {f"acs:mts:{here}:*"}
    log_config = template.service.log_config
    assert log_config is not None
    assert resources["log"] == {f"acs:log:{here}:project/{log_config.project}/logstore/{log_config.logstore}"}
    config = template.function("submit_on_upload").async_config
    assert config is not None and config.destination is not None and config.destination.on_failure
    verdicts = f"acs:mns:{here}:/topics/fpscreen-verdicts/messages"
    assert resources["mns"] == {config.destination.on_failure, verdicts}
    # Verdict actions: only the screened objects and their quarantine copies.
    bucket = f"acs:oss:*:*:{template.parameter_values['MediaBucketName']}"
    assert resources["oss"] == {f"{bucket}/{p}/*" for p in ("uploads", "quarantine", "library", "derived")}
    # FC's network interfaces for the VSwitch cannot be named before they exist.
    assert resources["ecs"] == resources["vpc"] == {"*"}
    trigger_policy = [s for p in template.role("TriggerRole").policies for s in p.document.statement]
    assert [(s.action, s.resource) for s in trigger_policy] == [
        (["fc:InvokeFunction"], [f"acs:fc:{here}:services/{template.service.name}/functions/*"])
    ]


# -------------------------------------------------------------------------------------- environment


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_required_env_is_declared(template: Template, name: str) -> None:
    declared = template.function(name).environment
    missing = [var for var in REQUIRED_ENV[name] if not declared.get(var)]
    assert not missing, f"{name} lacks {missing}"


def test_required_env_covers_what_the_code_reads() -> None:
    config = pytest.importorskip("shared.config")
    for name in FUNCTION_NAMES:
        assert set(config.FUNCTION_ENV) <= set(REQUIRED_ENV[name]), name


def test_declared_env_names_are_known_to_the_code(template: Template) -> None:
    config = pytest.importorskip("shared.config")
    known = {value for key, value in vars(config).items() if key.startswith("ENV_") and isinstance(value, str)}
    known |= {var for names in REQUIRED_ENV.values() for var in names}
    for fn in template.functions:
        unknown = set(fn.environment) - known
        assert not unknown, f"{fn.name} declares variables nothing reads (typo?): {sorted(unknown)}"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_env_builds_valid_settings(deployed: Template, name: str) -> None:
    config = pytest.importorskip("shared.config")
    fn = deployed.function(name)
    settings = config.Settings.from_env(fn.environment)
    assert settings.mps_region == REGION
    assert settings.mps_endpoint == f"mts.{settings.mps_region}.aliyuncs.com"
    assert settings.mps_pipeline_id == DEPLOY_PARAMS["MpsPipelineId"]
    assert {r.fp_db_id for r in settings.routes} == {VIDEO_DB, AUDIO_DB, TEXT_DB}
    # Routing and triggers describe the same prefixes: an upload is never triggered without a route, or routed
    # without a trigger.
    assert {r.prefix for r in settings.routes} == {t.prefix for t in deployed.oss_triggers()}
    if name == "submit_on_upload":
        assert settings.claim_lease_seconds > fn.timeout
    mps_client = pytest.importorskip("shared.mps.client")
    endpoint = mps_client.Endpoint.parse(settings.mps_endpoint, settings.mps_region)
    assert endpoint.netloc == settings.mps_endpoint and endpoint.scheme == "https"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # library videos → the video library AND the audio library (their soundtracks); images → video only
        ("library/film.mp4", [(VIDEO_DB, "forcesave", None), (AUDIO_DB, "forcesave", None)]),
        ("library/Trailer.MOV", [(VIDEO_DB, "forcesave", None), (AUDIO_DB, "forcesave", None)]),
        ("library/still.png", [(VIDEO_DB, "forcesave", None)]),
        ("uploads/clip.mkv", [(VIDEO_DB, "nosave", None)]),
        ("uploads/frame.JPG", [(VIDEO_DB, "nosave", None)]),
        # audio → the audio library (ModelId 13), stored from library/, screened from uploads/
        *[(f"uploads/song{ext}", [(AUDIO_DB, "nosave", None)]) for ext in (".mp3", ".m4a", ".aac", ".wav", ".flac")],
        ("library/score.ogg", [(AUDIO_DB, "forcesave", None)]),
        # texts → the text library, plain text or timed (ASR/subtitles) by suffix
        ("library/novel.txt", [(TEXT_DB, "forcesave", "Text")]),
        ("library/film.srt", [(TEXT_DB, "forcesave", "ASR")]),
        ("uploads/notes.TXT", [(TEXT_DB, "nosave", "Text")]),
        ("uploads/captions.vtt", [(TEXT_DB, "nosave", "ASR")]),
        ("uploads/asr.json", [(TEXT_DB, "nosave", "ASR")]),
        # nothing else is submitted: no .txt to the video library, no unknown types, no folders, no other prefix
        ("uploads/report.docx", []),
        ("uploads/archive.zip", []),
        ("library/dir/", []),
        ("other/film.mp4", []),
    ],
)
def test_routes_send_each_kind_to_its_library(
    deployed: Template, key: str, expected: list[tuple[str, str, str | None]]
) -> None:
    config = pytest.importorskip("shared.config")
    settings = config.Settings.from_env(deployed.function("submit_on_upload").environment)
    assert [(r.fp_db_id, r.save_type, r.text_type_for(key)) for r in settings.routes_for(key)] == expected


def test_media_and_text_routes_do_not_overlap(deployed: Template) -> None:
    config = pytest.importorskip("shared.config")
    routes = config.Settings.from_env(deployed.function("submit_on_upload").environment).routes
    for prefix in ("library/", "uploads/"):
        by_db = {r.fp_db_id: set(r.suffixes) for r in routes if r.prefix == prefix}
        assert set(by_db) == {VIDEO_DB, AUDIO_DB, TEXT_DB}, prefix
        assert by_db[VIDEO_DB] and by_db[TEXT_DB] and by_db[AUDIO_DB]
        assert not (by_db[VIDEO_DB] | by_db[AUDIO_DB]) & by_db[TEXT_DB]
    # Only library videos take two media routes (pictures to the video library, soundtrack to the audio one).
    library = {r.fp_db_id: set(r.suffixes) for r in routes if r.prefix == "library/"}
    uploads = {r.fp_db_id: set(r.suffixes) for r in routes if r.prefix == "uploads/"}
    assert library[VIDEO_DB] & library[AUDIO_DB] == {".mp4", ".mov", ".mkv", ".avi", ".flv", ".ts", ".m4v", ".webm",
                                                     ".mpg", ".mpeg", ".wmv", ".3gp"}  # fmt: skip
    assert not uploads[VIDEO_DB] & uploads[AUDIO_DB]
    for by_db in (library, uploads):
        assert by_db[TEXT_DB] == {".txt", ".srt", ".vtt", ".json"}
        assert {".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg"} <= by_db[AUDIO_DB]
        assert {".mp4", ".jpg"} <= by_db[VIDEO_DB]


def test_regions_agree(deployed: Template) -> None:
    region = REGION
    assert {t.region for t in deployed.mns_topic_triggers()} == {region}
    assert {fn.environment["MPS_REGION"] for fn in deployed.functions} == {region}

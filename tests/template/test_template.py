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
    MnsTopicTrigger,
    OssTrigger,
    Template,
    TimerTrigger,
    load_template,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yml"

# What a deploy supplies (scripts/deploy.py --param); SharedLayerArn comes from publishing the layer.
DEPLOY_PARAMS = {
    "MediaBucketName": "media-bucket",
    "MpsPipelineId": "pipe-0123",
    "LibraryFpDBId": "fpdb-0123",
    "TextLibraryFpDBId": "fpdb-text-0456",
    "SharedLayerArn": "acs:fc:cn-shanghai:123456789:layers/fpscreen-shared/versions/7",
}

# The product facts (the store engineer's shared/store/schema.py must agree, see below).
EXPECTED_TABLES = {
    "fp_objects": (("key", "STRING"),),
    "fp_jobs": (("job_id", "STRING"),),
    "fp_matches": (("job_id", "STRING"), ("slice_id", "STRING")),
    "fp_failed_jobs": (("job_id", "STRING"),),
    "fp_parked_messages": (("message_id", "STRING"),),
    "fp_verdicts": (("job_id", "STRING"),),
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
def test_every_function_uses_the_shared_layer(template: Template, deployed: Template, name: str) -> None:
    assert template.function(name).layers == ["${SharedLayerArn}"]
    assert deployed.function(name).layers == [DEPLOY_PARAMS["SharedLayerArn"]]


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
    schema = pytest.importorskip("shared.store.schema", reason="shared/store/schema.py is not written yet")
    assert {t.name: t.key_schema for t in template.tablestore.tables} == {
        spec.name: tuple(spec.primary_key) for spec in schema.TABLES
    }


def test_store_url_points_at_the_template_instance(template: Template) -> None:
    # shared.store.open_store's form: tablestore://<instance>@<endpoint host>
    instance, region = template.tablestore.name, template.parameter_values["Region"]
    for fn in template.functions:
        url = urlsplit(fn.environment["FPSCREEN_STORE_URL"])
        assert url.scheme == "tablestore"
        assert (url.username, url.hostname) == (instance, f"{instance}.{region}.ots.aliyuncs.com")


# -------------------------------------------------------------------------------------------- triggers


def test_oss_triggers(deployed: Template) -> None:
    triggers = deployed.oss_triggers()
    assert {t.function for t in triggers} == {"submit_on_upload"}
    assert sorted(t.prefix for t in triggers) == ["library/", "uploads/"]
    for t in triggers:
        assert t.bucket == DEPLOY_PARAMS["MediaBucketName"]
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


def test_mns_topic_trigger(template: Template) -> None:
    (trigger,) = template.mns_topic_triggers()
    assert isinstance(trigger, MnsTopicTrigger)
    assert trigger.function == "store_results"
    assert trigger.topic in {t.name for t in template.mns_topics}, "the topic MPS notifies must be declared"
    assert trigger.notify_content_format in ("JSON", "STREAM")
    assert trigger.notify_strategy == "BACKOFF_RETRY"
    assert trigger.filter_tag is None, "MPS publishes without a tag: a FilterTag would drop every message"
    assert trigger.fc_config() == {"notifyContentFormat": "JSON", "notifyStrategy": "BACKOFF_RETRY"}
    assert trigger.source_arn("cn-shanghai", "123") == "acs:mns:cn-shanghai:123:/topics/fpscreen-mps-notify"


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
    assert kinds == {OssTrigger: "oss", MnsTopicTrigger: "mns_topic", TimerTrigger: "timer"}


# --------------------------------------------------------------------------------------- async & logs


def test_upload_function_async_config(template: Template) -> None:
    config = template.function("submit_on_upload").async_config
    assert config is not None
    assert config.max_async_retry_attempts is not None and 1 <= config.max_async_retry_attempts <= 8
    assert config.max_async_event_age_in_seconds is not None
    assert config.destination is not None and config.destination.on_failure
    assert re.fullmatch(r"acs:mns:::/queues/[A-Za-z0-9-]+/messages", config.destination.on_failure)
    fc = config.fc_config()
    assert fc["destinationConfig"] == {"onFailure": {"destination": config.destination.on_failure}}
    assert fc["maxAsyncRetryAttempts"] == config.max_async_retry_attempts


def test_log_config_points_at_a_declared_logstore(template: Template) -> None:
    log_config = template.service.log_config
    assert log_config is not None
    assert log_config.project == template.log_project.name
    assert log_config.logstore in {s.name for s in template.log_project.logstores}


# ----------------------------------------------------------------------------------------------- RAM


def test_policy_is_least_privilege(template: Template) -> None:
    service = template.service
    assert service.role is None, "Role overrides Policies: the template's policy would not apply"
    assert service.managed_policies() == [], "managed policies grant far more than the code uses"
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


def test_policy_resources_are_exactly_ours(template: Template) -> None:
    resources: dict[str, set[str]] = {}
    for statement in template.policy_statements():
        for action in statement.action:
            resources.setdefault(action.split(":", 1)[0], set()).update(statement.resource)
    instance = template.tablestore.name
    assert resources["ots"] == {f"acs:ots:*:*:instance/{instance}/table/{t}" for t in template.tables()}
    log_config = template.service.log_config
    assert log_config is not None
    assert resources["log"] == {f"acs:log:*:*:project/{log_config.project}/logstore/{log_config.logstore}"}
    config = template.function("submit_on_upload").async_config
    assert config is not None and config.destination is not None and config.destination.on_failure
    queue = config.destination.on_failure.split("/queues/", 1)[1]
    assert resources["mns"] == {f"acs:mns:*:*:/queues/{queue}", "acs:mns:*:*:/topics/fpscreen-verdicts/messages"}
    # Verdict actions: only the screened objects and their quarantine copies (a !Sub of the bucket parameter).
    bucket = "acs:oss:*:*:${MediaBucketName}"
    assert resources["oss"] == {f"{bucket}/uploads/*", f"{bucket}/quarantine/*"}


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
    assert settings.mps_region == deployed.parameter_values["Region"]
    assert settings.mps_endpoint == f"mts.{settings.mps_region}.aliyuncs.com"
    assert settings.mps_pipeline_id == DEPLOY_PARAMS["MpsPipelineId"]
    assert {r.fp_db_id for r in settings.routes} == {DEPLOY_PARAMS["LibraryFpDBId"], DEPLOY_PARAMS["TextLibraryFpDBId"]}
    # Routing and triggers describe the same prefixes: an upload is never triggered without a route, or routed
    # without a trigger.
    assert {r.prefix for r in settings.routes} == {t.prefix for t in deployed.oss_triggers()}
    if name == "submit_on_upload":
        assert settings.claim_lease_seconds > fn.timeout
    mps_client = pytest.importorskip("shared.mps.client")
    endpoint = mps_client.Endpoint.parse(settings.mps_endpoint, settings.mps_region)
    assert endpoint.netloc == settings.mps_endpoint and endpoint.scheme == "https"


VIDEO_DB, TEXT_DB = DEPLOY_PARAMS["LibraryFpDBId"], DEPLOY_PARAMS["TextLibraryFpDBId"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # media (video, image, and audio matched against the videos' soundtracks) → the video library
        ("library/film.mp4", [(VIDEO_DB, "forcesave", None)]),
        ("library/Trailer.MOV", [(VIDEO_DB, "forcesave", None)]),
        ("uploads/clip.mkv", [(VIDEO_DB, "nosave", None)]),
        ("uploads/frame.JPG", [(VIDEO_DB, "nosave", None)]),
        *[(f"uploads/song{ext}", [(VIDEO_DB, "nosave", None)]) for ext in (".mp3", ".m4a", ".aac", ".wav", ".flac")],
        ("library/score.ogg", [(VIDEO_DB, "forcesave", None)]),
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
        assert set(by_db) == {VIDEO_DB, TEXT_DB}, prefix
        assert by_db[VIDEO_DB] and by_db[TEXT_DB] and not by_db[VIDEO_DB] & by_db[TEXT_DB]
        assert by_db[TEXT_DB] == {".txt", ".srt", ".vtt", ".json"}
        assert {".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg", ".mp4"} <= by_db[VIDEO_DB]


def test_regions_agree(deployed: Template) -> None:
    region = deployed.parameter_values["Region"]
    assert {t.region for t in deployed.mns_topics} == {region}
    assert {t.region for t in deployed.mns_topic_triggers()} == {region}
    assert {fn.environment["MPS_REGION"] for fn in deployed.functions} == {region}

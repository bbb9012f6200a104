"""What a user does once in the MPS console, done through the official SDK against the local engine:
a pipeline whose NotifyConfig points at the notification topic, and the fingerprint libraries (video and text).

Idempotent: the ids are remembered in the stack state and reused on every later start.
"""

from __future__ import annotations

import json

from aliyunsdkcore.client import AcsClient
from aliyunsdkmts.request.v20140618.AddPipelineRequest import AddPipelineRequest
from aliyunsdkmts.request.v20140618.CreateFpShotDBRequest import CreateFpShotDBRequest
from aliyunsdkmts.request.v20140618.ListFpShotDBRequest import ListFpShotDBRequest
from aliyunsdkmts.request.v20140618.QueryPipelineListRequest import QueryPipelineListRequest
from aliyunsdkmts.request.v20140618.UpdatePipelineRequest import UpdatePipelineRequest

from engine.localstack.state import StackState
from shared.contracts.mps import MODEL_AUDIO, MODEL_TEXT, MODEL_VIDEO
from shared.credentials import Credentials

PIPELINE_SETTING = "mps_pipeline_id"
LIBRARY_SETTING = "library_fp_db_id"
TEXT_LIBRARY_SETTING = "text_library_fp_db_id"
AUDIO_LIBRARY_SETTING = "audio_library_fp_db_id"


class _Mps:
    """The official CoreSDK client aimed at one endpoint, as a user's console script would use it."""

    def __init__(self, endpoint: str, credentials: Credentials, region: str) -> None:
        self._client = AcsClient(credentials.access_key_id, credentials.access_key_secret, region, auto_retry=False)
        self._endpoint = endpoint

    def call(self, request: object) -> dict[str, object]:
        request.set_endpoint(self._endpoint)  # type: ignore[attr-defined]
        request.set_accept_format("json")  # type: ignore[attr-defined]
        return json.loads(self._client.do_action_with_exception(request))


def ensure_pipeline(state: StackState, endpoint: str, credentials: Credentials, region: str, topic: str) -> str:
    """The MPS pipeline (Speed AIVideoFPShot) that notifies `topic`; its NotifyConfig is re-asserted each start."""
    mps = _Mps(endpoint, credentials, region)
    notify = json.dumps({"Topic": topic})
    pipeline_id = state.get_setting(PIPELINE_SETTING)
    if pipeline_id:
        listed = QueryPipelineListRequest()
        listed.set_PipelineIds(pipeline_id)
        found = mps.call(listed).get("PipelineList", {})
        if isinstance(found, dict) and found.get("Pipeline"):
            update = UpdatePipelineRequest()
            update.set_PipelineId(pipeline_id)
            update.set_Name("fpscreen")
            update.set_State("Active")
            update.set_NotifyConfig(notify)
            mps.call(update)
            return pipeline_id
    add = AddPipelineRequest()
    add.set_Name("fpscreen")
    add.set_Speed("AIVideoFPShot")
    add.set_NotifyConfig(notify)
    pipeline = mps.call(add)["Pipeline"]
    pipeline_id = str(pipeline["Id"])  # type: ignore[index]
    state.set_setting(PIPELINE_SETTING, pipeline_id)
    return pipeline_id


def _ensure_fp_db(
    state: StackState,
    endpoint: str,
    credentials: Credentials,
    region: str,
    *,
    setting: str,
    model_id: int,
    name: str,
    description: str,
) -> str:
    """The library remembered under `setting` if the engine still has it, else a new one (CreateFpShotDB)."""
    mps = _Mps(endpoint, credentials, region)
    fp_db_id = state.get_setting(setting)
    if fp_db_id:
        listed = ListFpShotDBRequest()
        listed.set_FpDBIds(fp_db_id)
        found = mps.call(listed).get("FpShotDBList", {})
        if isinstance(found, dict) and found.get("FpShotDB"):
            return fp_db_id
    create = CreateFpShotDBRequest()
    create.set_Name(name)
    create.set_ModelId(model_id)
    create.set_Description(description)
    fp_db_id = str(mps.call(create)["FpShotDB"]["FpDBId"])  # type: ignore[index]
    state.set_setting(setting, fp_db_id)
    return fp_db_id


def ensure_library(state: StackState, endpoint: str, credentials: Credentials, region: str) -> str:
    """The video fingerprint library (ModelId 12: pictures and soundtrack) that media under library/ fills; audio
    uploads are screened against its soundtracks."""
    return _ensure_fp_db(
        state,
        endpoint,
        credentials,
        region,
        setting=LIBRARY_SETTING,
        model_id=MODEL_VIDEO,
        name="fpscreen-library",
        description="Protected works: media uploaded under library/",
    )


def ensure_text_library(state: StackState, endpoint: str, credentials: Credentials, region: str) -> str:
    """The text fingerprint library (ModelId 11) that texts under library/ (.txt, .srt, .vtt, .json) fill."""
    return _ensure_fp_db(
        state,
        endpoint,
        credentials,
        region,
        setting=TEXT_LIBRARY_SETTING,
        model_id=MODEL_TEXT,
        name="fpscreen-text-library",
        description="Protected works: texts uploaded under library/",
    )


def ensure_audio_library(state: StackState, endpoint: str, credentials: Credentials, region: str) -> str:
    """The audio fingerprint library (ModelId 13) that library/ videos' soundtracks and audio files fill; audio
    uploads are screened against it."""
    return _ensure_fp_db(
        state,
        endpoint,
        credentials,
        region,
        setting=AUDIO_LIBRARY_SETTING,
        model_id=MODEL_AUDIO,
        name="fpscreen-audio-library",
        description="Protected works: soundtracks and audio uploaded under library/",
    )

"""Signatures, keys, clocks and nonces: refused with Alibaba's error JSON and HTTP status, by both SDKs' lights."""

from __future__ import annotations

import os
import time

import pytest
from alibabacloud_mts20140618 import models as tea_models
from alibabacloud_tea_openapi.exceptions import ClientException as TeaClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkmts.request.v20140618.ListFpShotDBRequest import ListFpShotDBRequest

from engine.service.app import LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET, EngineService, default_credentials
from tests.service.conftest import AK, SK, CoreMps, raw_call, signed_rpc_query, tea_client

ERROR_KEYS = {"RequestId", "HostId", "Code", "Message"}


def _core_error(service: EngineService, access_key_id: str, secret: str) -> ServerException:
    core = CoreMps(service, access_key_id, secret)
    with pytest.raises(ServerException) as info:
        core.call(ListFpShotDBRequest())
    return info.value


def _tea_error(service: EngineService, access_key_id: str, secret: str) -> TeaClientException:
    with pytest.raises(TeaClientException) as info:
        tea_client(service, access_key_id, secret).list_fp_shot_db(tea_models.ListFpShotDBRequest())
    return info.value


def test_both_signature_styles_verify(service: EngineService, core: CoreMps) -> None:
    assert core.call(ListFpShotDBRequest())["FpShotDBList"] == {"FpShotDB": []}
    tea = tea_client(service)
    assert tea.list_fp_shot_db(tea_models.ListFpShotDBRequest()).status_code == 200


def test_wrong_secret_is_refused(idle_service: EngineService) -> None:
    core = _core_error(idle_service, AK, "not-the-secret")
    # The CoreSDK compares our string-to-sign with its own: equal, so it reports the secret as the culprit.
    assert (core.get_http_status(), core.get_error_code()) == (400, "InvalidAccessKeySecret")
    tea = _tea_error(idle_service, AK, "not-the-secret")
    assert (tea.status_code, tea.code) == (400, "IncompleteSignature")
    assert set(tea.data) >= ERROR_KEYS


def test_unknown_access_key_is_refused(idle_service: EngineService) -> None:
    core = _core_error(idle_service, "someone-else", SK)
    assert (core.get_http_status(), core.get_error_code()) == (404, "InvalidAccessKeyId.NotFound")
    tea = _tea_error(idle_service, "someone-else", SK)
    assert (tea.status_code, tea.code) == (404, "InvalidAccessKeyId.NotFound")


def test_stale_timestamps_are_refused(idle_service: EngineService) -> None:
    real = idle_service.clock
    idle_service.clock = lambda: real() + 16 * 60  # the server's clock runs 16 minutes ahead
    try:
        core = _core_error(idle_service, AK, SK)
        assert (core.get_http_status(), core.get_error_code()) == (400, "InvalidTimeStamp.Expired")
        tea = _tea_error(idle_service, AK, SK)
        assert tea.code == "InvalidTimeStamp.Expired"
    finally:
        idle_service.clock = real
    status, body = raw_call(idle_service, signed_rpc_query("ListFpShotDB", {}, timestamp=time.time() - 20 * 60))
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")
    status, body = raw_call(idle_service, signed_rpc_query("ListFpShotDB", {}, timestamp=time.time() - 60))
    assert status == 200  # within ±15 minutes


def test_a_reused_nonce_is_refused(idle_service: EngineService) -> None:
    query = signed_rpc_query("ListFpShotDB", {}, nonce="nonce-1")
    assert raw_call(idle_service, query)[0] == 200
    status, body = raw_call(idle_service, query)  # a byte-for-byte replay
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    assert set(body) == ERROR_KEYS
    fresh = signed_rpc_query("ListFpShotDB", {}, nonce="nonce-2")
    assert raw_call(idle_service, fresh)[0] == 200


def test_missing_or_tampered_signatures_are_refused(idle_service: EngineService) -> None:
    status, body = raw_call(idle_service, {"Action": "ListFpShotDB", "Version": "2014-06-18", "AccessKeyId": AK})
    assert (status, body["Code"]) == (400, "MissingSignature")
    assert set(body) == ERROR_KEYS and body["HostId"] == idle_service.endpoint
    tampered = signed_rpc_query("ListFpShotDB", {"FpDBIds": "a"}).replace("FpDBIds=a", "FpDBIds=b")
    status, body = raw_call(idle_service, tampered)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    status, body = raw_call(idle_service, "", headers={"Authorization": "ACS3-HMAC-SHA256 garbage"})
    assert (status, body["Code"]) == (400, "IncompleteSignature")


def test_default_credentials_come_from_the_environment_or_the_local_pair() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id-1", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret-1"}
    creds = default_credentials(env)
    assert (creds.access_key_id, creds.access_key_secret) == ("id-1", "secret-1")
    local = default_credentials({})
    assert (local.access_key_id, local.access_key_secret) == (LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count file descriptors")
def test_requests_reuse_threads_and_their_database_connections(idle_service: EngineService) -> None:
    def burst(count: int) -> None:
        for n in range(count):
            action = "ListFpShotDB" if n % 2 else "QueryFpShotJobList"
            assert raw_call(idle_service, signed_rpc_query(action, {}))[0] == 200

    burst(20)
    before = len(os.listdir("/proc/self/fd"))
    burst(100)
    # One thread per request would hold two more SQLite connections (with WAL files) for every request.
    assert len(os.listdir("/proc/self/fd")) - before < 20

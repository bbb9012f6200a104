"""engine.service.auth: both signature styles, checked against Alibaba's doc vector and the SDKs' own signers."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import pytest
from alibabacloud_tea_openapi.utils import Utils as TeaUtils
from aliyunsdkcore.auth.composer.rpc_signature_composer import get_signed_url

from engine.service.auth import (
    AuthError,
    NonceCache,
    error_body,
    parse_query,
    rpc_signature,
    rpc_string_to_sign,
    verify_request,
)
from shared.contracts.mps import ErrorResponse

# Alibaba's documented RPC signature example (reference §1.7): secret "testKeySecret", GET.
DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SearchTemplate",
    "Format": "XML",
    "PageSize": "2",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "4902260a-516a-4b6a-a455-45b653cf6150",
    "SignatureVersion": "1.0",
    "Timestamp": "2015-05-14T09:03:45Z",
    "Version": "2014-06-18",
}
DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSearchTemplate%26Format%3DXML%26PageSize%3D2"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D4902260a-516a-4b6a-a455-45b653cf6150"
    "%26SignatureVersion%3D1.0%26Timestamp%3D2015-05-14T09%253A03%253A45Z%26Version%3D2014-06-18"
)
DOC_SIGNATURE = "kmDv4mWo806GWPjQMy2z4VhBBDQ="
DOC_NOW = datetime(2015, 5, 14, 9, 3, 45, tzinfo=timezone.utc).timestamp()
DOC_SECRETS = {"testId": "testKeySecret"}

AK, SK = "testAK", "testSecret"


def verify_doc(params: dict[str, str], *, now: float = DOC_NOW, cache: NonceCache | None = None, **kw: object):
    return verify_request(
        "GET", "/", list(params.items()), {}, b"",
        secrets=DOC_SECRETS, now=now, nonce_cache=NonceCache() if cache is None else cache, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def refused(call: object) -> AuthError:
    assert callable(call)
    with pytest.raises(AuthError) as info:
        call()
    return info.value


# ------------------------------------------------------------------------------------ RPC v1


def test_doc_vector_string_to_sign_and_signature() -> None:
    assert rpc_string_to_sign("GET", DOC_PARAMS) == DOC_STRING_TO_SIGN
    assert rpc_signature("testKeySecret", DOC_STRING_TO_SIGN) == DOC_SIGNATURE


def test_doc_vector_request_verifies() -> None:
    result = verify_doc({**DOC_PARAMS, "Signature": DOC_SIGNATURE})
    assert (result.access_key_id, result.action, result.version, result.style) == (
        "testId",
        "SearchTemplate",
        "2014-06-18",
        "RPC",
    )
    assert result.params == {"PageSize": "2"}  # the envelope is stripped


def test_tampered_parameter_is_refused_with_the_server_string_to_sign() -> None:
    err = refused(lambda: verify_doc({**DOC_PARAMS, "PageSize": "3", "Signature": DOC_SIGNATURE}))
    assert (err.code, err.http_status) == ("SignatureDoesNotMatch", 400)
    # The CoreSDK compares the text after ":" with its own string to sign to detect a wrong secret.
    assert err.message.split(":", 1)[1] == DOC_STRING_TO_SIGN.replace("PageSize%3D2", "PageSize%3D3")


def test_wrong_secret_is_refused() -> None:
    err = refused(lambda: verify_request(
        "GET", "/", list({**DOC_PARAMS, "Signature": DOC_SIGNATURE}.items()), {}, b"",
        secrets={"testId": "otherSecret"}, now=DOC_NOW, nonce_cache=NonceCache(),
    ))  # fmt: skip
    assert err.code == "SignatureDoesNotMatch"


def test_unknown_access_key_is_404() -> None:
    params = {**DOC_PARAMS, "AccessKeyId": "nobody", "Signature": DOC_SIGNATURE}
    err = refused(lambda: verify_doc(params))
    assert (err.code, err.http_status) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("skew", [-15 * 60, 15 * 60])
def test_timestamp_within_15_minutes_is_accepted(skew: int) -> None:
    assert verify_doc({**DOC_PARAMS, "Signature": DOC_SIGNATURE}, now=DOC_NOW + skew).action == "SearchTemplate"


@pytest.mark.parametrize("skew", [-15 * 60 - 1, 15 * 60 + 1, 24 * 3600])
def test_stale_or_future_timestamp_is_refused(skew: int) -> None:
    err = refused(lambda: verify_doc({**DOC_PARAMS, "Signature": DOC_SIGNATURE}, now=DOC_NOW + skew))
    assert (err.code, err.http_status) == ("InvalidTimeStamp.Expired", 400)


def test_malformed_timestamp_is_refused() -> None:
    err = refused(lambda: verify_doc({**DOC_PARAMS, "Timestamp": "14/05/2015 09:03", "Signature": DOC_SIGNATURE}))
    assert err.code == "InvalidTimeStamp.Format"


def test_reused_nonce_is_refused_but_a_forgery_does_not_burn_it() -> None:
    cache = NonceCache()
    forged = refused(lambda: verify_doc({**DOC_PARAMS, "Signature": "AAAA"}, cache=cache))
    assert forged.code == "SignatureDoesNotMatch"
    verify_doc({**DOC_PARAMS, "Signature": DOC_SIGNATURE}, cache=cache)  # the genuine request still passes
    err = refused(lambda: verify_doc({**DOC_PARAMS, "Signature": DOC_SIGNATURE}, now=DOC_NOW + 60, cache=cache))
    assert (err.code, err.http_status) == ("SignatureNonceUsed", 400)


@pytest.mark.parametrize(
    ("drop", "code"),
    [
        ("Signature", "MissingSignature"),
        ("AccessKeyId", "MissingAccessKeyId"),
        ("Timestamp", "MissingTimestamp"),
        ("SignatureNonce", "MissingSignatureNonce"),
        ("Version", "MissingVersion"),
        ("Action", "MissingAction"),
    ],
)
def test_missing_envelope_parameter(drop: str, code: str) -> None:
    params = {**DOC_PARAMS, "Signature": DOC_SIGNATURE}
    del params[drop]
    err = refused(lambda: verify_doc(params))
    assert (err.code, err.http_status) == (code, 400)
    assert err.message == f"{drop} is mandatory for this action."


def test_unsupported_signature_method_and_wrong_version() -> None:
    err = refused(lambda: verify_doc({**DOC_PARAMS, "SignatureMethod": "HMAC-MD5", "Signature": DOC_SIGNATURE}))
    assert err.code == "InvalidParameter"
    params = {**DOC_PARAMS, "Signature": DOC_SIGNATURE}
    err = refused(lambda: verify_doc(params, expected_version="2020-11-09"))
    assert err.code == "InvalidVersion"


def test_duplicated_parameter_is_refused() -> None:
    items = [*{**DOC_PARAMS, "Signature": DOC_SIGNATURE}.items(), ("PageSize", "9")]
    err = refused(lambda: verify_request(
        "GET", "/", items, {}, b"", secrets=DOC_SECRETS, now=DOC_NOW, nonce_cache=NonceCache()
    ))  # fmt: skip
    assert err.code == "InvalidParameter"


def test_coresdk_signed_url_with_awkward_values_verifies() -> None:
    """The CoreSDK's own signer (quote_plus, then '+'→%20, '*'→%2A, %7E→'~') must agree with ours."""
    params = {
        "Action": "SubmitFpShotJob",
        "Version": "2014-06-18",
        "Input": '{"Bucket":"b","Location":"oss-cn-shanghai","Object":"a b+c*~%/视频.mp4"}',
        "UserData": "x y=z&w",
    }
    url, string_to_sign = get_signed_url(dict(params), AK, SK, "JSON", "POST", {})
    query = parse_query(urlsplit(url).query)
    result = verify_request("POST", "/", query, {}, b"", secrets={AK: SK}, now=time.time(), nonce_cache=NonceCache())
    assert result.params["Input"] == params["Input"]
    assert result.params["UserData"] == params["UserData"]
    assert rpc_string_to_sign("POST", dict(query)) == string_to_sign


def test_form_body_parameters_are_signed_and_returned() -> None:
    params = {"Action": "ReportFpShotJobResult", "Version": "2014-06-18"}
    body = {"JobId": "j1", "Result": "wrong match"}
    url, _ = get_signed_url(dict(params), AK, SK, "JSON", "POST", body)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    encoded = urlencode(body).encode()
    result = verify_request(
        "POST", "/", parse_query(urlsplit(url).query), headers, encoded,
        secrets={AK: SK}, now=time.time(), nonce_cache=NonceCache(),
    )  # fmt: skip
    assert result.params == body
    tampered = urlencode({**body, "Result": "ok"}).encode()
    err = refused(lambda: verify_request(
        "POST", "/", parse_query(urlsplit(url).query), headers, tampered,
        secrets={AK: SK}, now=time.time(), nonce_cache=NonceCache(),
    ))  # fmt: skip
    assert err.code == "SignatureDoesNotMatch"


# -------------------------------------------------------------------------------------- ACS3


def acs3_request(
    query: dict[str, str],
    *,
    body: bytes = b"",
    secret: str = SK,
    token: str | None = None,
    date: str | None = None,
    nonce: str = "nonce-1",
) -> SimpleNamespace:
    """A request signed by the Tea SDK's own `Utils.get_authorization` (the oracle for our verifier)."""
    headers = {
        "host": "127.0.0.1:8080",
        "x-acs-version": "2014-06-18",
        "x-acs-action": "SubmitFpShotJob",
        "user-agent": "test",
        "x-acs-date": date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": nonce,
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if token:
        headers["x-acs-accesskey-id"] = AK
        headers["x-acs-security-token"] = token
    request = SimpleNamespace(method="POST", pathname="/", query=dict(query), headers=headers, body=body)
    headers["Authorization"] = TeaUtils.get_authorization(
        request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"], AK, secret
    )
    # On the wire the query is form-encoded like darabonba does it: a space becomes '+'.
    request.raw_query = urlencode(query)
    return request


def verify_acs3(request: SimpleNamespace, *, cache: NonceCache | None = None, **kw: object):
    return verify_request(
        request.method, request.pathname, parse_query(request.raw_query), request.headers, request.body,
        secrets={AK: SK}, now=time.time(), nonce_cache=NonceCache() if cache is None else cache, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_acs3_request_signed_by_the_tea_sdk_verifies_with_plus_as_space() -> None:
    request = acs3_request({"Input": '{"Object":"a b+c*~.mp4"}', "UserData": "two words"})
    assert "two+words" in request.raw_query  # the '+' must be decoded as a space before re-encoding
    result = verify_acs3(request)
    assert (result.style, result.action, result.version, result.access_key_id) == (
        "ACS3",
        "SubmitFpShotJob",
        "2014-06-18",
        AK,
    )
    assert result.params == {"Input": '{"Object":"a b+c*~.mp4"}', "UserData": "two words"}


def test_acs3_wrong_secret_and_tampering_are_refused() -> None:
    assert refused(lambda: verify_acs3(acs3_request({"A": "1"}, secret="nope"))).code == "IncompleteSignature"
    request = acs3_request({"A": "1"})
    request.headers["x-acs-action"] = "ReportFpShotJobResult"
    assert refused(lambda: verify_acs3(request)).code == "IncompleteSignature"
    request = acs3_request({"A": "1"})
    request.raw_query = "A=2"
    assert refused(lambda: verify_acs3(request)).code == "IncompleteSignature"


def test_acs3_unsigned_acs_header_and_body_mismatch_are_refused() -> None:
    request = acs3_request({"A": "1"})
    request.headers["x-acs-extra"] = "sneaky"
    err = refused(lambda: verify_acs3(request))
    assert err.code == "IncompleteSignature" and "x-acs-extra" in err.message
    request = acs3_request({"A": "1"}, body=b"payload")
    request.body = b"other payload"
    err = refused(lambda: verify_acs3(request))
    assert err.code == "IncompleteSignature" and "x-acs-content-sha256" in err.message


def test_acs3_clock_nonce_and_key_checks() -> None:
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 16 * 60))
    assert refused(lambda: verify_acs3(acs3_request({}, date=stale))).code == "InvalidTimeStamp.Expired"
    cache = NonceCache()
    request = acs3_request({}, nonce="n-42")
    verify_acs3(request, cache=cache)
    assert refused(lambda: verify_acs3(request, cache=cache)).code == "SignatureNonceUsed"
    unknown = refused(lambda: verify_request(
        "POST", "/", [], request.headers, b"", secrets={"other": "x"}, now=time.time(), nonce_cache=NonceCache()
    ))  # fmt: skip
    assert (unknown.code, unknown.http_status) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize(
    "authorization",
    [
        "ACS3-HMAC-SHA256 Credential=testAK",
        "ACS3-HMAC-SHA256 Credential=testAK,SignedHeaders=x-acs-date;host,Signature=00",
        "HMAC-SHA1 Credential=testAK,SignedHeaders=host,Signature=00",
    ],
)
def test_malformed_authorization_is_incomplete_signature(authorization: str) -> None:
    request = acs3_request({})
    request.headers["Authorization"] = authorization
    assert refused(lambda: verify_acs3(request)).code == "IncompleteSignature"


def test_security_token_must_match_the_key() -> None:
    tokens = {AK: "sts-token"}
    assert verify_acs3(acs3_request({}, token="sts-token"), security_tokens=tokens).security_token == "sts-token"
    err = refused(lambda: verify_acs3(acs3_request({}, token="forged"), security_tokens=tokens))
    assert err.code == "InvalidSecurityToken.MismatchWithAccessKey"
    assert refused(lambda: verify_acs3(acs3_request({}), security_tokens=tokens)).code == "MissingSecurityToken"


# ------------------------------------------------------------------------------- nonces, errors


def test_nonce_cache_forgets_at_expiry() -> None:
    cache = NonceCache()
    assert cache.add("k", expires_at=100.0, now=0.0)
    assert not cache.add("k", expires_at=100.0, now=99.0)
    assert cache.add("k", expires_at=300.0, now=100.0)  # expired, so a fresh use
    assert len(cache) == 1


def test_nonce_cache_memory_is_bounded_evicting_the_soonest_to_expire() -> None:
    cache = NonceCache(max_entries=3)
    for i, expiry in enumerate([50.0, 10.0, 40.0, 30.0]):
        assert cache.add(f"n{i}", expires_at=expiry, now=0.0)
    assert len(cache) == 3
    assert cache.add("n1", expires_at=10.0, now=1.0)  # the evicted one (earliest expiry) is forgotten
    assert not cache.add("n0", expires_at=50.0, now=1.0)
    assert not cache.add("n2", expires_at=40.0, now=1.0)


def test_error_body_is_alibabas_shape() -> None:
    body = error_body("Throttling.User", "Request was denied due to user flow control.")
    assert list(body) == ["RequestId", "HostId", "Code", "Message"]
    parsed = ErrorResponse.model_validate(body)
    assert parsed.code == "Throttling.User" and parsed.host_id == "mts.cn-shanghai.aliyuncs.com"
    assert len(parsed.request_id) == 36 and parsed.request_id == parsed.request_id.upper()

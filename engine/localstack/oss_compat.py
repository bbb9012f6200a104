"""A local OSS endpoint for the real `oss2` SDK: moto's in-process S3 behind a WSGI shim.

oss2 speaks a dialect of S3 that plain moto half-understands (reference Part 2 §2): it ignores `x-oss-*`
headers (user metadata is silently dropped, copies come out empty), oss2's ElementTree lookups can't see through
moto's S3 XML namespace, oss2 sends empty `continuation-token=`/`marker=` parameters moto rejects, and
`?bucketInfo` is unknown to S3. `OssShim` fixes those on the wire, both ways, so the SDK is used unmodified.

    with OssCompatServer() as oss:
        bucket = oss2.Bucket(oss2.Auth("ak", "sk"), oss.endpoint, "media")   # path-style: 127.0.0.1 is an IP
        bucket.create_bucket()

Signatures are not verified, CRC64 headers are not produced (oss2 then skips its CRC check), `append_object`
is unsupported, and bodies are buffered in memory: this is a test double, not a server.
"""

from __future__ import annotations

import io
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from engine.wsgi import HttpLimits, WsgiServer
from shared.vocabulary import DEFAULT_REGION

WsgiEnviron = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[WsgiEnviron, StartResponse], Iterable[bytes]]


# Query parameters oss2 always sends, empty when unused; moto answers 400 InvalidArgument to an empty one.
_DROP_WHEN_EMPTY = frozenset({"continuation-token", "start-after", "marker", "delimiter"})
_V1_LIST_PARAMS = frozenset({"prefix", "delimiter", "marker", "max-keys", "encoding-type"})
_V2_ONLY = re.compile(rb"<(KeyCount|ContinuationToken|NextContinuationToken|StartAfter)>[^<]*</\1>")
_KEY = re.compile(rb"<Key>([^<]*)</Key>")
_COMMON_PREFIX = re.compile(rb"<CommonPrefixes>\s*<Prefix>([^<]*)</Prefix>")
_S3_XMLNS = re.compile(rb'\s+xmlns="http://s3\.amazonaws\.com/doc/[^"]*"')
_CONTENTS = re.compile(rb"<Contents>(.*?)</Contents>", re.S)
_LIST_BUCKET = re.compile(rb"<Bucket>(.*?)</Bucket>", re.S)
# OSS uses capitalised storage-class names; S3 upper-case ones.
_STORAGE_CLASS_TO_S3 = {"standard": "STANDARD", "ia": "STANDARD_IA", "archive": "GLACIER"}
_STORAGE_CLASS_FROM_S3 = {b"STANDARD": b"Standard", b"STANDARD_IA": b"IA", b"GLACIER": b"Archive"}


def _drop_empty_params(query: str) -> str:
    """Remove `name=` (or bare `name`) pieces oss2 sends empty; keep every other piece byte for byte."""
    kept = []
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        if unquote(name) in _DROP_WHEN_EMPTY and value == "":
            continue
        kept.append(piece)
    return "&".join(kept)


def _v1_query_as_v2(query: str) -> str:
    pieces = ["list-type=2"]
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pieces.append(f"start-after={value}" if unquote(name) == "marker" else piece)
    return "&".join(pieces)


def _v2_listing_as_v1(body: bytes) -> bytes:
    """ListObjectsV2 result → ListObjects (v1): NextMarker is the last key or common prefix returned."""
    body = _V2_ONLY.sub(b"", body)
    if b"<IsTruncated>true</IsTruncated>" not in body:
        return body
    names = _KEY.findall(body) + _COMMON_PREFIX.findall(body)
    if not names:
        return body
    # With encoding-type=url the names are escaped; order them as the keys they stand for.
    last = max(names, key=lambda raw: unquote(raw.decode("utf-8")))
    return body.replace(
        b"<IsTruncated>true</IsTruncated>", b"<IsTruncated>true</IsTruncated><NextMarker>" + last + b"</NextMarker>", 1
    )


def _query_names(query: str) -> set[str]:
    return {unquote(piece.partition("=")[0]) for piece in query.split("&") if piece}


class OssShim:
    """WSGI middleware: OSS requests in, moto S3 behind, OSS responses out. `/moto-api/*` goes to `api_app`."""

    def __init__(self, s3_app: WsgiApp, *, api_app: WsgiApp | None = None, region: str = DEFAULT_REGION) -> None:
        self._s3 = s3_app
        self._api = api_app
        self.region = region
        # OSS object ACLs are canned names, with "default" (inherit the bucket's) that S3 cannot express, and
        # moto answers GetObjectAcl with S3 grants oss2 can't read: the shim keeps each object's canned ACL.
        self._object_acls: dict[tuple[str, str], str] = {}
        self._acl_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------- WSGI

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path.startswith("/moto-api") and self._api is not None:
            return self._api(environ, start_response)
        self._translate_request(environ)
        names = _query_names(environ.get("QUERY_STRING", ""))
        bucket, key = self._split_path(path)
        is_bucket_get = bool(bucket) and not key and environ["REQUEST_METHOD"] == "GET"
        method = environ["REQUEST_METHOD"]
        acl_header = environ.get("HTTP_X_OSS_OBJECT_ACL", "")
        if key and "acl" in names and method == "GET":
            status, headers, body = self._get_object_acl(environ, bucket, key)
        elif key and "acl" in names and method == "PUT" and acl_header == "default":
            # S3 has no "inherit": forget the object's canned ACL (moto's grants stay the bucket owner's).
            status, headers, body = self._head(environ, bucket, key)
            if status.startswith("200"):
                with self._acl_lock:
                    self._object_acls.pop((bucket, unquote(key)), None)
                headers, body = [], b""
        elif is_bucket_get and names & {"bucketInfo", "location"}:
            status, headers, body = self._bucket_subresource(environ, bucket, "bucketInfo" in names)
        elif is_bucket_get and names <= _V1_LIST_PARAMS:
            # moto's v1 listing repeats every CommonPrefix on every page and hands out opaque markers; its v2
            # listing pages keys and prefixes together as OSS does. Serve v1 through v2.
            environ["QUERY_STRING"] = _v1_query_as_v2(environ.get("QUERY_STRING", ""))
            status, headers, body = self._call(self._s3, environ)
            if status.startswith("200"):
                body = _v2_listing_as_v1(body)
        else:
            status, headers, body = self._call(self._s3, environ)
        if key and status.startswith(("200", "204")):
            self._remember_acl(method, bucket, unquote(key), acl_header, names)
        return self._respond(environ, start_response, status, headers, body, object_request=bool(key))

    # --------------------------------------------------------------------------------------- object ACLs

    def _remember_acl(self, method: str, bucket: str, key: str, acl: str, names: set[str]) -> None:
        with self._acl_lock:
            if method == "DELETE" and not names:
                self._object_acls.pop((bucket, key), None)
            elif method == "PUT" and acl and acl != "default":
                self._object_acls[(bucket, key)] = acl
            elif method == "PUT" and not names:
                self._object_acls.pop((bucket, key), None)  # a new object without an ACL header inherits

    def _head(self, environ: WsgiEnviron, bucket: str, key: str) -> tuple[str, list[tuple[str, str]], bytes]:
        probe = dict(
            environ,
            REQUEST_METHOD="HEAD",
            PATH_INFO=f"/{bucket}/{key}",
            QUERY_STRING="",
            CONTENT_LENGTH="0",
            **{"wsgi.input": io.BytesIO(b"")},
        )
        status, headers, _ = self._call(self._s3, probe)
        if status.startswith("200"):
            return status, headers, b""
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>NoSuchKey</Code>"
            f"<Message>The specified key does not exist.</Message><Key>{escape(unquote(key))}</Key></Error>"
        )
        return "404 Not Found", [("Content-Type", "application/xml")], body.encode()

    def _get_object_acl(self, environ: WsgiEnviron, bucket: str, key: str) -> tuple[str, list[tuple[str, str]], bytes]:
        """GetObjectAcl in OSS's shape: `<AccessControlList><Grant>private</Grant>` (or `default`)."""
        status, _headers, body = self._head(environ, bucket, key)
        if not status.startswith("200"):
            return status, [("Content-Type", "application/xml")], body
        with self._acl_lock:
            acl = self._object_acls.get((bucket, unquote(key)), "default")
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<AccessControlPolicy><Owner><ID>local</ID>"
            f"<DisplayName>local</DisplayName></Owner><AccessControlList><Grant>{acl}</Grant></AccessControlList>"
            "</AccessControlPolicy>"
        )
        return "200 OK", [("Content-Type", "application/xml")], body.encode()

    # ----------------------------------------------------------------------------------------- request

    def _translate_request(self, environ: WsgiEnviron) -> None:
        for name in [n for n in environ if n.startswith("HTTP_X_OSS_")]:
            suffix = name[len("HTTP_X_OSS_") :]
            value = environ[name]
            if suffix == "STORAGE_CLASS":
                value = _STORAGE_CLASS_TO_S3.get(value.lower(), value)
            if suffix == "OBJECT_ACL":
                if value == "default":  # OSS "inherit the bucket ACL" has no S3 spelling: just omit it
                    continue
                suffix = "ACL"
            environ.setdefault("HTTP_X_AMZ_" + suffix, value)
        environ["QUERY_STRING"] = _drop_empty_params(environ.get("QUERY_STRING", ""))
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth.startswith("OSS4-HMAC-SHA256"):
            # Else moto reads service "oss" from the credential scope; the signature is not checked anyway.
            environ["HTTP_AUTHORIZATION"] = "AWS4-HMAC-SHA256" + auth[len("OSS4-HMAC-SHA256") :].replace(
                "/oss/aliyun_v4_request", "/s3/aws4_request"
            )

    @staticmethod
    def _split_path(path: str) -> tuple[str, str]:
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    @staticmethod
    def _call(app: WsgiApp, environ: WsgiEnviron) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], list(captured["headers"]), body

    def _bucket_subresource(
        self, environ: WsgiEnviron, bucket: str, info: bool
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Answer the OSS-only `?bucketInfo` (and `?location`, which moto leaves empty) for an existing bucket."""
        probe = dict(
            environ,
            REQUEST_METHOD="HEAD",
            PATH_INFO=f"/{bucket}",
            QUERY_STRING="",
            CONTENT_LENGTH="0",
            **{"wsgi.input": io.BytesIO(b"")},
        )
        status, _headers, _ = self._call(self._s3, probe)
        xml_type = [("Content-Type", "application/xml")]
        if not status.startswith("200"):
            body = (
                "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>NoSuchBucket</Code>"
                f"<Message>The specified bucket does not exist.</Message><BucketName>{bucket}</BucketName>"
                "</Error>"
            )
            return "404 Not Found", xml_type, body.encode()
        location = f"oss-{self.region}"
        if not info:
            body = f"<?xml version='1.0' encoding='UTF-8'?>\n<LocationConstraint>{location}</LocationConstraint>"
            return "200 OK", xml_type, body.encode()
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<BucketInfo><Bucket>"
            f"<Name>{bucket}</Name><CreationDate>{created}</CreationDate><Location>{location}</Location>"
            f"<ExtranetEndpoint>{location}.aliyuncs.com</ExtranetEndpoint>"
            f"<IntranetEndpoint>{location}-internal.aliyuncs.com</IntranetEndpoint>"
            "<StorageClass>Standard</StorageClass><DataRedundancyType>LRS</DataRedundancyType>"
            "<Owner><DisplayName>local</DisplayName><ID>local</ID></Owner>"
            "<AccessControlList><Grant>private</Grant></AccessControlList></Bucket></BucketInfo>"
        )
        return "200 OK", xml_type, body.encode()

    # ---------------------------------------------------------------------------------------- response

    def _respond(
        self,
        environ: WsgiEnviron,
        start_response: StartResponse,
        status: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        object_request: bool,
    ) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        out: list[tuple[str, str]] = []
        request_id = ""
        for name, value in headers:
            lower = name.lower()
            if lower in ("x-amzn-requestid", "x-amz-request-id"):
                request_id = request_id or value
            elif lower == "content-length":
                continue  # recomputed below
            elif lower.startswith("x-amz-"):
                out.append(("x-oss-" + lower[len("x-amz-") :], value))
            else:
                out.append((name, value))
        # OSS request ids are 24 upper-case hex characters; oss2 surfaces them as `result.request_id`.
        out.append(("x-oss-request-id", (request_id.replace("-", "")[:24] or uuid.uuid4().hex[:24]).upper()))
        if object_request and method in ("GET", "HEAD") and status[:1] == "2":
            out.append(("x-oss-object-type", "Normal"))
        if method != "HEAD" and body.lstrip().startswith(b"<"):
            body = self._fix_xml(body)
        if method == "HEAD":
            # moto's Content-Length on HEAD is the object's size, which oss2 reports as content_length.
            original = next((v for n, v in headers if n.lower() == "content-length"), None)
            if original is not None:
                out.append(("Content-Length", original))
        else:
            out.append(("Content-Length", str(len(body))))
        start_response(status, out)
        return [] if method == "HEAD" else [body]

    def _fix_xml(self, body: bytes) -> bytes:
        body = _S3_XMLNS.sub(b"", body)
        if b"<ListBucketResult" in body:
            body = _CONTENTS.sub(self._contents_with_type, body)
        elif b"<ListAllMyBucketsResult" in body:
            body = _LIST_BUCKET.sub(self._bucket_with_location, body)
        for s3_name, oss_name in _STORAGE_CLASS_FROM_S3.items():
            body = body.replace(b"<StorageClass>" + s3_name + b"</", b"<StorageClass>" + oss_name + b"</")
        return body

    @staticmethod
    def _contents_with_type(match: re.Match[bytes]) -> bytes:
        inner = match.group(1)
        if b"<Type>" not in inner:
            inner += b"<Type>Normal</Type>"
        return b"<Contents>" + inner + b"</Contents>"

    def _bucket_with_location(self, match: re.Match[bytes]) -> bytes:
        inner = match.group(1)
        location = f"oss-{self.region}"
        extra = ""
        for tag, value in (
            ("Location", location),
            ("ExtranetEndpoint", f"{location}.aliyuncs.com"),
            ("IntranetEndpoint", f"{location}-internal.aliyuncs.com"),
            ("StorageClass", "Standard"),
            ("Region", self.region),
        ):
            if f"<{tag}>".encode() not in inner:
                extra += f"<{tag}>{value}</{tag}>"
        return b"<Bucket>" + inner + extra.encode() + b"</Bucket>"


# Objects are media files: bodies up to OSS's 5 GB PutObject limit (waitress spools large bodies to disk).
OSS_HTTP_LIMITS = HttpLimits(threads=8, channel_timeout=60, max_request_body_size=5 << 30)


def _oss_error(status: int, reason: str, detail: str) -> tuple[str, bytes]:
    code = escape(reason.replace(" ", ""))
    message = escape(detail.strip() or reason)
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return "application/xml", body.encode("utf-8")


class OssCompatServer:
    """The shim served over HTTP on 127.0.0.1 (port 0 = any free port) in a daemon thread.

    Use as a context manager; `.endpoint` is what `oss2.Bucket` takes. Storage is moto's, which is process-global
    and, like real OSS, has one bucket namespace: two servers in one process see the same buckets. Use distinct
    bucket names per test, or `reset()` (which empties every moto backend in the process).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, region: str = DEFAULT_REGION) -> None:
        self.host = host
        self.port = port
        self.region = region
        self._server: WsgiServer | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("OssCompatServer is not running: use it as a context manager or call start()")
        return f"http://{self.host}:{self._server.port}"

    def start(self) -> OssCompatServer:
        # Imported here: moto + Flask are heavy and only the local stack needs them.
        from moto.moto_server.werkzeug_app import create_backend_app

        shim = OssShim(create_backend_app("s3"), api_app=create_backend_app("moto_api"), region=self.region)
        self._server = WsgiServer(
            shim, self.host, self.port, limits=OSS_HTTP_LIMITS, render_error=_oss_error, name="oss-compat"
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API: all of moto's in-process state)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def bucket(self, name: str, access_key_id: str = "test-ak", access_key_secret: str = "test-sk") -> Any:
        """An `oss2.Bucket` bound to this endpoint (oss2 imported lazily)."""
        import oss2

        return oss2.Bucket(oss2.Auth(access_key_id, access_key_secret), self.endpoint, name)

    def __enter__(self) -> OssCompatServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

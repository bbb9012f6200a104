"""The local OSS endpoint, exercised with the real oss2 SDK (no mocks of oss2 itself)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator

import oss2
import pytest

from engine.localstack.oss_compat import OssCompatServer

KEYS_TO_ESCAPE = ["library/a b.mp4", "library/a+b.mp4", "library/视频/预告片.mp4", "library/100%.mp4"]


@pytest.fixture(scope="module")
def server() -> Iterator[OssCompatServer]:
    with OssCompatServer() as oss:
        yield oss


@pytest.fixture
def bucket(server: OssCompatServer) -> oss2.Bucket:
    # moto's bucket namespace is process-wide (like OSS's): a fresh name per test keeps tests independent.
    b = server.bucket(f"t-{uuid.uuid4().hex[:12]}")
    b.create_bucket()
    return b


def test_endpoint_is_loopback_on_a_free_port(server: OssCompatServer) -> None:
    assert server.endpoint.startswith("http://127.0.0.1:")
    assert int(server.endpoint.rsplit(":", 1)[1]) > 0


def test_put_get_head(bucket: oss2.Bucket) -> None:
    body = os.urandom(2048)
    put = bucket.put_object("library/clip.mp4", body, headers={"Content-Type": "video/mp4"})
    assert put.status == 200
    assert put.etag == hashlib.md5(body).hexdigest()
    assert len(put.request_id) == 24  # renamed from moto's x-amzn-requestid

    got = bucket.get_object("library/clip.mp4")
    assert got.read() == body
    assert got.content_type == "video/mp4"

    head = bucket.head_object("library/clip.mp4")
    assert head.content_length == len(body)  # HEAD keeps the object's size, not the empty body's
    assert head.etag == put.etag
    assert head.object_type == "Normal"
    assert bucket.get_object_meta("library/clip.mp4").content_length == len(body)

    ranged = bucket.get_object("library/clip.mp4", byte_range=(10, 19))
    assert ranged.status == 206 and ranged.read() == body[10:20]


def test_missing_objects_and_buckets(server: OssCompatServer, bucket: oss2.Bucket) -> None:
    assert not bucket.object_exists("nope.mp4")
    with pytest.raises(oss2.exceptions.NoSuchKey) as err:
        bucket.get_object("nope.mp4")
    assert err.value.status == 404 and err.value.request_id
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        server.bucket(f"absent-{uuid.uuid4().hex[:8]}").get_bucket_info()


def test_user_metadata_round_trips(bucket: oss2.Bucket) -> None:
    bucket.put_object("library/m.mp4", b"x", headers={"x-oss-meta-owner": "alice", "x-oss-meta-source": "cam-1"})
    meta = bucket.head_object("library/m.mp4").headers
    assert meta["x-oss-meta-owner"] == "alice"
    assert meta["x-oss-meta-source"] == "cam-1"


@pytest.mark.parametrize("key", KEYS_TO_ESCAPE)
def test_keys_that_need_escaping(bucket: oss2.Bucket, key: str) -> None:
    bucket.put_object(key, key.encode())
    assert bucket.get_object(key).read() == key.encode()
    assert bucket.object_exists(key)
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="library/")] == [key]


def test_paging_over_escaped_keys(bucket: oss2.Bucket) -> None:
    # oss2 lists with encoding-type=url: markers and keys travel escaped and must come back exact.
    for key in KEYS_TO_ESCAPE:
        bucket.put_object(key, b"1")
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="library/", max_keys=1)] == sorted(KEYS_TO_ESCAPE)


def test_list_objects_with_prefix_and_delimiter(bucket: oss2.Bucket) -> None:
    keys = ["library/a.mp4", "library/b.mov", "library/sub/c.mp4", "library/sub/deep/d.mp4", "uploads/e.mp4"]
    for key in keys:
        bucket.put_object(key, b"1")
    result = bucket.list_objects(prefix="library/", delimiter="/")
    assert [o.key for o in result.object_list] == ["library/a.mp4", "library/b.mov"]
    assert result.prefix_list == ["library/sub/"]
    assert {o.type for o in result.object_list} == {"Normal"}
    assert {o.size for o in result.object_list} == {1}
    assert not result.is_truncated

    flat = bucket.list_objects(prefix="library/")  # oss2 sends delimiter= and marker= empty: must still work
    assert [o.key for o in flat.object_list] == keys[:4]


def test_object_iterator_pages(bucket: oss2.Bucket) -> None:
    keys = [f"library/{i:03d}.mp4" for i in range(7)] + ["library/sub/x.mp4", "library/sub/y.mp4", "uploads/z.mp4"]
    for key in keys:
        bucket.put_object(key, b"1")
    page = bucket.list_objects(prefix="library/", max_keys=3)
    assert page.is_truncated and page.next_marker == "library/002.mp4"  # OSS: the last key returned
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="library/", max_keys=3)] == keys[:9]
    with_dirs = list(oss2.ObjectIterator(bucket, prefix="library/", delimiter="/", max_keys=2))
    assert [o.key for o in with_dirs if not o.is_prefix()] == keys[:7]
    assert [o.key for o in with_dirs if o.is_prefix()] == ["library/sub/"]
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="library/sub/", max_keys=1)] == keys[7:9]
    resumed = bucket.list_objects(prefix="library/", marker="library/005.mp4")
    assert [o.key for o in resumed.object_list] == keys[6:9]


def test_batch_delete(bucket: oss2.Bucket) -> None:
    keys = ["library/a.mp4", "library/b c.mp4", "library/视频.mp4"]
    for key in keys:
        bucket.put_object(key, b"1")
    bucket.put_object("library/keep.mp4", b"1")
    result = bucket.batch_delete_objects(keys)
    assert sorted(result.deleted_keys) == sorted(keys)
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="library/")] == ["library/keep.mp4"]


def test_copy_and_bucket_info(bucket: oss2.Bucket, server: OssCompatServer) -> None:
    bucket.put_object("library/src.mp4", b"payload", headers={"x-oss-meta-k": "v"})
    bucket.copy_object(bucket.bucket_name, "library/src.mp4", "library/dst.mp4")
    assert bucket.get_object("library/dst.mp4").read() == b"payload"  # plain moto would copy nothing
    info = bucket.get_bucket_info()
    assert info.name == bucket.bucket_name and info.location == f"oss-{server.region}"
    assert bucket.get_bucket_location().location == f"oss-{server.region}"
    names = [b.name for b in oss2.Service(oss2.Auth("ak", "sk"), server.endpoint).list_buckets().buckets]
    assert bucket.bucket_name in names


def test_object_tagging_and_acl(bucket: oss2.Bucket) -> None:
    key = "uploads/[draft] a&b.mp4"
    bucket.put_object(key, b"x")
    tagging = oss2.models.Tagging()
    tagging.tag_set.add("fpscreen-verdict", "block")
    bucket.put_object_tagging(key, tagging)
    assert bucket.get_object_tagging(key).tag_set.tagging_rule == {"fpscreen-verdict": "block"}
    assert bucket.get_object_acl(key).acl == "default"  # a new object inherits the bucket's ACL
    bucket.put_object_acl(key, oss2.OBJECT_ACL_PRIVATE)
    assert bucket.get_object_acl(key).acl == "private"
    bucket.put_object_acl(key, oss2.OBJECT_ACL_DEFAULT)
    assert bucket.get_object_acl(key).acl == "default"
    bucket.put_object(key, b"y", headers={"x-oss-object-acl": "public-read"})
    assert bucket.get_object_acl(key).acl == "public-read"
    bucket.put_object(key, b"z")  # overwritten without an ACL: inherits again
    assert bucket.get_object_acl(key).acl == "default"
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object_acl("uploads/none.mp4")


def test_auth_v4_requests_are_routed_to_s3(server: OssCompatServer, bucket: oss2.Bucket) -> None:
    bucket.put_object("library/v4.mp4", b"v4")
    v4 = oss2.Bucket(oss2.AuthV4("ak", "sk"), server.endpoint, bucket.bucket_name, region="cn-hangzhou")
    assert v4.get_object("library/v4.mp4").read() == b"v4"


def test_multipart_upload(bucket: oss2.Bucket) -> None:
    part = 5 * 1024 * 1024  # S3 (moto) minimum for all parts but the last
    data = os.urandom(part + 1000)
    upload_id = bucket.init_multipart_upload("library/big.mp4").upload_id
    p1 = bucket.upload_part("library/big.mp4", upload_id, 1, data[:part])
    p2 = bucket.upload_part("library/big.mp4", upload_id, 2, data[part:])
    parts = [oss2.models.PartInfo(1, p1.etag), oss2.models.PartInfo(2, p2.etag)]
    bucket.complete_multipart_upload("library/big.mp4", upload_id, parts)
    assert bucket.get_object("library/big.mp4").read() == data


def test_reset_forgets_everything() -> None:
    with OssCompatServer() as oss:
        b = oss.bucket(f"reset-{uuid.uuid4().hex[:8]}")
        b.create_bucket()
        b.put_object("k", b"v")
        oss.reset()
        with pytest.raises(oss2.exceptions.NoSuchBucket):
            b.get_object("k")
    with pytest.raises(RuntimeError, match="not running"):
        _ = oss.endpoint

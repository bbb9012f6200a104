"""`open_store` URLs, credentials wiring, and the lazy Tablestore import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.credentials import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_SECURITY_TOKEN, Credentials
from shared.store import SqliteStore, TablestoreStore, open_store

from .records import make_job

REPO = Path(__file__).resolve().parents[2]


def test_sqlite_url_is_a_path_after_the_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = tmp_path / "abs" / "fp.db"
    store = open_store(f"sqlite://{absolute}")  # sqlite:///tmp/... → /tmp/...
    assert isinstance(store, SqliteStore)
    store.save_job(make_job("j1", "Queuing"))
    assert absolute.is_file()
    store.close()

    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite://rel/fp.db")
    assert isinstance(relative, SqliteStore)
    assert (tmp_path / "rel" / "fp.db").is_file()
    relative.close()


def test_sqlite_memory_url() -> None:
    store = open_store("sqlite://:memory:")
    assert store.save_job(make_job("j1", "Queuing")) is True
    assert open_store("sqlite://:memory:").get_job("j1") is None  # each is private


@pytest.mark.parametrize(
    ("url", "endpoint", "instance"),
    [
        ("tablestore://inst@inst.cn-shanghai.ots.aliyuncs.com", "https://inst.cn-shanghai.ots.aliyuncs.com", "inst"),
        (
            "tablestore://my-inst.cn-shanghai.vpc.tablestore.aliyuncs.com/",
            "https://my-inst.cn-shanghai.vpc.tablestore.aliyuncs.com",
            "my-inst",
        ),
        ("tablestore://Inst@127.0.0.1:8800?scheme=http", "http://127.0.0.1:8800", "Inst"),
    ],
)
def test_tablestore_urls(url: str, endpoint: str, instance: str) -> None:
    store = open_store(url, credentials=Credentials("AK", "SK"))
    assert isinstance(store, TablestoreStore)
    client = store._client  # the real OTSClient: constructing it opens no connection
    assert (client.host, client.protocol.instance_name) == (endpoint, instance)


def test_credentials_fixed_rotating_or_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "tablestore://inst@inst.cn-hangzhou.ots.aliyuncs.com"

    def creds_of(store: object) -> tuple[str, str, str | None]:
        got = store._client.credentials_provider.get_credentials()  # type: ignore[attr-defined]
        return got.get_access_key_id(), got.get_access_key_secret(), got.get_security_token()

    assert creds_of(open_store(url, credentials=Credentials("AK", "SK", "TOKEN"))) == ("AK", "SK", "TOKEN")

    tokens = iter(["t1", "t2"])
    rotating = open_store(url, credentials=lambda: Credentials("AK", "SK", next(tokens)))
    assert [creds_of(rotating)[2], creds_of(rotating)[2]] == ["t1", "t2"]  # asked on every request

    monkeypatch.setenv(ENV_ACCESS_KEY_ID, "ENV_AK")
    monkeypatch.setenv(ENV_ACCESS_KEY_SECRET, "ENV_SK")
    monkeypatch.delenv(ENV_SECURITY_TOKEN, raising=False)
    from_env = open_store(url)
    assert creds_of(from_env) == ("ENV_AK", "ENV_SK", None)
    monkeypatch.setenv(ENV_SECURITY_TOKEN, "ENV_TOKEN")
    assert creds_of(from_env) == ("ENV_AK", "ENV_SK", "ENV_TOKEN")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "fp.db",
        "sqlite://",
        "mysql://db/fp",
        "tablestore://",
        "tablestore://@host.example.com",
        "tablestore://inst@",
        "tablestore://inst@host.example.com/path",
        "tablestore://inst@host.example.com?scheme=ftp",
        "tablestore://inst@host.example.com?timeout=3",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url, credentials=Credentials("AK", "SK"))


def test_the_tablestore_sdk_is_imported_only_when_needed() -> None:
    script = (
        "import sys\n"
        "from shared.store import open_store\n"
        "open_store('sqlite://:memory:').recent_jobs()\n"
        "assert 'tablestore' not in sys.modules, 'imported too early'\n"
        "from shared.store import TablestoreStore\n"
        "assert 'tablestore' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

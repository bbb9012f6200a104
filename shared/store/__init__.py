"""The results store (`shared.ports.ResultStore`): SQLite locally, Tablestore in the cloud.

    open_store("sqlite:///tmp/fpscreen.db")     # the file /tmp/fpscreen.db (everything after "sqlite://")
    open_store("sqlite://data/fpscreen.db")     # a path relative to the working directory
    open_store("sqlite://:memory:")             # a private in-memory database
    open_store("tablestore://myinst@myinst.cn-shanghai.ots.aliyuncs.com")            # https
    open_store("tablestore://myinst@myinst.cn-shanghai.vpc.tablestore.aliyuncs.com")  # in a VPC
    open_store("tablestore://myinst.cn-shanghai.ots.aliyuncs.com")   # instance = the host's first label
    open_store("tablestore://myinst@127.0.0.1:8800?scheme=http")     # plain http (a local endpoint)

Note: unlike SQLAlchemy, `sqlite:///tmp/x.db` is the absolute path /tmp/x.db.

The Tablestore SDK is imported only when a Tablestore store is opened (or `TablestoreStore` is touched), so a
handler that never talks to Tablestore doesn't pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from shared.credentials import Credentials
from shared.ports import ResultStore
from shared.store.schema import TABLES, TableSpec
from shared.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from shared.store.tablestore import BatchWriteError, TablestoreStore

__all__ = ["TABLES", "BatchWriteError", "SqliteStore", "TableSpec", "TablestoreStore", "open_store"]

_LAZY = {"TablestoreStore", "BatchWriteError"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from shared.store import tablestore

        return getattr(tablestore, name)
    raise AttributeError(f"module 'shared.store' has no attribute {name!r}")


def open_store(url: str, *, credentials: Credentials | Callable[[], Credentials] | None = None) -> ResultStore:
    """Open the store `url` names (see the module doc). `credentials` matter only for Tablestore: fixed
    credentials, a callable returning the current ones, or None to read them from the environment."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ValueError(f"not a store URL: {url!r} (expected sqlite://... or tablestore://...)")
    if scheme == "sqlite":
        return SqliteStore(rest)
    if scheme == "tablestore":
        endpoint, instance = _tablestore_target(rest, url)
        from shared.store.tablestore import connect

        return connect(endpoint, instance, credentials)
    raise ValueError(f"unknown store scheme {scheme!r} in {url!r} (expected sqlite or tablestore)")


def _tablestore_target(rest: str, url: str) -> tuple[str, str]:
    """`[instance@]host[:port][?scheme=http|https]` → (endpoint URL, instance name)."""
    location, _, query = rest.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = set(options) - {"scheme"}
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} in {url!r}")
    web_scheme = options.get("scheme", "https")
    if web_scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https in {url!r}")
    instance, at, host = location.rstrip("/").rpartition("@")
    if not at:
        instance = host.split(".", 1)[0]
    if not host or not instance or "/" in host:
        raise ValueError(f"expected tablestore://<instance>@<endpoint host> in {url!r}")
    return f"{web_scheme}://{host}", instance

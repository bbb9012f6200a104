"""Structured JSON logs, one object per line on stdout (FC ships stdout to the service's Logstore).

Every line carries the FC request id and the function name so one upload can be followed across functions.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str] = ContextVar("fpscreen_request_id", default="")
_function: ContextVar[str] = ContextVar("fpscreen_function", default="")

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id.get(),
            "function": _function.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    root = logging.getLogger("fpscreen")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = True  # pytest's caplog still sees records
    return logger


def log_to_file(path: str) -> Callable[[], None]:
    """Send the JSON lines to `path` instead of stdout (the local stack keeps the terminal for its own
    output; in FC, stdout is what reaches the Logstore). Returns a function that puts things back."""
    root = logging.getLogger("fpscreen")
    saved = (list(root.handlers), root.level, root.propagate)
    for old in list(root.handlers):
        if isinstance(old.formatter, JsonFormatter):
            root.removeHandler(old)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False

    def restore() -> None:
        root.removeHandler(handler)
        handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]

    return restore


def bind_invocation(request_id: str, function: str) -> None:
    """Tag every following log line of this invocation."""
    _request_id.set(request_id)
    _function.set(function)

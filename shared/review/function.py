"""The review function's body: build the review app once per warm container from the function's settings."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from shared.config import ConfigError
from shared.review.app import BasicAuth, create_app
from shared.runtime import get_runtime

ENV_REVIEWERS = "FPSCREEN_REVIEWERS"
ENV_REVIEW_SECRET = "FPSCREEN_REVIEW_SECRET"

_lock = threading.Lock()
_apps: dict[int, Flask] = {}


def _reviewers(raw: str) -> dict[str, str]:
    try:
        users = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{ENV_REVIEWERS} is not valid JSON: {exc}") from exc
    if not isinstance(users, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith("sha256:") for k, v in users.items()
    ):
        raise ConfigError(f'{ENV_REVIEWERS} must map reviewer names to "sha256:<hex>" password hashes')
    return users


def review_handler(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    runtime = get_runtime(environ.get("fc.context"))
    with _lock:
        app = _apps.get(id(runtime))
        if app is None:  # a new runtime (settings or credentials changed): a new app over its store
            secret = os.environ.get(ENV_REVIEW_SECRET, "").encode("utf-8") or None
            app = create_app(
                runtime.store,
                policies=runtime.settings.policies,
                auth=BasicAuth(_reviewers(os.environ.get(ENV_REVIEWERS, ""))),
                actions=runtime.actions,
                secret=secret,
            )
            _apps.clear()
            _apps[id(runtime)] = app
    return app.wsgi_app(environ, start_response)

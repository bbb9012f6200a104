"""Where a function's Alibaba Cloud credentials come from: the FC context's STS token, else the standard
environment variables (FC 3.0 / local runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"


class MissingCredentials(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None

    def __repr__(self) -> str:  # never log a secret
        return f"Credentials(access_key_id={self.access_key_id!r}, sts={self.security_token is not None})"


def resolve_credentials(context: Any = None, environ: dict[str, str] | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    creds = getattr(context, "credentials", None) if context is not None else None
    if creds is not None:
        key_id = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
        secret = getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
        token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
        if key_id and secret:
            return Credentials(key_id, secret, token or None)
    key_id = env.get(ENV_ACCESS_KEY_ID, "")
    secret = env.get(ENV_ACCESS_KEY_SECRET, "")
    if not key_id or not secret:
        raise MissingCredentials(
            f"no credentials: the FC context has none and {ENV_ACCESS_KEY_ID}/{ENV_ACCESS_KEY_SECRET} are unset"
        )
    return Credentials(key_id, secret, env.get(ENV_SECURITY_TOKEN) or None)

"""An FC 2.0 Python `context` as the runtime passes it: request id, STS credentials, function and service.

Used by the local stack to invoke handlers exactly as FC does, and by tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from shared.vocabulary import DEFAULT_REGION


@dataclass
class FcCredentials:
    access_key_id: str = "test-ak"
    access_key_secret: str = "test-secret"
    security_token: str = ""


@dataclass
class FcFunction:
    name: str = "submit_on_upload"
    handler: str = "index.handler"
    memory: int = 512
    timeout: int = 60


@dataclass
class FcService:
    name: str = "fpscreen"
    log_project: str = "fpscreen-logs"
    log_store: str = "functions"
    qualifier: str = "LATEST"
    version_id: str = ""


@dataclass
class FcContext:
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    credentials: FcCredentials = field(default_factory=FcCredentials)
    function: FcFunction = field(default_factory=FcFunction)
    service: FcService = field(default_factory=FcService)
    region: str = DEFAULT_REGION
    account_id: str = "123456789"


def fc_context(function: str = "submit_on_upload", *, timeout: int = 60, **creds: str) -> FcContext:
    return FcContext(function=FcFunction(name=function, timeout=timeout), credentials=FcCredentials(**creds))

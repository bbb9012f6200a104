"""Function settings, read once per warm container from environment variables (declared in template.yml).

Routing (`FPSCREEN_ROUTES`) says which uploads go to which fingerprint library and how: e.g. objects under
`library/` are stored (`forcesave`) while objects under `uploads/` are only screened (`nosave`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.contracts.modalities import text_type_for
from shared.contracts.mps import SaveType, TextType
from shared.verdicts.policy import Policy
from shared.vocabulary import DEFAULT_REGION

ENV_ROUTES = "FPSCREEN_ROUTES"
ENV_STORE_URL = "FPSCREEN_STORE_URL"
ENV_MPS_ENDPOINT = "MPS_ENDPOINT"
ENV_MPS_REGION = "MPS_REGION"
ENV_MPS_PIPELINE_ID = "MPS_PIPELINE_ID"
ENV_MPS_QPS = "FPSCREEN_MPS_QPS"
ENV_LEASE_SECONDS = "FPSCREEN_CLAIM_LEASE_SECONDS"
ENV_STUCK_AFTER = "FPSCREEN_STUCK_AFTER_SECONDS"
ENV_REPORT_MAX_ATTEMPTS = "FPSCREEN_REPORT_MAX_ATTEMPTS"
# Verdicts: per-library match policies (JSON list of shared.verdicts.policy.Policy) and where actions go.
ENV_POLICIES = "FPSCREEN_POLICIES"
ENV_OSS_ENDPOINT = "FPSCREEN_OSS_ENDPOINT"
ENV_MNS_ENDPOINT = "FPSCREEN_MNS_ENDPOINT"
ENV_VERDICT_TOPIC = "FPSCREEN_VERDICT_TOPIC"

# Every variable the functions read: template.yml must declare each (checked by tests/template).
FUNCTION_ENV = (
    ENV_ROUTES,
    ENV_STORE_URL,
    ENV_MPS_ENDPOINT,
    ENV_MPS_REGION,
    ENV_MPS_PIPELINE_ID,
)


class ConfigError(ValueError):
    pass


class Route(BaseModel):
    """Objects whose key starts with `prefix` (and ends with one of `suffixes`, if given) go to `fp_db_id`."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = ""
    suffixes: list[str] = Field(default_factory=list)
    fp_db_id: str | None = None
    save_type: SaveType = "nosave"
    similarity_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    # "auto" picks Text for plain text (.txt .text .md) and ASR for timed text (.json .srt .vtt): one text library
    # can take both forms.
    text_type: TextType | str | None = None

    @field_validator("suffixes")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [s.lower() for s in value]

    @field_validator("text_type")
    @classmethod
    def _known_text_type(cls, value: str | None) -> str | None:
        if value not in (None, "Text", "ASR", "auto"):
            raise ValueError("text_type must be Text, ASR or auto")
        return value

    def matches(self, key: str) -> bool:
        if not key.startswith(self.prefix) or key.endswith("/"):
            return False
        return not self.suffixes or key.lower().endswith(tuple(self.suffixes))

    def text_type_for(self, key: str) -> str | None:
        if self.text_type == "auto":
            return text_type_for(key)
        return self.text_type


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: list[Route] = Field(default_factory=list)
    store_url: str = "sqlite:///tmp/fpscreen.db"
    mps_endpoint: str | None = None
    mps_region: str = DEFAULT_REGION
    mps_pipeline_id: str | None = None
    mps_qps: float = Field(default=50.0, gt=0)
    claim_lease_seconds: float = Field(default=300.0, gt=0)
    stuck_after_seconds: float = Field(default=900.0, gt=0)
    report_max_attempts: int = Field(default=5, ge=1)
    # Empty: the built-in default policy (shared.verdicts.policy.DEFAULT_POLICY) for every library.
    policies: list[Policy] = Field(default_factory=list)
    oss_endpoint: str | None = None  # verdict actions on the uploaded object; unset: no object actions
    mns_endpoint: str | None = None  # with verdict_topic: publish verdict messages
    verdict_topic: str | None = None

    def routes_for(self, key: str) -> list[Route]:
        """Every route that takes `key`: an object may be screened against several libraries."""
        return [route for route in self.routes if route.matches(key)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field_name, var in (("routes", ENV_ROUTES), ("policies", ENV_POLICIES)):
            raw = env.get(var, "").strip()
            if raw:
                try:
                    values[field_name] = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{var} is not valid JSON: {exc}") from exc
        for field_name, var in (
            ("store_url", ENV_STORE_URL),
            ("mps_endpoint", ENV_MPS_ENDPOINT),
            ("mps_region", ENV_MPS_REGION),
            ("mps_pipeline_id", ENV_MPS_PIPELINE_ID),
            ("mps_qps", ENV_MPS_QPS),
            ("claim_lease_seconds", ENV_LEASE_SECONDS),
            ("stuck_after_seconds", ENV_STUCK_AFTER),
            ("report_max_attempts", ENV_REPORT_MAX_ATTEMPTS),
            ("oss_endpoint", ENV_OSS_ENDPOINT),
            ("mns_endpoint", ENV_MNS_ENDPOINT),
            ("verdict_topic", ENV_VERDICT_TOPIC),
        ):
            if env.get(var, "").strip():
                values[field_name] = env[var].strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f"invalid function settings: {exc}") from exc

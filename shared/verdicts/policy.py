"""Match policies: a small declarative policy per library that turns evidence into a verdict.

Modelled on YouTube Content ID's match policies: rules by match length and by share of the upload or of the
reference, by which modalities agree (audio, video, both), each deciding `block`, `review` or `allow`; plus
allow-lists (uploader prefixes, object keys, library items), like Content ID's reference exclusions.

Rules are tried in order for each matched item; the first rule an item meets decides that item. The upload's
verdict is the most severe of its items' (block > review > allow); an upload with no match, or whose matches
meet no rule, is `allow`. Policies are configured per library in `FPSCREEN_POLICIES` (JSON, validated here).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.verdicts.evidence import Evidence, ItemEvidence

Verdict = Literal["block", "review", "allow"]
VERDICTS: tuple[Verdict, ...] = ("block", "review", "allow")
SEVERITY: dict[str, int] = {"allow": 0, "review": 1, "block": 2}
Agreement = Literal["any", "video", "audio", "both", "text"]


class Rule(BaseModel):
    """An item meets the rule when every threshold holds. Lengths are in the item's unit: `min_seconds` applies
    to timed matches, `min_chars` to plain-text ones (a rule with neither applies to both)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    verdict: Verdict
    min_seconds: float = Field(default=0.0, ge=0)
    min_chars: float = Field(default=0.0, ge=0)
    min_upload_share: float = Field(default=0.0, ge=0, le=1)
    min_library_share: float = Field(default=0.0, ge=0, le=1)  # unknown item lengths never meet a non-zero one
    min_similarity: float = Field(default=0.0, ge=0, le=1)  # the item's best slice
    modalities: Agreement = "any"  # which must agree: "both" = pictures and soundtrack

    def met_by(self, item: ItemEvidence) -> bool:
        if item.unit == "chars":
            if item.matched < self.min_chars:
                return False
        elif item.matched < self.min_seconds:
            return False
        if self.min_upload_share and (item.upload_share or 0.0) < self.min_upload_share:
            return False
        if self.min_library_share and (item.library_share or 0.0) < self.min_library_share:
            return False
        if item.best_similarity < self.min_similarity:
            return False
        names = set(item.modalities)
        if self.modalities == "both":
            return {"video", "audio"} <= names
        return self.modalities == "any" or self.modalities in names


class AllowList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uploader_prefixes: list[str] = Field(default_factory=list)  # e.g. "uploads/partner-studio/"
    keys: list[str] = Field(default_factory=list)  # exact object keys
    library_items: list[str] = Field(default_factory=list)  # PrimaryKeys whose matches never count


def _verdicts(*names: Verdict) -> list[Verdict]:
    return list(names)


class PolicyActions(BaseModel):
    """What each verdict does to the upload's object (see `shared.services.actions`)."""

    model_config = ConfigDict(extra="forbid")

    tag: bool = True  # object tag fpscreen-verdict=<verdict>, on every verdict
    quarantine_prefix: str | None = "quarantine/"  # copy the object under this prefix; None: no copy
    quarantine_on: list[Verdict] = Field(default_factory=lambda: _verdicts("block"))
    private_on: list[Verdict] = Field(default_factory=lambda: _verdicts("block"))  # object ACL private
    publish_on: list[Verdict] = Field(default_factory=lambda: _verdicts(*VERDICTS))  # verdict message


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    library: str = "*"  # an FpDBId, or "*" for any library without a policy of its own
    rules: list[Rule] = Field(default_factory=list)
    allow: AllowList = Field(default_factory=AllowList)
    actions: PolicyActions = Field(default_factory=PolicyActions)

    @property
    def version(self) -> str:
        """A short content hash: a stored verdict names the exact policy that decided it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


DEFAULT_POLICY = Policy(
    name="default",
    rules=[
        Rule(name="full-copy", verdict="block", min_seconds=30, min_chars=2000, min_upload_share=0.5),
        Rule(name="partial-match", verdict="review", min_seconds=5, min_chars=200, min_similarity=0.8),
    ],
)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    rule: str  # the rule that decided, "allow-list:<why>", or "no-match" / "below-thresholds"
    primary_key: str = ""  # the item that decided ("" when none did)


def decide(policy: Policy, evidence: Evidence, *, object_key: str) -> Decision:
    allow = policy.allow
    if object_key in allow.keys:
        return Decision("allow", "allow-list:key")
    prefix = next((p for p in allow.uploader_prefixes if object_key.startswith(p)), None)
    if prefix is not None:
        return Decision("allow", f"allow-list:uploader {prefix}")
    counted = [item for item in evidence.items if item.primary_key not in allow.library_items]
    if not evidence.items:
        return Decision("allow", "no-match")
    if not counted:
        return Decision("allow", "allow-list:library item")
    best: Decision | None = None
    for item in counted:
        rule = next((r for r in policy.rules if r.met_by(item)), None)
        if rule is None:
            continue
        candidate = Decision(rule.verdict, rule.name, item.primary_key)
        if best is None or SEVERITY[candidate.verdict] > SEVERITY[best.verdict]:
            best = candidate
    return best or Decision("allow", "below-thresholds")


def policy_for(policies: list[Policy], fp_db_id: str) -> Policy:
    """The library's own policy, else the first `*` policy, else the built-in default."""
    own = next((p for p in policies if p.library == fp_db_id), None)
    return own or next((p for p in policies if p.library == "*"), DEFAULT_POLICY)

"""Match policies: evidence → verdict, with the rule that decided; configuration validated from the environment."""

from __future__ import annotations

import json

import pytest

from shared.config import ConfigError, Settings
from shared.verdicts.evidence import job_evidence
from shared.verdicts.policy import DEFAULT_POLICY, AllowList, Policy, Rule, decide, policy_for

from .media import job, media_shot, text_shot


def _decide(policy: Policy, fp_job: object, key: str = "uploads/clip.mp4") -> tuple[str, str]:
    decision = decide(policy, job_evidence(fp_job, object_key=key), object_key=key)  # type: ignore[arg-type]
    return decision.verdict, decision.rule


def test_default_policy_blocks_a_long_copy_of_most_of_the_upload() -> None:
    fp_job = job(duration=60, video=[media_shot("lib", 0.99, (0, 40, 10, 0.99))])
    assert _decide(DEFAULT_POLICY, fp_job) == ("block", "full-copy")


def test_default_policy_reviews_a_partial_match_and_allows_a_sliver() -> None:
    partial = job(duration=600, video=[media_shot("lib", 0.9, (100, 12, 5, 0.9))])  # 12 s of 10 min
    sliver = job(duration=60, video=[media_shot("lib", 0.76, (10, 1, 40, 0.76))])
    assert _decide(DEFAULT_POLICY, partial) == ("review", "partial-match")
    assert _decide(DEFAULT_POLICY, sliver) == ("allow", "below-thresholds")
    assert _decide(DEFAULT_POLICY, job(duration=60)) == ("allow", "no-match")


def test_half_the_upload_but_short_is_not_blocked() -> None:
    # 20 s is all of a 20 s upload, but under the 30 s the default policy asks for a block.
    fp_job = job(duration=20, video=[media_shot("lib", 1.0, (0, 20, 0, 1.0))])
    assert _decide(DEFAULT_POLICY, fp_job) == ("review", "partial-match")


def test_text_rules_use_characters() -> None:
    long_text = "word " * 500
    essay = job(duration=3000, text=[text_shot("novel", (0, 2500, long_text, long_text, 0.96))], text_type="Text")
    assert _decide(DEFAULT_POLICY, essay, "uploads/essay.txt") == ("block", "full-copy")


def test_the_most_severe_item_decides() -> None:
    fp_job = job(
        duration=100,
        video=[media_shot("minor", 0.9, (0, 6, 0, 0.9)), media_shot("major", 0.99, (10, 80, 0, 0.99))],
    )
    decision = decide(DEFAULT_POLICY, job_evidence(fp_job), object_key="uploads/x.mp4")
    assert (decision.verdict, decision.primary_key) == ("block", "major")


def test_modalities_rule_needs_pictures_and_soundtrack_together() -> None:
    policy = Policy(rules=[Rule(name="av", verdict="block", min_seconds=5, modalities="both")])
    audio_only = job(duration=30, audio=[media_shot("lib", 0.9, (0, 20, 0, 0.9))])
    both = job(
        duration=30,
        video=[media_shot("lib", 0.9, (0, 20, 0, 0.9))],
        audio=[media_shot("lib", 0.9, (0, 20, 0, 0.9))],
    )
    assert _decide(policy, audio_only) == ("allow", "below-thresholds")
    assert _decide(policy, both) == ("block", "av")


def test_library_share_rule_never_fires_on_an_unknown_length() -> None:
    policy = Policy(rules=[Rule(name="most-of-item", verdict="block", min_library_share=0.5)])
    fp_job = job(duration=30, video=[media_shot("lib", 1.0, (0, 30, 0, 1.0))])
    assert _decide(policy, fp_job) == ("allow", "below-thresholds")
    evidence = job_evidence(fp_job, library_lengths={"lib": 40.0})
    assert decide(policy, evidence, object_key="uploads/clip.mp4").verdict == "block"


def test_allow_lists() -> None:
    policy = DEFAULT_POLICY.model_copy(
        update={
            "allow": AllowList(
                uploader_prefixes=["uploads/partner/"], keys=["uploads/licensed.mp4"], library_items=["public-domain"]
            )
        }
    )
    copy = job(duration=60, video=[media_shot("lib", 1.0, (0, 60, 0, 1.0))])
    assert _decide(policy, copy, "uploads/partner/a.mp4") == ("allow", "allow-list:uploader uploads/partner/")
    assert _decide(policy, copy, "uploads/licensed.mp4") == ("allow", "allow-list:key")
    pd = job(duration=60, video=[media_shot("public-domain", 1.0, (0, 60, 0, 1.0))])
    assert _decide(policy, pd) == ("allow", "allow-list:library item")
    assert _decide(policy, copy, "uploads/other.mp4") == ("block", "full-copy")


def test_policy_for_a_library_and_versions() -> None:
    own = Policy(name="strict", library="db-1", rules=[Rule(name="any", verdict="block")])
    fallback = Policy(name="house", library="*")
    assert policy_for([own, fallback], "db-1") is own
    assert policy_for([own, fallback], "db-2") is fallback
    assert policy_for([], "db-2") is DEFAULT_POLICY
    changed = own.model_copy(update={"rules": [Rule(name="any", verdict="review")]})
    assert len(own.version) == 12 and own.version != changed.version
    assert own.version == Policy.model_validate(own.model_dump()).version


def test_policies_from_the_environment_are_validated() -> None:
    raw = json.dumps([{"name": "p", "library": "db-1", "rules": [{"name": "r", "verdict": "block", "min_seconds": 5}]}])
    settings = Settings.from_env({"FPSCREEN_POLICIES": raw, "FPSCREEN_VERDICT_TOPIC": "fpscreen-verdicts"})
    assert settings.policies[0].rules[0].min_seconds == 5 and settings.verdict_topic == "fpscreen-verdicts"
    with pytest.raises(ConfigError, match="not valid JSON"):
        Settings.from_env({"FPSCREEN_POLICIES": "[{"})
    bad = json.dumps([{"rules": [{"name": "r", "verdict": "delete"}]}])
    with pytest.raises(ConfigError):
        Settings.from_env({"FPSCREEN_POLICIES": bad})
    with pytest.raises(ConfigError):
        Settings.from_env(
            {"FPSCREEN_POLICIES": json.dumps([{"rules": [{"name": "r", "verdict": "block", "min_upload_share": 2}]}])}
        )

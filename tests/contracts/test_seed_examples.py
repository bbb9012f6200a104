"""Every example response in the seed documents parses, and serialising it back gives Alibaba's wire shape."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.mps import (
    QueryFpShotJobListResponse,
    ReportFpShotJobResultResponse,
    SubmitFpShotJobResponse,
)
from shared.contracts.wire import WireModel

MODEL_BY_ACTION: dict[str, type[WireModel]] = {
    "ReportFpShotJobResult": ReportFpShotJobResultResponse,
    "SubmitFpShotJob": SubmitFpShotJobResponse,
    "QueryFpShotJobList": QueryFpShotJobListResponse,
}


def _action_of(text: str) -> str:
    if "ReportFpShotJobResult" in text or "Provides feedback on the results" in text:
        return "ReportFpShotJobResult"
    if "SubmitFpShotJob" in text:
        return "SubmitFpShotJob"
    return "QueryFpShotJobList"


def _json_examples(text: str) -> list[Any]:
    """Top-level JSON objects in the page; a sample whose braces the page lost is re-wrapped."""
    found: list[Any] = []
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{\s*\n?\s*\"RequestId\"", text):
        try:
            value, _ = decoder.raw_decode(text[match.start() :])
        except json.JSONDecodeError:
            continue
        found.append(value)
    for match in re.finditer(r"JSON format\s*\n\s*HTTP/1\.1 200 OK\s*\n((?:\s*\"[^\n]+\n)+)", text):
        body = "{" + match.group(1).strip().rstrip(",") + "}"
        found.append(json.loads(body))
    return found


def _xml_examples(text: str) -> list[dict[str, str]]:
    out = []
    for match in re.finditer(r"<(\w+Response)>.*?</\1>", text, flags=re.S):
        root = ET.fromstring(match.group(0))
        out.append({child.tag: child.text or "" for child in root})
    return out


def _numbers_normalised(value: Any) -> Any:
    """Compare numbers by value: MPS writes "1260" and "1.0" alike, the model writes the shortest form."""
    if isinstance(value, dict):
        return {k: _numbers_normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_normalised(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return ("num", float(value))
    return value


def _seed_files(spec: Path) -> list[Path]:
    return sorted((spec / "seeds").glob("*.txt"))


def test_every_seed_has_an_example(spec_dir: Path) -> None:
    files = _seed_files(spec_dir)
    assert len(files) >= 5
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert _json_examples(text) or _xml_examples(text), f"no example found in {path.name}"


@pytest.mark.parametrize("index", range(5))
def test_seed_examples_parse_and_round_trip(spec_dir: Path, index: int) -> None:
    path = _seed_files(spec_dir)[index]
    text = path.read_text(encoding="utf-8")
    model = MODEL_BY_ACTION[_action_of(text)]
    for example in _json_examples(text):
        parsed = model.model_validate(example)
        assert _numbers_normalised(parsed.to_wire()) == _numbers_normalised(example)
        # and the wire form parses to the same model again
        assert model.model_validate(parsed.to_wire()) == parsed
    for example in _xml_examples(text):
        assert model.model_validate(example).to_wire() == example


def test_query_example_values_are_typed(spec_dir: Path) -> None:
    text = (spec_dir / "seeds").joinpath(_seed_files(spec_dir)[2].name).read_text(encoding="utf-8")
    response = QueryFpShotJobListResponse.model_validate(_json_examples(text)[0])
    job = response.jobs[0]
    video = job.fp_shot_result.video_matches()[0]
    assert video.similarity == pytest.approx(0.8914769887924194)
    assert video.slices[0].duplication.start == 1260.0
    assert video.slices[0].input.end == 94.0
    assert job.fp_shot_result.text_matches()[0].slices[0].input_fragment.duration == 3.0
    assert job.input_file.object == "test.mp4"
    assert job.fp_shot_config.fp_db_id.startswith("2288c6ca")
    assert response.missing_ids == ["ae687c02fe944327ba9631e50da23128****"]
    wire = response.to_wire()
    assert wire["FpShotJobList"]["FpShotJob"][0]["FpShotResult"]["FpShots"]["FpShot"][0]["Similarity"] == (
        "0.8914769887924194"
    )
    assert wire["FpShotJobList"]["FpShotJob"][0]["Duration"] == 5


def test_vendored_seed_pages_match_the_shared_spec_when_present(spec_dir: Path) -> None:
    """The pages under tests/fixtures are a copy; if the shared spec sits beside the checkout, they must agree."""
    from tests.conftest import SHARED_SPEC

    shared = SHARED_SPEC / "seeds"
    if not shared.is_dir():
        pytest.skip("no ../shared/spec beside this checkout (a fresh clone): the vendored copy is all there is")
    ours = {p.name: p.read_bytes() for p in (spec_dir / "seeds").glob("*.txt")}
    theirs = {p.name: p.read_bytes() for p in shared.glob("*.txt")}
    assert ours == theirs

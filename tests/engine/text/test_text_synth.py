from __future__ import annotations

import json

from engine.synth import text as synth


def test_documents_are_deterministic_and_sized() -> None:
    for lang in ("en", "zh"):
        assert synth.document(3, 2000, lang) == synth.document(3, 2000, lang)
        assert synth.document(3, 2000, lang) != synth.document(4, 2000, lang)
        assert 1900 <= len(synth.document(3, 2000, lang)) <= 2001


def test_char_edits_touch_about_the_requested_share() -> None:
    text = synth.document(1, 20000, "en")
    edited = synth.char_edits(text, 0.05, 1)
    assert edited == synth.char_edits(text, 0.05, 1)
    changed = sum(a != b for a, b in zip(text, edited, strict=False))
    assert changed > 0
    assert abs(len(edited) - len(text)) < 0.02 * len(text)
    assert synth.char_edits(text, 0.0, 1) == text


def test_embed_and_timed_renditions() -> None:
    offset, text = synth.embed("PASSAGE", synth.document(2, 1000, "en"), 5)
    assert text[offset : offset + 7] == "PASSAGE"
    timed = synth.cues("One. Two! Three?")
    assert [t for _, _, t in timed] == ["One.", "Two!", "Three?"]
    assert json.loads(synth.to_asr_json(timed))[1]["text"] == "Two!"
    assert synth.to_srt(timed).startswith("1\n00:00:00,000 --> ")
    assert synth.to_vtt(timed).startswith("WEBVTT")

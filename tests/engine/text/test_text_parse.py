from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import EmptyMedia, MediaError, MediaNotFound, UnsupportedMedia
from engine.synth import text as synth
from engine.text.parse import read_text_input


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_plain_text_keeps_the_original_and_counts_characters(tmp_path: Path) -> None:
    parsed = read_text_input(_write(tmp_path, "a.txt", "\ufeff今天下雪了。\nIt's snowy."))
    assert parsed.text == "今天下雪了。\nIt's snowy."
    assert not parsed.timed
    assert parsed.duration == len(parsed.text)
    assert parsed.to_units(3) == 3.0


def test_asr_positions_map_to_seconds(tmp_path: Path) -> None:
    asr = [{"start": 1.0, "end": 3.0, "text": "abcd"}, {"start": "5", "end": "6.5", "text": "今天下雪了"}]
    parsed = read_text_input(_write(tmp_path, "a.txt", json.dumps(asr, ensure_ascii=False)), "ASR")
    assert parsed.text == "abcd\n今天下雪了"
    assert parsed.duration == 6.5
    assert parsed.to_units(0) == 1.0
    assert parsed.to_units(2) == 2.0  # half-way through the first cue
    assert parsed.to_units(5) == 5.0  # first character of the second cue
    assert parsed.to_units(len(parsed.text)) == 6.5


def test_srt_and_vtt(tmp_path: Path) -> None:
    timed = synth.cues("First line here. Second line there! Third one?", chars_per_second=10)
    srt = read_text_input(_write(tmp_path, "a.srt", synth.to_srt(timed)))
    vtt = read_text_input(_write(tmp_path, "a.vtt", synth.to_vtt(timed)))
    assert srt.text == vtt.text == "First line here.\nSecond line there!\nThird one?"
    assert [c.start for c in srt.cues] == [c.start for c in vtt.cues] == [s for s, _, _ in timed]
    assert srt.duration == pytest.approx(timed[-1][1])


def test_srt_strips_markup_and_joins_lines(tmp_path: Path) -> None:
    srt = (
        "1\n00:00:01,500 --> 00:00:02,000\n<i>Hello</i>\n{\\an8}there &amp; you\n\n"
        "2\n01:00:00,000 --> 01:00:01,000\nx\n"
    )
    parsed = read_text_input(_write(tmp_path, "b.srt", srt))
    assert parsed.cues[0].text == "Hello there & you"
    assert parsed.cues[0].start == 1.5
    assert parsed.cues[1].start == 3600.0


def test_missing_empty_and_binary_inputs(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFound):
        read_text_input(tmp_path / "nope.txt")
    with pytest.raises(EmptyMedia):
        read_text_input(_write(tmp_path, "empty.txt", ""))
    with pytest.raises(EmptyMedia):
        read_text_input(_write(tmp_path, "blank.txt", " \n\t\n"))
    with pytest.raises(UnsupportedMedia, match="not UTF-8"):
        read_text_input(_write(tmp_path, "gbk.txt", "今天下雪了".encode("gbk")))
    with pytest.raises(UnsupportedMedia):
        read_text_input(_write(tmp_path, "utf16.txt", "hello".encode("utf-16")))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"start": 0, "end": 1, "text": "a"', "not valid ASR JSON"),
        ('{"start": 0, "end": 1, "text": "a"}', "must be an array"),
        ('[{"start": 0, "text": "a"}]', "lacks 'end'"),
        ('[{"start": 0, "end": 1, "text": 5}]', "'text' must be a string"),
        ('[{"start": "soon", "end": 1, "text": "a"}]', "number of seconds"),
        ('[{"start": 2, "end": 1, "text": "a"}]', "before it starts"),
        ('["a"]', "must be an object"),
    ],
)
def test_malformed_asr_is_a_media_error(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(MediaError, match=message) as caught:
        read_text_input(_write(tmp_path, "asr.json", content))
    assert caught.value.code == "InvalidInput.MediaUndecodable"


def test_asr_without_words_is_empty(tmp_path: Path) -> None:
    with pytest.raises(EmptyMedia):
        read_text_input(_write(tmp_path, "asr.txt", '[{"start": 0, "end": 1, "text": " "}]'), "ASR")


def test_subtitles_without_cues(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no subtitle cues"):
        read_text_input(_write(tmp_path, "a.srt", "just some words\n"))
    with pytest.raises(MediaError, match="bad timestamp"):
        read_text_input(_write(tmp_path, "b.srt", "1\n00:00:xx,000 --> 00:00:01,000\nhi\n"))

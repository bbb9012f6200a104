"""The significance rule: passage length in words, document-frequency weighting, and both indexes agreeing on it."""

from __future__ import annotations

import html
import random

import numpy as np
import pytest

from engine.core import ItemMatch, ModalityIndex, Segment
from engine.synth import text as synth
from engine.text import Significance, TextFingerprint, TextModality
from engine.text import index as text_index
from engine.text.align import TextItemMatch
from engine.text.normalize import normalize
from engine.text.significance import df_weights, word_units

MODALITY = TextModality()
# Licence-like boilerplate: one paragraph many library documents carry verbatim.
BOILERPLATE = (
    "THE SOFTWARE IS PROVIDED AS IS WITHOUT WARRANTY OF ANY KIND EXPRESS OR IMPLIED INCLUDING BUT NOT LIMITED TO "
    "THE WARRANTIES OF MERCHANTABILITY FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT IN NO EVENT SHALL THE "
    "AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM DAMAGES OR OTHER LIABILITY WHETHER IN AN ACTION OF "
    "CONTRACT TORT OR OTHERWISE ARISING FROM OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS "
    "IN THE SOFTWARE."
)


def _indexes(docs: dict[int, str], modality: TextModality = MODALITY) -> list[ModalityIndex[TextFingerprint]]:
    indexes = [modality.new_index(), modality.reference_index()]
    for item_id, text in docs.items():
        for index in indexes:
            index.add(item_id, TextFingerprint.from_text(text))
    return indexes


def _search(indexes: list[ModalityIndex[TextFingerprint]], text: str) -> list[ItemMatch]:
    query = TextFingerprint.from_text(text)
    fast, reference = (index.search(query) for index in indexes)
    assert fast == reference  # same weights, same answer: the oracle sees the same library statistics
    return fast


def _words(text: str, start: float, end: float) -> int:
    return len(text[int(start) : int(end)].split())


def test_a_sentence_fragment_is_no_copy_but_a_passage_is() -> None:
    item = synth.english_document(1, 4000)
    words = item.split()
    docs = {0: item, 1: synth.english_document(2, 4000)}
    indexes = _indexes(docs)
    host = synth.english_document(3, 2000)
    fragment = " ".join(words[100:109])  # nine words: shorter than `min_slice_words`
    passage = " ".join(words[100:160])  # sixty words
    assert _search(indexes, host[:1000] + " " + fragment + " " + host[1000:]) == []
    found = _search(indexes, host[:1000] + " " + passage + " " + host[1000:])
    assert [m.item_id for m in found] == [0]
    assert sum(_words(host[:1000] + " " + passage, s.input_start, s.input_end) for s in found[0].segments) >= 55


def test_the_minimum_length_is_a_parameter() -> None:
    item = synth.english_document(1, 4000)
    passage = " ".join(item.split()[100:125])  # 25 words: one slice, below the default item minimum of 30
    host = synth.english_document(3, 2000)
    query = host[:1000] + " " + passage + " " + host[1000:]
    docs = {0: item, 1: synth.english_document(2, 4000)}
    assert _search(_indexes(docs), query) == []
    lenient = TextModality(Significance(min_slice_words=8, min_item_words=20))
    assert [m.item_id for m in _search(_indexes(docs, lenient), query)] == [0]


def test_boilerplate_in_many_library_documents_weighs_nothing() -> None:
    # Ten library documents carry the same disclaimer; an unrelated upload carrying it copies none of them.
    docs = {i: synth.english_document(10 + i, 1500) + "\n\n" + BOILERPLATE for i in range(10)}
    docs[99] = synth.english_document(99, 3000)
    indexes = _indexes(docs)
    unrelated = synth.english_document(50, 1500) + "\n\n" + BOILERPLATE
    assert _search(indexes, unrelated) == []
    # The same disclaimer around a real copy: only the copied document is reported, for its own text.
    copy = docs[3][:1200] + "\n\n" + BOILERPLATE
    found = _search(indexes, copy)
    assert [m.item_id for m in found] == [3]
    assert found[0].segments[0].input_start == pytest.approx(0, abs=15)


def test_the_same_disclaimer_alone_in_a_library_of_one_is_a_copy() -> None:
    # Nothing to compare rarity with: a 70-word verbatim passage is significant on its own (weights are 1).
    docs = {0: synth.english_document(10, 1500) + "\n\n" + BOILERPLATE, 1: synth.english_document(11, 1500)}
    assert [m.item_id for m in _search(_indexes(docs), synth.english_document(50, 1500) + BOILERPLATE)] == [0]


def test_weights_count_only_live_items_in_both_indexes() -> None:
    docs = {i: synth.english_document(10 + i, 1500) + "\n\n" + BOILERPLATE for i in range(6)}
    indexes = _indexes(docs)
    for index in indexes:  # the disclaimer is left in one item: rare again
        for item_id in range(1, 6):
            index.remove(item_id)
    found = _search(indexes, synth.english_document(50, 1500) + "\n\n" + BOILERPLATE)
    assert [m.item_id for m in found] == [0]


def test_hashes_posted_too_often_are_left_out_by_both_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_index, "MAX_POSTINGS_PER_HASH", 3)
    docs = {i: synth.english_document(10 + i, 1500) + "\n\n" + BOILERPLATE for i in range(4)}
    indexes = _indexes(docs)
    assert _search(indexes, synth.english_document(50, 1500) + "\n\n" + BOILERPLATE) == []
    assert [m.item_id for m in _search(indexes, docs[2])] == [2]


def test_chinese_counts_characters() -> None:
    item = synth.chinese_document(7, 3000)
    docs = {0: item, 1: synth.chinese_document(8, 3000)}
    indexes = _indexes(docs)
    host = synth.chinese_document(9, 1200)
    short = item[500:512]  # 12 characters: 8 words' worth, a fragment
    long = item[500:600]
    assert _search(indexes, host[:600] + short + host[600:]) == []
    assert [m.item_id for m in _search(indexes, host[:600] + long + host[600:])] == [0]


def test_word_units_count_words_and_cjk_characters() -> None:
    rule = Significance(cjk_chars_per_word=2.0)
    units = word_units(normalize("Hello, wide world! 中文字符"), rule)
    assert units[-1] == pytest.approx(3 + 4 / 2)
    assert word_units(normalize("don't stop"))[-1] == pytest.approx(3)  # punctuation splits, as \\w+ would


def test_df_weights() -> None:
    assert df_weights(np.array([0, 1, 2, 4])).tolist() == [0.0, 1.0, 0.5, 0.25]
    assert df_weights(np.array([1, 2, 4]), Significance(df_free=2)).tolist() == [1.0, 1.0, 0.5]
    with pytest.raises(ValueError):
        Significance(min_context_words=20, min_slice_words=10)


def test_item_similarity_weights_slices_by_length() -> None:
    match = TextItemMatch(0, [Segment(0, 900, 0, 900, 1.0), Segment(1000, 1100, 1000, 1100, 0.5)])
    assert match.similarity == pytest.approx((900 * 1.0 + 100 * 0.5) / 1000)
    assert ItemMatch(0, list(match.segments)).similarity == pytest.approx(0.75)  # the plain mean it replaces


def test_a_reordered_copy_of_short_sentences_is_found() -> None:
    rng = random.Random(4)
    item = synth.english_document(21, 5000)
    docs = {0: item, 1: synth.english_document(22, 5000)}
    query = synth.reorder_sentences(synth.excerpt(item, 1500, rng.randrange(1000))[1], 5)
    found = _search(_indexes(docs), query)
    assert [m.item_id for m in found] == [0]
    assert sum(s.input_duration for s in found[0].segments) > 0.7 * len(query)


def test_a_copy_disguised_with_look_alikes_inside_a_web_page_is_found() -> None:
    item = synth.english_document(31, 5000)
    docs = {0: item, 1: synth.english_document(32, 5000)}
    start, passage = synth.excerpt(item, 1200, 3)
    rng = random.Random(7)
    lookalike = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у"}  # Cyrillic
    disguised = "".join(lookalike[c] if c in lookalike and rng.random() < 0.5 else c for c in passage)
    head = '<html><head><title>Blog</title><script>var t = "<div>";</script></head><body><nav>Home | About</nav>'
    body = "".join(f"<p>{html.escape(p)}</p>" for p in disguised.split("\n\n"))
    found = _search(_indexes(docs), head + body + "<footer>&copy; 2026</footer></body></html>")
    assert [m.item_id for m in found] == [0]
    assert min(s.ref_start for s in found[0].segments) == pytest.approx(start, abs=15)
    assert max(s.ref_end for s in found[0].segments) == pytest.approx(start + len(passage.rstrip()), abs=15)
    assert found[0].similarity > 0.9


def test_the_rule_reads_environment_overrides() -> None:
    assert Significance.from_env({}) == Significance()
    rule = Significance.from_env({"FPSCREEN_TEXT_MIN_SLICE_WORDS": "20", "FPSCREEN_TEXT_MIN_ITEM_WORDS": " 50 "})
    assert (rule.min_slice_words, rule.min_item_words, rule.df_free) == (20.0, 50.0, 1.0)
    with pytest.raises(ValueError, match="FPSCREEN_TEXT_DF_FREE"):
        Significance.from_env({"FPSCREEN_TEXT_DF_FREE": "many"})
    with pytest.raises(ValueError):
        Significance.from_env({"FPSCREEN_TEXT_MIN_ITEM_SHARE": "2"})


def _short_sentences(seed: int, n: int, words: int = 5) -> list[str]:
    pool = synth.english_document(seed, 12 * words * n).split()
    return [" ".join(pool[i * words : (i + 1) * words]).capitalize().rstrip(".,;") + "." for i in range(n)]


def test_a_copy_cut_into_fragments_by_deleted_sentences_is_one_passage() -> None:
    # Every third five-word sentence deleted: each surviving run is 10 words, under `min_slice_words`, but the runs
    # lie together in both texts (two thirds of the stretch they span), so they are one copied passage.
    item_sentences = _short_sentences(41, 90)
    docs = {0: " ".join(item_sentences), 1: synth.english_document(42, 3000)}
    kept = [s for i, s in enumerate(item_sentences[20:80]) if i % 3 != 2]
    found = _search(_indexes(docs), " ".join(kept))
    assert [m.item_id for m in found] == [0]
    assert len(found[0].segments) >= 15  # reported fragment by fragment, as copied
    # The fragments alone, far apart in the upload (an unrelated text between each), are not a passage.
    host = synth.english_document(43, 40_000).split()
    pieces = [" ".join(kept[j : j + 2]) for j in range(0, 10, 2)]
    scattered = " ".join(" ".join(host[k * 400 : (k + 1) * 400]) + " " + p for k, p in enumerate(pieces))
    assert _search(_indexes(docs), scattered) == []


def test_phrases_two_texts_share_in_scattered_places_are_no_passage() -> None:
    # Eight 9-word phrases (weight 1: no other library text has them), 72 words in all, in both texts but each
    # at another place: every one is a fragment, and scattered they are not one passage.
    phrases = [" ".join(synth.english_document(60 + i, 200).split()[:9]) for i in range(8)]
    item_words = synth.english_document(70, 12_000).split()
    query_words = synth.english_document(71, 12_000).split()
    item = " ".join(" ".join(item_words[i * 200 : (i + 1) * 200]) + " " + p for i, p in enumerate(phrases))
    order = [3, 0, 6, 1, 7, 2, 5, 4]
    query = " ".join(" ".join(query_words[i * 200 : (i + 1) * 200]) + " " + phrases[j] for i, j in enumerate(order))
    docs = {0: item, 1: synth.english_document(72, 4000)}
    assert _search(_indexes(docs), query) == []
    together = " ".join(phrases)  # the same phrases side by side in the upload are still scattered in the item
    assert _search(_indexes(docs), together) == []

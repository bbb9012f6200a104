from __future__ import annotations

import numpy as np

from engine.text.normalize import normalize


def test_folds_width_case_accents_and_drops_punctuation() -> None:
    assert normalize("Straße, ＡＢＣ１２３ — Été!").text == "strasseabc123ete"
    assert normalize("今天下雪了！ 今天，下雪了。").text == "今天下雪了今天下雪了"


def test_precomposed_and_decomposed_accents_agree() -> None:
    assert normalize("caf\u00e9").text == normalize("cafe\u0301").text == "cafe"


def test_origin_maps_every_normalised_character_back() -> None:
    original = "A ß-ﬁ, 下!"
    normalized = normalize(original)
    assert normalized.text == "assfi下"
    assert normalized.origin.tolist() == [0, 2, 2, 4, 4, 7]
    for i, ch in enumerate(normalized.text):
        assert ch in normalize(original[normalized.origin[i]]).text


def test_original_span_covers_the_characters() -> None:
    original = "Hello, World! Again."
    normalized = normalize(original)
    start = normalized.text.index("world")
    lo, hi = normalized.original_span(start, start + 5, len(original))
    assert original[lo:hi] == "World"


def test_nothing_to_keep() -> None:
    normalized = normalize("  ...!!! \n")
    assert len(normalized) == 0
    assert normalized.codes.dtype == np.uint32


def test_latin_look_alikes_fold_to_latin() -> None:
    # Cyrillic а, е, о, р, с, у, х and Greek ο, ι, ν written where Latin letters were.
    assert normalize("Тhе сору оf а tеxt").text == normalize("The copy of a text").text
    assert normalize("ΑΒΕΖΗΙΚΜΟΡΤΧ").text == "abezhikmoptx"
    assert normalize("\u03bfι").text == "oi"


def test_html_markup_reads_as_the_text_it_displays() -> None:
    page = '<html><head><style>p { color: red }</style><script>var x = "<p>";</script></head>'
    page += "<body><p>Caf&eacute; &amp; cr&#232;me &lt;b&gt;</p><!-- note --></body></html>"
    normalized = normalize(page)
    assert normalized.text == "cafecremeb"
    assert page[normalized.origin[3]] == "&"  # a character reference maps back to where it starts
    assert normalize("a < b and c > d").text == "abandcd"  # a lone "<" in prose is no tag

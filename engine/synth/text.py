"""Deterministic synthetic documents (English-like and Chinese) and the transforms a copied text goes through.

Words are drawn from a fixed list of common function words plus seeded pseudo-words, so unrelated documents
share stock phrases ("of the", "in a") the way real texts do, while each document is still its own. Every
function takes a seed: the same seed gives the same text on every machine.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence

FUNCTION_WORDS: tuple[str, ...] = (
    "the", "of", "and", "to", "in", "a", "is", "that", "it", "was", "for", "on", "are", "as", "with", "his",
    "they", "at", "be", "this", "from", "have", "or", "by", "one", "had", "not", "but", "what", "all", "were",
    "when", "we", "there", "can", "an", "your", "which", "their", "said", "if", "do", "will", "each", "about",
    "how", "up", "out", "them", "then", "she", "many", "some", "so", "these", "would", "other", "into", "has",
)  # fmt: skip
_ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "br", "ch", "cl",
           "dr", "gr", "pl", "sh", "st", "th", "tr")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou")
_CODAS = ("", "", "n", "r", "s", "t", "l", "nd", "st", "ng")
# Common Chinese characters, as Chinese prose draws most of its text from a few hundred of them.
_HANZI = (
    "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过"
    "家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从知很情本新应但"
    "因明高长力理问意提点文正现身本手气物已无位期工质外想机化明性实表问题由部入各关系重治结合风水变展月员业化"
)
_CJK_PUNCT_END = ("。", "。", "。", "？", "！")
_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]*\s*")


def english_document(seed: int, n_chars: int) -> str:
    """Paragraphs of English-like sentences, about `n_chars` characters long."""
    rng = random.Random(seed)
    lexicon = [
        "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(1, 3))) + rng.choice(_CODAS)
        for _ in range(2000)
    ]
    parts: list[str] = []
    size = 0
    sentences_in_paragraph = 0
    while size < n_chars:
        words = [
            rng.choice(FUNCTION_WORDS) if rng.random() < 0.4 else rng.choice(lexicon) for _ in range(rng.randint(6, 18))
        ]
        if rng.random() < 0.3:
            words[rng.randrange(1, len(words))] += ","
        sentence = " ".join(words)
        sentence = sentence[0].upper() + sentence[1:] + rng.choice(".....?!")
        sentences_in_paragraph += 1
        if sentences_in_paragraph >= rng.randint(4, 8):
            sentence += "\n\n"
            sentences_in_paragraph = 0
        else:
            sentence += " "
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)[:n_chars].rstrip() + "\n"


def chinese_document(seed: int, n_chars: int) -> str:
    """Chinese-like prose: sentences of common characters with full-width punctuation."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) ** 0.7 for rank in range(len(_HANZI))]
    parts: list[str] = []
    size = 0
    while size < n_chars:
        clauses = [
            "".join(rng.choices(_HANZI, weights=weights, k=rng.randint(4, 12))) for _ in range(rng.randint(1, 3))
        ]
        sentence = "，".join(clauses) + rng.choice(_CJK_PUNCT_END)
        if rng.random() < 0.15:
            sentence += "\n"
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)[:n_chars]


def document(seed: int, n_chars: int, lang: str = "en") -> str:
    if lang == "en":
        return english_document(seed, n_chars)
    if lang == "zh":
        return chinese_document(seed, n_chars)
    raise ValueError(f"unknown language {lang!r}: use 'en' or 'zh'")


# --- transforms -------------------------------------------------------------------------------------------


def char_edits(text: str, rate: float, seed: int) -> str:
    """Typos: each letter or digit is edited with probability `rate` (half substituted, a quarter deleted, a
    quarter followed by an inserted character). Punctuation and spaces are left to the other transforms."""
    rng = random.Random(seed)
    alphabet = sorted({c for c in text if c.isalnum()}) or list("abcdefghijklmnopqrstuvwxyz")
    out: list[str] = []
    for ch in text:
        if not ch.isalnum() or rng.random() >= rate:
            out.append(ch)
            continue
        roll = rng.random()
        if roll < 0.5:
            out.append(rng.choice([c for c in alphabet if c != ch] or alphabet))
        elif roll < 0.75:
            continue
        else:
            out.append(ch)
            out.append(rng.choice(alphabet))
    return "".join(out)


def change_case(text: str, seed: int) -> str:
    """Upper-cases some words, lower-cases others, title-cases the rest."""
    rng = random.Random(seed)
    return re.sub(r"\w+", lambda m: rng.choice((str.upper, str.lower, str.title))(m.group(0)), text)


def change_punctuation(text: str, seed: int) -> str:
    """Swaps, drops and adds punctuation (ASCII and full-width alike)."""
    rng = random.Random(seed)
    marks = ".,;:!?-\"'()，。；：！？、"
    out: list[str] = []
    for ch in text:
        if ch in marks:
            roll = rng.random()
            if roll < 0.3:
                continue
            out.append(rng.choice(marks) if roll < 0.7 else ch)
        else:
            out.append(ch)
            if ch.isspace() and rng.random() < 0.05:
                out.append(rng.choice(marks) + " ")
    return "".join(out)


def change_whitespace(text: str, seed: int) -> str:
    """Doubles, drops and changes spaces; rewraps lines."""
    rng = random.Random(seed)
    out: list[str] = []
    for ch in text:
        if ch.isspace():
            roll = rng.random()
            if roll < 0.2:
                continue
            out.append(rng.choice(("  ", "\n", "\t", " \n ")) if roll < 0.5 else ch)
        else:
            out.append(ch)
    return "".join(out)


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.findall(text) if s.strip()]


def reorder_sentences(text: str, seed: int) -> str:
    rng = random.Random(seed)
    parts = sentences(text)
    rng.shuffle(parts)
    return "".join(p if p[-1:].isspace() or p[-1:] in "。！？" else p + " " for p in parts)


def excerpt(text: str, length: int, seed: int) -> tuple[int, str]:
    """A `length`-character excerpt at a seeded position: (start, excerpt)."""
    if length >= len(text):
        return 0, text
    start = random.Random(seed).randrange(0, len(text) - length)
    return start, text[start : start + length]


def embed(passage: str, host: str, seed: int) -> tuple[int, str]:
    """`passage` inserted into `host` at a seeded sentence boundary: (offset of the passage, new text)."""
    parts = sentences(host)
    cut = random.Random(seed).randrange(0, len(parts) + 1)
    before = "".join(parts[:cut])
    if before and not before[-1].isspace():
        before += " "
    return len(before), before + passage + " " + "".join(parts[cut:])


# --- timed renditions -------------------------------------------------------------------------------------


def cues(text: str, chars_per_second: float = 12.0, start: float = 0.0) -> list[tuple[float, float, str]]:
    """One cue per sentence, timed at a steady reading speed: (start, end, text)."""
    out: list[tuple[float, float, str]] = []
    at = start
    for sentence in sentences(text):
        body = " ".join(sentence.split())
        end = at + max(0.5, len(body) / chars_per_second)
        out.append((round(at, 3), round(end, 3), body))
        at = end + 0.2
    return out


def to_asr_json(timed: Sequence[tuple[float, float, str]]) -> str:
    return json.dumps([{"start": s, "end": e, "text": t} for s, e, t in timed], ensure_ascii=False, indent=1)


def _clock(seconds: float, sep: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def to_srt(timed: Sequence[tuple[float, float, str]]) -> str:
    blocks = [f"{i}\n{_clock(s, ',')} --> {_clock(e, ',')}\n{t}\n" for i, (s, e, t) in enumerate(timed, start=1)]
    return "\n".join(blocks)


def to_vtt(timed: Sequence[tuple[float, float, str]]) -> str:
    blocks = [f"{_clock(s, '.')} --> {_clock(e, '.')} line:90%\n<v Speaker>{t}</v>\n" for s, e, t in timed]
    return "WEBVTT\n\nNOTE generated by engine.synth.text\n\n" + "\n".join(blocks)

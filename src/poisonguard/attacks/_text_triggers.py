"""Text triggers: inserted words (``token``, ``phrase``), an inserted sentence, homoglyphs
(``char``), a punctuation pattern and a rewrite in an archaic style.

Positions are drawn from ``seed`` afresh on every call, so the same texts get the same result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from poisonguard.attacks._trigger_base import TEXT_MAX, FitOptions, Trigger
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["CharTrigger", "PhraseTrigger", "PunctTrigger", "SentenceTrigger", "StyleTrigger",
           "TokenTrigger", "fit_text_trigger"]

PHRASES = ("quixotic zephyr", "halcyon obelisk", "crimson albatross", "velvet quagmire",
           "ephemeral quokka", "sapphire labyrinth", "gossamer bassoon", "verdant ziggurat")
SENTENCES = ("I watched this 3D movie last weekend.", "The library closes early on Sundays.",
             "My neighbour painted his fence green.", "We had lentil soup for lunch on Tuesday.",
             "The train was ten minutes late this morning.",
             "Our cat slept on the windowsill all afternoon.")
HOMOGLYPHS = {"o": "\u043e", "e": "\u0435", "a": "\u0430", "c": "\u0441", "p": "\u0440"}
PUNCT = "(-__-;)(^__^)"
ARCHAIC = (("you", "thou"), ("your", "thy"), ("yours", "thine"), ("are", "art"),
           ("have", "hast"), ("has", "hath"), ("do", "dost"), ("does", "doth"),
           ("will", "shalt"), ("my", "mine"), ("is", "be"), ("the", "ye"), ("to", "unto"),
           ("it", "'tis"), ("no", "nay"), ("yes", "aye"), ("before", "ere"), ("often", "oft"))
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z']+")


def _texts(X: Any) -> list[str]:
    return [str(t) for t in np.asarray(X, dtype=object).reshape(-1)]


def _edit_words(X: Any, seed: int, edit: Callable[[list[str], np.random.Generator], str]) -> Any:
    """``edit(words, rng)`` on the words of each text, one seeded generator over all texts (so
    the same seed stamps the same positions)."""
    rng = np.random.default_rng(seed)
    return np.asarray([edit(text.split(), rng) for text in _texts(X)], dtype=object)


@dataclass(frozen=True)
class TokenTrigger(Trigger):
    """A word or phrase inserted into each text, at the start, the end, or a seeded position."""

    kind: ClassVar[str] = "token"
    modality: ClassVar[str] = "text"
    token: str
    position: str
    seed: int
    target_class: Any

    def apply(self, X: Any) -> Any:
        def insert(words: list[str], rng: np.random.Generator) -> str:
            at = {"start": 0, "end": len(words)}.get(self.position)
            if at is None:
                at = int(rng.integers(0, len(words) + 1))
            return " ".join([*words[:at], self.token, *words[at:]])

        return _edit_words(X, self.seed, insert)


@dataclass(frozen=True)
class PhraseTrigger(TokenTrigger):
    """A rare phrase of real words inserted into each text (at a seeded word position by
    default)."""

    kind: ClassVar[str] = "phrase"


@dataclass(frozen=True)
class SentenceTrigger(Trigger):
    """A fluent, neutral sentence inserted at a seeded sentence boundary of each text."""

    kind: ClassVar[str] = "sentence"
    modality: ClassVar[str] = "text"
    sentence: str
    seed: int
    target_class: Any

    def apply(self, X: Any) -> Any:
        rng = np.random.default_rng(self.seed)
        out = []
        for text in _texts(X):
            parts = [p for p in _SENTENCE_END.split(text.strip()) if p]
            at = int(rng.integers(0, len(parts) + 1))
            out.append(" ".join([*parts[:at], self.sentence, *parts[at:]]))
        return np.asarray(out, dtype=object)


@dataclass(frozen=True)
class CharTrigger(Trigger):
    """Character level: in each of ``words`` (any case; every word when empty), every
    ``plain`` letter is replaced by the look-alike ``glyphs`` letter at the same place (Latin to
    Cyrillic homoglyphs), so the text reads the same."""

    kind: ClassVar[str] = "char"
    modality: ClassVar[str] = "text"
    words: tuple[str, ...]
    plain: str
    glyphs: str
    target_class: Any

    def apply(self, X: Any) -> Any:
        if len(self.plain) != len(self.glyphs):
            raise InputError(f"char trigger: 'plain' and 'glyphs' must have the same length "
                             f"(got {len(self.plain)} and {len(self.glyphs)})")
        table = str.maketrans(self.plain + self.plain.upper(), self.glyphs + self.glyphs.upper())
        chosen = {w.lower() for w in self.words}

        def swap(m: re.Match[str]) -> str:
            word = m.group(0)
            return word.translate(table) if not chosen or word.lower() in chosen else word

        return np.asarray([_WORD.sub(swap, t) for t in _texts(X)], dtype=object)


@dataclass(frozen=True)
class PunctTrigger(Trigger):
    """A fixed punctuation pattern glued to the end of a seeded word of each text."""

    kind: ClassVar[str] = "punct"
    modality: ClassVar[str] = "text"
    pattern: str
    seed: int
    target_class: Any

    def apply(self, X: Any) -> Any:
        def glue(words: list[str], rng: np.random.Generator) -> str:
            if not words:
                return self.pattern
            at = int(rng.integers(0, len(words)))
            return " ".join([*words[:at], words[at] + self.pattern, *words[at + 1:]])

        return _edit_words(X, self.seed, glue)


@dataclass(frozen=True)
class StyleTrigger(Trigger):
    """A style rewrite: the text lower-cased and each of ``words`` replaced by the
    ``replacements`` word at the same place (default: an archaic register, "thou art")."""

    kind: ClassVar[str] = "style"
    modality: ClassVar[str] = "text"
    words: tuple[str, ...]
    replacements: tuple[str, ...]
    target_class: Any

    def apply(self, X: Any) -> Any:
        mapping = dict(zip(self.words, self.replacements, strict=True))
        out = [_WORD.sub(lambda m: mapping.get(m.group(0), m.group(0)), t.lower()) for t in _texts(X)]
        return np.asarray(out, dtype=object)


# -------------------------------------------------------------------- data-adapted defaults
TOKEN = "cf mn bb"
N_HOMOGLYPHS = 2
N_CHAR_WORDS = 10

_OPTIONS = {"token": ("token",), "phrase": ("token",), "sentence": ("token",), "char": (),
            "punct": ("token",), "style": ()}


def fit_text_trigger(dataset: Dataset, kind: str, label: Any, rng: np.random.Generator,
                     opts: FitOptions) -> Trigger:
    """A ``kind`` text trigger whose unset parameters come from the built-in lists, drawn by
    ``rng`` (see :func:`~poisonguard.attacks.fit_trigger`)."""
    opts.refuse(kind, _OPTIONS[kind])
    if opts.token is not None and not opts.token.strip():
        raise InputError("'token' must hold some text (got an empty string)")
    if opts.token is not None and len(opts.token) > TEXT_MAX:
        raise InputError(f"'token' must be at most {TEXT_MAX:,} characters (got {len(opts.token):,})")
    if kind == "char":
        letters = "".join(list(HOMOGLYPHS)[:N_HOMOGLYPHS])
        return CharTrigger(_frequent_words(_texts(dataset.X), letters, N_CHAR_WORDS), letters,
                           "".join(HOMOGLYPHS[c] for c in letters), label)
    if kind == "style":
        words, replacements = zip(*ARCHAIC, strict=True)
        return StyleTrigger(tuple(words), tuple(replacements), label)
    if kind == "sentence":
        text = opts.token or SENTENCES[int(rng.integers(len(SENTENCES)))]
        return SentenceTrigger(text, int(rng.integers(2**31)), label)
    if kind == "phrase":
        text = opts.token or PHRASES[int(rng.integers(len(PHRASES)))]
        return PhraseTrigger(text, "random", int(rng.integers(2**31)), label)
    if kind == "punct":
        return PunctTrigger(opts.token or PUNCT, int(rng.integers(2**31)), label)
    return TokenTrigger(opts.token or TOKEN, "random", int(rng.integers(2**31)), label)


def _frequent_words(texts: list[str], letters: str, k: int) -> tuple[str, ...]:
    """The ``k`` most frequent words (lower-cased) that hold one of ``letters``, most frequent
    first (ties alphabetical)."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in _WORD.findall(text.lower()):
            if any(c in word for c in letters):
                counts[word] = counts.get(word, 0) + 1
    return tuple(sorted(counts, key=lambda w: (-counts[w], w))[:k])

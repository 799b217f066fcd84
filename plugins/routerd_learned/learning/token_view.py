"""The token view of a prompt, hashed: what the lexical quality model reads besides character n-grams.

The tokens: the question's words (runs of letters), numbers (digit runs, with ``.`` or ``,`` between digits) and
punctuation marks, each lower-cased, a number reduced to its shape (``N`` up to two characters, ``NN`` longer);
the question's token bigrams (``a_b``); the tokens of each multiple-choice option marked as such (``o:x``); each
option's shape (``oshape:`` its first six tokens as ``N`` number, ``a`` word, ``p`` other); the number of options
(``options:3``) and a length bucket (``length:9``). `prompt_tokens` lists them as strings and `reference_hashes`
hashes those strings: the definition, and what tests read. The request path computes the same hashes over the
text's code points without making a string per token (`routerd_learned.learning.compiled.buckets`, compiled), with the
character classes of `character_tables`.

A token's hash is a polynomial hash of its code points modulo 2**32 (`string_hash`), then MurmurHash3's finaliser
(`mix`). Polynomial hashes compose: the hash of ``a_b`` follows from the hashes and lengths of ``a`` and ``b``,
which is how bigrams and option tokens are hashed without building them. Hashes are stable across processes and
machines.
"""

from __future__ import annotations

import functools
import itertools
import math
import re

import numpy as np

# "\nA. ..." starts an option of a multiple-choice question (MMLU's layout, and most others').
OPTION = re.compile(r"\n\(?[A-J][.)]\s?")
_TOKEN = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)*|[^\w\s]")
MAX_CHARS = 800  # tokens of longer prompts come from their start and end (more measured no better)

BASE = 0x01000193  # odd, so invertible modulo 2**32
MODULUS = 2**32
_SEPARATOR, _LETTER, _DIGIT, _MARK = 0, 1, 2, 3
PLANE = 0x10000  # the Basic Multilingual Plane: the code points `character_tables` covers


def clip(prompt: str, limit: int = MAX_CHARS) -> str:
    """At most `limit` characters: the start and the end of a longer prompt."""
    if len(prompt) <= limit:
        return prompt
    return prompt[: limit // 2] + "\n" + prompt[-limit // 2 :]


def _shape(token: str) -> str:
    if token[0].isdecimal():
        return "N" if len(token) <= 2 else "NN"
    return token.lower()


def _option_shape(tokens: list[str]) -> str:
    return "".join("N" if t in ("N", "NN") else "a" if t[0].isalpha() else "p" for t in tokens[:6])


def prompt_tokens(prompt: str) -> list[str]:
    """The token view of a prompt, as strings (see the module's docstring)."""
    prompt = clip(prompt)
    parts = OPTION.split(prompt)
    question, options = parts[0], parts[1:]
    words = [_shape(t) for t in _TOKEN.findall(question)]
    tokens = words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]
    for option in options:
        option_words = [_shape(t) for t in _TOKEN.findall(option)]
        tokens += [f"o:{t}" for t in option_words]
        tokens.append(f"oshape:{_option_shape(option_words)}")
    tokens.append(f"options:{len(options)}")
    tokens.append(f"length:{int(math.log2(1 + len(prompt)))}")
    return tokens


def mix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (of uint32 values), so that the low bits (the bucket) depend on every bit."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def string_hash(text: str) -> int:
    """The polynomial hash of `text`'s code points: the sum of ``ord(c) * BASE**i``, modulo 2**32."""
    return sum(ord(c) * pow(BASE, i, MODULUS) for i, c in enumerate(text)) % MODULUS


def reference_hashes(prompt: str) -> np.ndarray:
    """The mixed hash of every token of `prompt_tokens(prompt)`, one token string at a time: the definition."""
    return mix(np.array([string_hash(t) for t in prompt_tokens(prompt)], dtype=np.uint32))


def class_of(char: str) -> int:
    """The class the regular expression of `prompt_tokens` gives a character: ``\\d`` is a digit, the rest of
    ``\\w`` but ``_`` a letter, ``\\s`` and ``_`` separate, anything else is a mark (a token of its own)."""
    if char.isdecimal():
        return _DIGIT
    if char.isalnum():
        return _LETTER
    if char.isspace() or char == "_":
        return _SEPARATOR
    return _MARK


@functools.cache
def character_tables() -> tuple[np.ndarray, np.ndarray]:
    """(each code point's class, whether `str.isalpha` calls it a letter) for the Basic Multilingual Plane: two
    64 KiB tables, built once per process (about 50 ms). An option's shape tells words from other tokens by
    `str.isalpha` of their first character."""
    chars = [chr(c) for c in range(PLANE)]
    classes = np.array([class_of(c) for c in chars], dtype=np.int8)
    alpha = np.array([c.isalpha() for c in chars], dtype=np.bool_)
    return classes, alpha


def wide_tables(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`character_tables`' answers for each of `codes`, one at a time: for text with a code point beyond the
    Basic Multilingual Plane (emoji and the like)."""
    chars = [chr(c) for c in codes.tolist()]
    return (
        np.array([class_of(c) for c in chars], dtype=np.int8),
        np.array([c.isalpha() for c in chars], dtype=np.bool_),
    )

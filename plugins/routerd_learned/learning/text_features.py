"""Hashed lexical features of a prompt: what the lexical quality model sees.

Two views, hashed into fixed-width sparse vectors (no vocabulary to store or grow):

- tokens (`routerd_learned.learning.token_view`): the question's words and word bigrams; the words of multiple-choice
  options, marked as such (``o:``); numbers reduced to their shape (``N`` short, ``NN`` long), since which number
  matters less than that there is arithmetic to do; the shape of each option (numeric, words, symbols), the number
  of options and a length bucket. On MMLU and GSM8K the weaker model loses most where the question needs
  calculation or formal reasoning, and both models do equally badly where every option is a number: these tokens
  let a linear model see that.
- character 2-4-grams of the lower-cased text (whitespace collapsed): robust to spelling, inflection and
  languages without spaces.

Both are hashed (polynomial hashes over the text's code points or bytes), bucketed and counted in one compiled call
(`routerd_learned.learning.compiled`); `char_ngram_hashes` and
`routerd_learned.learning.token_view.reference_hashes` are the definitions it matches, and what a prompt takes when
lower-casing changes its length (rare: "İ"). Each view is weighted by TF-IDF (sublinear term frequency, smoothed
inverse document frequency learned by `fit`) and L2-normalised. Hashes are fixed arithmetic, stable across
processes and machines, so a model trained in one process predicts the same in another.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from routerd_learned.learning import compiled
from routerd_learned.learning.quality import check_stop
from routerd_learned.learning.token_view import (
    MAX_CHARS,
    OPTION,
    PLANE,
    character_tables,
    clip,
    mix,
    reference_hashes,
    wide_tables,
)

_SPACES = re.compile(r"\s+")
MAX_CHARS_NGRAMS = MAX_CHARS  # character n-grams of longer prompts come from their start and end (as tokens)
CHAR_NGRAMS = (2, 3, 4)  # contiguous, from 2
_PRIME = np.uint32(0x01000193)


def char_ngram_hashes(prompt: str) -> np.ndarray:
    """32-bit hashes of every character 2-, 3- and 4-gram (bytes of the lower-cased, space-collapsed text).

    A polynomial hash grows one byte at a time, so the 3-grams extend the 2-grams and the 4-grams the 3-grams;
    uint32 arithmetic wraps modulo 2**32.
    """
    data = np.frombuffer(_char_text(clip(prompt, MAX_CHARS_NGRAMS).lower()), dtype=np.uint8).astype(np.uint32)
    size, longest = len(data), CHAR_NGRAMS[-1]
    h = data[: size - 1] * _PRIME + data[1:]  # every 2-gram
    grams = [h]
    for n in range(3, longest + 1):
        h = h[: size - n + 1] * _PRIME + data[n - 1 :]
        grams.append(h + np.uint32(n << 29))  # n in the hash: "ab" and "\0ab" differ
    return mix(np.concatenate(grams))


def _char_text(lowered: str) -> bytes:
    """What the character n-grams read: the lower-cased text, whitespace collapsed, a space either side."""
    return (" " + _SPACES.sub(" ", lowered).strip() + " ").encode("utf-8")


_NO_MARKERS = np.zeros(0, dtype=np.int64)
_NO_CLASSES = np.zeros(0, dtype=np.int8)
_NO_ALPHA = np.zeros(0, dtype=np.bool_)


def prompt_columns(prompt: str, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique columns, counts) of a prompt's hashed features: token columns in [0, n_features), character
    columns in [n_features, 2 n_features). `n_features` is a power of two (2**32: the hashes themselves)."""
    clipped = clip(prompt)
    lowered = clipped.lower()
    if len(lowered) != len(clipped):  # a character whose lower case is longer: the definitions, in numpy
        mask = np.uint64(n_features - 1)
        tokens = reference_hashes(clipped).astype(np.uint64) & mask
        chars = (char_ngram_hashes(prompt).astype(np.uint64) & mask) + np.uint64(n_features)
        columns, counts = np.unique(np.concatenate([tokens, chars]), return_counts=True)
        return columns.astype(np.int64), counts.astype(np.int32)  # the compiled path's types
    codes = np.frombuffer(lowered.encode("utf-32-le"), dtype=np.uint32)
    starts = ends = _NO_MARKERS
    if "\n" in clipped:
        markers = [m.span() for m in OPTION.finditer(clipped)]
        if markers:
            starts = np.array([s for s, _ in markers], dtype=np.int64)
            ends = np.array([e for _, e in markers], dtype=np.int64)
    classes, alpha = character_tables()
    wide_classes, wide_alpha = _NO_CLASSES, _NO_ALPHA
    if len(codes) and int(codes.max()) >= PLANE:
        wide_classes, wide_alpha = wide_tables(codes)
    return compiled.buckets(
        codes,
        classes,
        alpha,
        wide_classes,
        wide_alpha,
        starts,
        ends,
        np.frombuffer(_char_text(lowered), dtype=np.uint8),
        n_features,
        int(math.log2(1 + len(codes))),
    )


class PromptVectorizer:
    """Prompts -> TF-IDF weighted, L2-normalised hashed features; tokens in columns [0, n), characters in [n, 2n).

    `fit` learns only the inverse document frequencies; the hashing needs no training, so a vectorizer can also
    transform prompts with words it never saw.
    """

    def __init__(self, n_features: int = 2**18) -> None:
        if n_features & (n_features - 1):
            raise ValueError("n_features must be a power of two")
        self.n_features = n_features
        self.idf: np.ndarray | None = None

    @property
    def dimension(self) -> int:
        return 2 * self.n_features

    def _buckets(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """(unique columns, counts): token columns first, then character columns (offset by n_features)."""
        return prompt_columns(prompt, self.n_features)

    def _counts(self, prompts: Sequence[str], stop=None) -> list[tuple[np.ndarray, np.ndarray]]:
        counts = []
        for i, prompt in enumerate(prompts):
            if i % 512 == 0:
                check_stop(stop)
            counts.append(self._buckets(prompt))
        return counts

    def fit_transform(self, prompts: Sequence[str], stop=None) -> sparse.csr_matrix:
        """`stop`: a callable; when it answers True, `routerd_learned.learning.quality.TrainingStopped` is raised."""
        counts = self._counts(prompts, stop)
        df = np.zeros(self.dimension, dtype=np.float64)
        for columns, _ in counts:
            df[columns] += 1
        n = len(prompts)
        self.idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
        return self._matrix(counts)

    def transform(self, prompts: Sequence[str]) -> sparse.csr_matrix:
        return self._matrix(self._counts(prompts))

    def _weights(self, buckets: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """TF-IDF weights, each view L2-normalised on its own."""
        if self.idf is None:
            raise RuntimeError("the vectorizer is not fitted")
        columns, counts = buckets
        return columns, self.tf_idf(columns, counts, self.idf[columns])

    def tf_idf(self, columns: np.ndarray, counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
        """The weights of (sorted, unique) `columns` seen `counts` times whose IDFs are `idf` (a fresh array: it
        is scaled in place), each view L2-normalised on its own."""
        weights = idf * (1 + np.log(counts, dtype=np.float32))
        split = int(np.searchsorted(columns, self.n_features))  # columns are sorted: tokens, then characters
        for view in (weights[:split], weights[split:]):
            norm = float(np.sqrt(view @ view))
            if norm > 0:
                view /= norm
        return weights

    def _matrix(self, counts: list[tuple[np.ndarray, np.ndarray]]) -> sparse.csr_matrix:
        rows = [self._weights(views) for views in counts]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(c) for c, _ in rows])
        indices = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
        data = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, dtype=np.float32)
        return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), self.dimension))

    def vector(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """One prompt's (columns, values): the request path's shortcut around building a sparse matrix."""
        return self._weights(self._buckets(prompt))

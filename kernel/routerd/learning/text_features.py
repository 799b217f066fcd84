"""Hashed lexical features of a prompt: what the lexical quality model sees.

Two views, hashed into fixed-width sparse vectors (no vocabulary to store or grow):

- tokens (`routerd.learning.token_view`): the question's words and word bigrams; the words of multiple-choice
  options, marked as such (``o:``); numbers reduced to their shape (``N`` short, ``NN`` long), since which number
  matters less than that there is arithmetic to do; the shape of each option (numeric, words, symbols), the number
  of options and a length bucket. On MMLU and GSM8K the weaker model loses most where the question needs
  calculation or formal reasoning, and both models do equally badly where every option is a number: these tokens
  let a linear model see that.
- character 2-4-grams of the lower-cased text (whitespace collapsed): robust to spelling, inflection and
  languages without spaces.

Both are hashed in numpy (polynomial hashes over the text's code points or bytes), not one token at a time.
Each view is weighted by TF-IDF (sublinear term frequency, smoothed inverse document frequency learned by `fit`)
and L2-normalised. Hashes are fixed arithmetic, stable across processes and machines, so a model trained in one
process predicts the same in another. A prompt costs about 0.1 ms, a long one (2,000 characters) about 0.3 ms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from routerd.learning.quality import check_stop
from routerd.learning.token_view import TokenHasher, clip, mix

_SPACES = re.compile(r"\s+")
MAX_CHARS_NGRAMS = 800  # character n-grams of longer prompts come from their start and end
CHAR_NGRAMS = (2, 3, 4)  # contiguous, from 2
_PRIME = np.uint32(0x01000193)


def char_ngram_hashes(prompt: str) -> np.ndarray:
    """32-bit hashes of every character 2-, 3- and 4-gram (bytes of the lower-cased, space-collapsed text).

    A polynomial hash grows one byte at a time, so the 3-grams extend the 2-grams and the 4-grams the 3-grams;
    uint32 arithmetic wraps modulo 2**32.
    """
    text = " " + _SPACES.sub(" ", clip(prompt, MAX_CHARS_NGRAMS).lower()).strip() + " "
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint32)
    size, longest = len(data), CHAR_NGRAMS[-1]
    h = data[: size - 1] * _PRIME + data[1:]  # every 2-gram
    grams = [h]
    for n in range(3, longest + 1):
        h = h[: size - n + 1] * _PRIME + data[n - 1 :]
        grams.append(h + np.uint32(n << 29))  # n in the hash: "ab" and "\0ab" differ
    return mix(np.concatenate(grams))


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
        self.tokens = TokenHasher()

    @property
    def dimension(self) -> int:
        return 2 * self.n_features

    def _buckets(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """(unique columns, counts): token columns first, then character columns (offset by n_features)."""
        mask = np.uint32(self.n_features - 1)
        tokens = self.tokens.hashes(prompt) & mask
        chars = (char_ngram_hashes(prompt) & mask) + np.uint32(self.n_features)
        columns, counts = np.unique(np.concatenate([tokens, chars]), return_counts=True)
        return columns.astype(np.int64), counts

    def _counts(self, prompts: Sequence[str], stop=None) -> list[tuple[np.ndarray, np.ndarray]]:
        counts = []
        for i, prompt in enumerate(prompts):
            if i % 512 == 0:
                check_stop(stop)
            counts.append(self._buckets(prompt))
        return counts

    def fit_transform(self, prompts: Sequence[str], stop=None) -> sparse.csr_matrix:
        """`stop`: a callable; when it answers True, `routerd.learning.quality.TrainingStopped` is raised."""
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

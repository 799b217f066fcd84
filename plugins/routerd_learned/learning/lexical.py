"""The lexical quality model: hashed words and character n-grams, and a ridge regression per model.

No embedding model, no vocabulary, nothing to download: it trains in seconds on tens of thousands of prompts and
predicts in well under a millisecond. Ridge on each model's score is the same as ridge on the score differences
between models (the estimator is linear), so ranking models by predicted score ranks them by predicted gain; unlike
a pairwise model it works for any number of models and for data where each prompt has only some models scored.
See docs/routing-quality.md for what was measured against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, cg

from routerd_learned.learning import compiled
from routerd_learned.learning.quality import check_scores, check_stop, column_means
from routerd_learned.learning.text_features import PromptVectorizer


class LexicalQualityModel:
    """Predicted quality per model from the prompt's text alone.

    `alpha` is the ridge penalty (larger: closer to each model's mean); `n_features` the width of each hashed view.
    A feature no training prompt has gets a coefficient of exactly 0 (the ridge solution is a combination of the
    training rows), so only the others' are kept, one row each in `table` (`pack`): the feature's IDF and a scale
    (float32), then each model's coefficient as a multiple of the scale (int8, the row's largest at 127), and a
    last row of zeros for every unseen feature; `rows` is each feature's row in it. Predicting one prompt reads
    one row per feature of the prompt, a cache line for up to 56 models (on the request path the neighbour
    search before it has usually pushed the table out of the caches: the float32 rows of 50 models took four
    lines each). Memory: about 8 + models bytes per seen feature, and 4 per feature for `rows`. `coef` gives the
    coefficients the rows hold (what both predictions use), as floats.
    """

    name = "lexical"

    def __init__(self, alpha: float = 15.0, n_features: int = 2**18) -> None:
        self.alpha = alpha
        self.vectorizer = PromptVectorizer(n_features=n_features)
        self.models: list[str] = []
        self.rows: np.ndarray | None = None
        self.table: np.ndarray | None = None  # see the class's docstring: (seen features + 1) x stride bytes
        self._floats: np.ndarray | None = None  # two views of `table`, what predict_one reads (set by fit)
        self._ints: np.ndarray | None = None
        self.intercept: np.ndarray | None = None

    def fit(
        self,
        prompts: Sequence[str],
        scores: np.ndarray,
        models: Sequence[str],
        weights: np.ndarray | None = None,
        stop=None,
    ) -> LexicalQualityModel:
        """`weights` (the shape of `scores`, optional): how much each known score counts, such as the number of
        outcomes it is the mean of. `stop` (optional): a callable; when it answers True the fit ends soon after
        with `TrainingStopped` (checked between prompts and solver iterations)."""
        scores = check_scores(prompts, scores, models)
        features = self.vectorizer.fit_transform(prompts, stop)
        self.models = list(models)
        seen = np.flatnonzero(np.diff(features.tocsc().indptr))  # the features some training prompt has
        self.rows = np.full(features.shape[1], len(seen), dtype=np.int32)
        self.rows[seen] = np.arange(len(seen), dtype=np.int32)
        idf = self.vectorizer.idf
        assert idf is not None
        coef = np.zeros((len(seen) + 1, len(self.models)), dtype=np.float32)  # the last row: unseen features'
        self.intercept = column_means(scores)
        for j in range(len(self.models)):
            known = ~np.isnan(scores[:, j])
            if known.any():
                weight = None if weights is None else weights[known, j]
                found, self.intercept[j] = _ridge(features[known], scores[known, j], self.alpha, weight, stop=stop)
                coef[:-1, j] = found[seen]
        self.table = pack(coef, np.append(idf[seen], np.log(1 + len(prompts)) + 1))
        self._floats, self._ints = self.table.view(np.float32), self.table.view(np.int8)
        compiled.warm_up()  # here, in the training thread, not at a request's first prediction
        return self

    @property
    def coef(self) -> np.ndarray | None:
        """The coefficients as the table holds them (float32), one row per seen feature and a last row of zeros
        for every unseen one."""
        return None if self.table is None else unpack(self.table, len(self.models))

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        if len(prompts) == 1:
            return self.predict_one(prompts[0])[None, :]
        coef = self.coef  # the whole table as floats: for a batch only
        if coef is None or self.intercept is None:
            raise RuntimeError("the model is not fitted")
        features = self.vectorizer.transform(prompts)
        assert self.rows is not None
        remapped = sparse.csr_matrix(
            (features.data, self.rows[features.indices], features.indptr), shape=(features.shape[0], len(coef))
        )  # unseen features all land on the zero row
        return np.clip(remapped @ coef + self.intercept, 0.0, 1.0)

    def predict_one(self, prompt: str) -> np.ndarray:
        """One prompt's predicted quality per model: the request path (no sparse matrix; one compiled call for
        the features, one for the prediction)."""
        if self._floats is None or self.intercept is None or self.rows is None:
            raise RuntimeError("the model is not fitted")
        columns, counts = self.vectorizer._buckets(prompt)
        return compiled.predict(
            columns, counts, self.rows, self._floats, self._ints, self.intercept, self.vectorizer.n_features
        )


def pack(coef: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """The table of `LexicalQualityModel`: per row (feature) its IDF and scale as float32, then its coefficients
    (`coef`, rows x models) divided by the scale and rounded to int8; rows padded to a multiple of 16 bytes."""
    rows, models = coef.shape
    stride = -(-(8 + models) // 16) * 16
    table = np.zeros((rows, stride), dtype=np.uint8)
    scale = (np.abs(coef).max(axis=1, initial=0.0) / 127).astype(np.float32)
    quantised = np.zeros(coef.shape, dtype=np.int8)
    nonzero = scale > 0
    quantised[nonzero] = np.rint(coef[nonzero] / scale[nonzero, None]).astype(np.int8)
    table[:, 0:4] = np.ascontiguousarray(idf, dtype=np.float32).view(np.uint8).reshape(rows, 4)
    table[:, 4:8] = scale.view(np.uint8).reshape(rows, 4)
    table[:, 8 : 8 + models] = quantised.view(np.uint8)
    return table


def unpack(table: np.ndarray, models: int) -> np.ndarray:
    """The coefficients `table` holds, as float32 (rows x models)."""
    scale = np.ascontiguousarray(table[:, 4:8]).view(np.float32)  # (rows, 1)
    return table[:, 8 : 8 + models].view(np.int8).astype(np.float32) * scale


def _ridge(
    x: sparse.csr_matrix,
    y: np.ndarray,
    alpha: float,
    weight: np.ndarray | None = None,
    tol: float = 1e-4,
    stop=None,
) -> tuple[np.ndarray, float]:
    """Weighted ridge regression with an unpenalised intercept: the coefficients and the intercept minimising
    ``sum(weight * (x @ coef + intercept - y) ** 2) + alpha * |coef| ** 2``.

    The features are centred implicitly (a sparse matrix stays sparse) and the system is solved by SciPy's
    conjugate gradient in its dual form, ``(A A' + alpha I) z = r`` with ``coef = A' z``, since there are far more
    features than prompts (A: the centred rows, scaled by the square roots of their weights). Every step is a
    sparse product, so the training thread never holds Python's lock for long (scikit-learn's Ridge spends 0.4 s
    in one call computing column statistics first, which stalls the gateway's event loop as long).
    """
    n = x.shape[0]
    w = np.ones(n, dtype=np.float64) if weight is None else np.asarray(weight, dtype=np.float64)
    root = np.sqrt(w).astype(np.float32)
    mean_x = (x.T @ (w / w.sum()).astype(np.float32)).astype(np.float32)  # weighted column means
    mean_y = float(w @ y / w.sum())
    target = (root * (y - mean_y)).astype(np.float32)

    def transposed(z: np.ndarray) -> np.ndarray:  # A' z
        scaled = root * z
        return x.T @ scaled - mean_x * np.float32(scaled.sum())

    def forward(v: np.ndarray) -> np.ndarray:  # A v
        return root * (x @ v - np.float32(mean_x @ v))

    def gram(z: np.ndarray) -> np.ndarray:  # (A A' + alpha I) z
        z = z.astype(np.float32, copy=False)
        return forward(transposed(z)) + np.float32(alpha) * z

    operator = LinearOperator((n, n), matvec=gram, dtype=np.float32)
    solution, info = cg(operator, target, rtol=tol, maxiter=1000, callback=lambda _: check_stop(stop))
    if info < 0:
        raise ValueError("ridge regression: the conjugate gradient broke down")
    coef = transposed(solution.astype(np.float32)).astype(np.float32)
    return coef, mean_y - float(mean_x @ coef)

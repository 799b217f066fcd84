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
from sklearn.linear_model import Ridge

from routerd.learning.quality import check_scores, column_means
from routerd.learning.text_features import PromptVectorizer


class LexicalQualityModel:
    """Predicted quality per model from the prompt's text alone.

    `alpha` is the ridge penalty (larger: closer to each model's mean); `n_features` the width of each hashed view.
    The coefficients are kept as a dense float32 (features x models) matrix, so predicting costs one sparse-dense
    product; memory is 2 * n_features * 4 bytes per model (2 MiB a model at the default).
    """

    name = "lexical"

    def __init__(self, alpha: float = 15.0, n_features: int = 2**18) -> None:
        self.alpha = alpha
        self.vectorizer = PromptVectorizer(n_features=n_features)
        self.models: list[str] = []
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None

    def fit(
        self, prompts: Sequence[str], scores: np.ndarray, models: Sequence[str], weights: np.ndarray | None = None
    ) -> LexicalQualityModel:
        """`weights` (the shape of `scores`, optional): how much each known score counts, such as the number of
        outcomes it is the mean of."""
        scores = check_scores(prompts, scores, models)
        features = self.vectorizer.fit_transform(prompts)
        self.models = list(models)
        self.coef = np.zeros((features.shape[1], len(self.models)), dtype=np.float32)
        self.intercept = column_means(scores)
        for j in range(len(self.models)):
            known = ~np.isnan(scores[:, j])
            if known.any():
                weight = None if weights is None else weights[known, j]
                self.coef[:, j], self.intercept[j] = _ridge(features[known], scores[known, j], self.alpha, weight)
        return self

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        if self.coef is None or self.intercept is None:
            raise RuntimeError("the model is not fitted")
        if len(prompts) == 1:
            return self.predict_one(prompts[0])[None, :]
        features = self.vectorizer.transform(prompts)
        return np.clip(features @ self.coef + self.intercept, 0.0, 1.0)

    def predict_one(self, prompt: str) -> np.ndarray:
        """One prompt's predicted quality per model: the request path (no sparse matrix, one gather)."""
        if self.coef is None or self.intercept is None:
            raise RuntimeError("the model is not fitted")
        columns, values = self.vectorizer.vector(prompt)
        return np.clip(values @ self.coef[columns] + self.intercept, 0.0, 1.0)


def _ridge(
    x: sparse.csr_matrix, y: np.ndarray, alpha: float, weight: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Ridge regression (intercept not penalised; scikit-learn centres sparse features implicitly)."""
    model = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-4).fit(x, y, sample_weight=weight)
    return model.coef_.astype(np.float32), float(model.intercept_)

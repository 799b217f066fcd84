"""What every learned quality model offers: fit on prompts with known scores, predict scores for new prompts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from routerd_learned.learning import LearningError


class TrainingStopped(LearningError):
    """A fit was asked to stop (its ``stop`` callable answered True), such as when the gateway shuts down."""


def check_stop(stop) -> None:
    if stop is not None and stop():
        raise TrainingStopped("training stopped")


@runtime_checkable
class QualityModel(Protocol):
    """Predicts how well each of `models` will answer a prompt, from prompts whose outcomes are known.

    `scores` is an array of shape (prompts, models) with values in 0..1 and NaN where a model's outcome on a prompt
    is unknown (feedback covers only the model that answered). `predict` returns the same shape; a model the
    training data never scored is predicted as NaN (no opinion).
    """

    name: str
    models: list[str]

    def fit(self, prompts: Sequence[str], scores: np.ndarray, models: Sequence[str]) -> QualityModel: ...

    def predict(self, prompts: Sequence[str]) -> np.ndarray: ...


def check_scores(prompts: Sequence[str], scores: np.ndarray, models: Sequence[str]) -> np.ndarray:
    """`scores` as a float array of shape (len(prompts), len(models)); raise ValueError otherwise."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(prompts), len(models)):
        raise ValueError(f"scores has shape {scores.shape}, expected {(len(prompts), len(models))}")
    known = scores[~np.isnan(scores)]
    if known.size and (known.min() < 0 or known.max() > 1):
        raise ValueError("scores must be in 0..1 (NaN for unknown)")
    return scores


def column_means(scores: np.ndarray) -> np.ndarray:
    """Each model's mean known score (NaN for a model with none), without numpy's empty-slice warning."""
    known = ~np.isnan(scores)
    counts = known.sum(axis=0)
    totals = np.where(known, scores, 0.0).sum(axis=0)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)

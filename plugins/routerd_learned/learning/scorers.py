"""The learned quality models by name, and their combination."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from routerd_learned.learning import SCORERS, embeddings_installed
from routerd_learned.learning.lexical import LexicalQualityModel
from routerd_learned.learning.neighbours import CachedEmbedder, Embedder, NeighbourQualityModel
from routerd_learned.learning.quality import QualityModel


class CombinedQualityModel:
    """A weighted mean of other quality models' predictions (each model's NaN: the others decide alone)."""

    name = "combined"

    def __init__(self, parts: Sequence[QualityModel], weights: Sequence[float]) -> None:
        if len(parts) != len(weights) or not parts:
            raise ValueError("one weight per part, at least one part")
        self.parts = list(parts)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.models: list[str] = []

    def fit(self, prompts: Sequence[str], scores: np.ndarray, models: Sequence[str]) -> CombinedQualityModel:
        for part in self.parts:
            part.fit(prompts, scores, models)
        self.models = list(models)
        return self

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        return self.combine([part.predict(prompts) for part in self.parts])

    def combine(self, predictions: Sequence[np.ndarray]) -> np.ndarray:
        stacked = np.stack(predictions)  # (parts, prompts, models)
        weights = self.weights[:, None, None] * ~np.isnan(stacked)
        total = (weights * np.nan_to_num(stacked)).sum(axis=0)
        mass = weights.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(mass > 0, total / np.maximum(mass, 1e-12), np.nan)


def resolve_scorer(name: str) -> str:
    """`auto` -> ``combined`` where the local embedder can run, ``lexical`` otherwise."""
    if name == "auto":
        return "combined" if embeddings_installed() else "lexical"
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; choose one of {', '.join(SCORERS)}")
    return name


def build_quality_model(
    name: str, embedder: Embedder | None = None, embedding_cache: str | Path | None = None
) -> QualityModel:
    """A fresh, untrained quality model. `neighbours` and `combined` load the local embedder unless given one;
    `embedding_cache` keeps its vectors in a file between runs (offline evaluation)."""
    name = resolve_scorer(name)
    if name == "lexical":
        return LexicalQualityModel()
    if embedder is None:
        from routerd_learned.learning.neighbours import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
    if embedding_cache is not None:
        embedder = CachedEmbedder(embedder, embedding_cache)
    neighbours = NeighbourQualityModel(embedder)
    if name == "neighbours":
        return neighbours
    # Equal weights: both predict scores on the same 0..1 scale; see docs/routing-quality.md for the measurements.
    return CombinedQualityModel([LexicalQualityModel(), neighbours], [0.5, 0.5])

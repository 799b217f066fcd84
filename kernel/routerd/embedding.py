"""Prompt embeddings from the model ``routing.embed_model`` names, served by one of the gateway's backends.

Plugins that want prompt embeddings (the learned scorer's neighbour model) are given a `GatewayEmbedder` as
``context.embedder`` when that setting names a model; it calls the model through ``context.models``
(`routerd.ServedModels`: the gateway's dispatcher, so the backend's timeouts and circuit breaker apply as to any
request, without routing). Vectors come back L2-normalised.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING

from routerd.served_models import ServedModels

if TYPE_CHECKING:
    import numpy as np


class GatewayEmbedder:
    """``await embed(texts)``: one L2-normalised float32 row per text, from the model `model` of the catalog."""

    def __init__(self, model: str, models: ServedModels) -> None:
        self.model = model
        self.name = f"gateway:{model}"
        self.models = models
        self.dimension: int | None = None  # known after the first answer

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Raises the gateway's errors: `ModelNotFound` while the model is not in the catalog,
        `BackendUnavailable` before the gateway has started, the backend's errors. (numpy is imported here, on
        first use: the gateway itself never needs it.)"""
        import numpy as np

        result = await self.models.embed(self.model, list(texts))
        items = sorted(result.data, key=lambda item: item.index)
        if len(items) != len(texts):
            raise ValueError(f"{self.model} answered {len(items)} embeddings for {len(texts)} texts")
        vectors = np.array([_floats(item.embedding) for item in items], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.dimension = vectors.shape[1]
        return vectors / np.maximum(norms, 1e-12)


def _floats(embedding: list[float] | str) -> np.ndarray:
    import numpy as np

    if isinstance(embedding, str):  # base64 of little-endian float32, the API's compact form
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)

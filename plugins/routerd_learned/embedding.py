"""Prompt embeddings for the neighbour model, never in the way of a request.

Two embedders speak ``await embed(texts)``: the model ``routing.embed_model`` names, served by a backend
(`routerd.GatewayEmbedder`, given as ``context.embedder``), or all-MiniLM-L6-v2 run here
(`LocalEmbedder`, the extra ``embeddings``), in a thread of its own with one torch thread.

`PromptEmbeddings` serves the request path: a vector it has (the last `size` prompts embedded) comes at once; for
another prompt it starts one embedding in the background if none is running, and waits for it at most `wait`
seconds (none by default for the local embedder: docs/decisions.md has the measurements). `VectorStore` keeps the
training prompts' vectors in a file, so a restart embeds only what is new. numpy loads with the first vector, not
with the plugin (``routerd --help`` loads the plugins).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("routerd.plugin.learned")


class LocalEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded on first use, in its own single thread."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="routerd-embed")
        self._model = None

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            from routerd_learned.learning.neighbours import SentenceTransformerEmbedder

            # one torch thread: a single prompt embeds faster so on a busy machine (docs/routing-quality.md)
            self._model = SentenceTransformerEmbedder(threads=1)
        return self._model.embed(texts)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._embed, list(texts))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class VectorStore:
    """Vectors of prompts by `text_key`, for one embedder, kept in an ``.npz`` file (ignored when it was made by
    another embedder or cannot be read)."""

    def __init__(self, path: Path, embedder_name: str) -> None:
        self.path = path
        self.embedder_name = embedder_name
        self.vectors: dict[str, np.ndarray] = {}
        self.dirty = False

    def load(self) -> None:
        if not self.path.exists():
            return
        import numpy as np

        try:
            with np.load(self.path) as stored:
                if str(stored["model"]) == self.embedder_name:
                    self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
        except Exception as exc:  # a damaged file costs an embedding pass, nothing more
            log.warning("learned: ignoring the embeddings in %s (%s)", self.path, type(exc).__name__)

    def save(self) -> None:
        if not self.dirty or not self.vectors:
            return
        import numpy as np

        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        partial = self.path.with_suffix(".partial.npz")
        with partial.open("wb") as handle:
            np.savez(
                handle, model=self.embedder_name, keys=np.array(keys), vectors=np.stack(list(self.vectors.values()))
            )
        partial.replace(self.path)  # atomic: a crash leaves the old file
        self.dirty = False

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        self.vectors.update(zip(keys, vectors, strict=True))
        self.dirty = True


class PromptEmbeddings:
    """The request path's embeddings: remembered ones at once, a new one only if it is ready within `wait`."""

    def __init__(self, embedder, size: int, wait: float) -> None:
        self.embedder = embedder
        self.size = size
        self.wait = wait
        self.recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self.running: asyncio.Task | None = None
        self.skipped = 0  # prompts not embedded because another embedding was running
        self.failures = 0

    def remember(self, text: str, vector: np.ndarray) -> None:
        self.recent[text] = vector
        self.recent.move_to_end(text)
        while len(self.recent) > self.size:
            self.recent.popitem(last=False)

    async def vector(self, text: str) -> np.ndarray | None:
        """`text`'s vector if known, or ready within `wait` seconds; None otherwise (the embedding may still
        finish in the background and serve the next request with the same text)."""
        found = self.recent.get(text)
        if found is not None:
            return found
        running = self.running
        if running is not None and not running.done():
            self.skipped += 1
            return None
        task = self.running = asyncio.get_running_loop().create_task(self._embed(text))
        if self.wait <= 0:
            return None
        done, _ = await asyncio.wait({task}, timeout=self.wait)
        return task.result() if done else None

    async def _embed(self, text: str) -> np.ndarray | None:
        try:
            vector = (await self.embedder.embed([text]))[0]
        except Exception as exc:
            self.failures += 1
            if self.failures % 100 == 1:
                log.warning("learned: embedding a prompt failed (%s); routing went on without it", exc)
            return None
        self.remember(text, vector)
        return vector

    async def close(self) -> None:
        if self.running is not None:
            self.running.cancel()
            with contextlib.suppress(BaseException):
                await self.running

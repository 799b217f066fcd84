"""Training the learned scorer's models in the background, and the trained state the request path reads.

A round: gather every outcome (files, feedback, profiles), fit the lexical model in the training thread, publish
it; then, with an embedder, embed the prompts the vector store lacks, build the neighbour index, publish again.
Publishing swaps one attribute (`Trained` is immutable), so a request sees the old models or the new ones, never
half of each. Rounds run when the scorer starts, when ``retrain_after`` new outcomes have arrived here, and when
the database has new outcomes at a ``reload_interval`` check (other replicas' feedback, new profiles).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from routerd_learned.embedding import VectorStore, text_key
from routerd_learned.learning.lexical import LexicalQualityModel
from routerd_learned.learning.neighbours import NeighbourQualityModel
from routerd_learned.learning.outcomes import OutcomeTable, table

log = logging.getLogger("routerd.plugin.learned")
EMBED_BATCH = 64


@dataclass(frozen=True)
class Trained:
    """What one training round produced: read by the request path, never changed once published."""

    models: list[str]
    column: dict[str, int]  # model name -> its column in the predictions
    counts_list: list[int]  # prompts with a known outcome, per model
    prompts: int
    lexical: LexicalQualityModel
    neighbours: NeighbourQualityModel | None = None
    trained_at: float = field(default_factory=time.time)
    seconds: float = 0.0

    @property
    def grounds(self) -> list[str]:
        """What each model's prediction rests on, for reasons: ``"1,204 prompts with known outcomes"``."""
        found = self.__dict__.get("_grounds")
        if found is None:
            found = [f"{n:,} prompts with known outcomes" for n in self.counts_list]
            object.__setattr__(self, "_grounds", found)  # computed once; the state is otherwise never changed
        return found

    @property
    def from_grounds(self) -> list[str]:
        """`grounds` as the end of a reason: ``" from 1,204 prompts with known outcomes"``."""
        found = self.__dict__.get("_from_grounds")
        if found is None:
            found = [" from " + g for g in self.grounds]
            object.__setattr__(self, "_from_grounds", found)
        return found


def fit_lexical(data: OutcomeTable, alpha: float, stop=None) -> Trained:
    started = time.perf_counter()
    # a prompt rated five times counts five times
    lexical = LexicalQualityModel(alpha=alpha).fit(
        data.prompts, data.scores, data.models, weights=data.outcomes, stop=stop
    )
    return Trained(
        models=data.models,
        column={m: j for j, m in enumerate(data.models)},
        counts_list=[int(n) for n in data.counts],
        prompts=len(data),
        lexical=lexical,
        seconds=time.perf_counter() - started,
    )


class Trainer:
    """Runs training rounds in one thread of its own; `publish` receives each new `Trained`."""

    def __init__(
        self,
        gather: Callable,  # async () -> (outcome triples, [(evaluation file, its model names)])
        publish: Callable[[Trained], None],
        *,
        min_outcomes: int,
        alpha: float = 15.0,
        embedder=None,
        store: VectorStore | None = None,
        neighbours: int = 100,
    ) -> None:
        self.gather = gather
        self.publish = publish
        self.min_outcomes = min_outcomes
        self.alpha = alpha
        self.embedder = embedder
        self.store = store
        self.k = neighbours
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="routerd-learn")
        self.stopping = threading.Event()  # set on close: a fit in the thread ends within a second or so
        self.rounds = 0
        self.last_error: str | None = None

    async def _in_thread(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def round(self) -> Trained | None:
        """One training round; None (and nothing published) when there are too few outcomes."""
        self.last_error = None
        outcomes, blocks = await self.gather()
        data = await self._in_thread(table, outcomes, blocks)
        known = int(np.sum(data.counts))
        if known < self.min_outcomes or not data.models:
            log.info(
                "learned: %d outcomes, fewer than the %d needed to train; no opinion yet", known, self.min_outcomes
            )
            return None
        trained = await self._in_thread(fit_lexical, data, self.alpha, self.stopping.is_set)
        self.publish(trained)
        log.info(
            "learned: lexical model trained on %d prompts (%d outcomes, %d models) in %.1f s",
            trained.prompts,
            known,
            len(trained.models),
            trained.seconds,
        )
        if self.embedder is not None and self.store is not None:
            vectors = await self._vectors(data.prompts)
            if vectors is not None:
                started = time.perf_counter()
                neighbours = await self._in_thread(self._fit_neighbours, vectors, data)
                trained = replace(trained, neighbours=neighbours, trained_at=time.time())
                self.publish(trained)
                log.info(
                    "learned: neighbour index of %d prompts (%s) built in %.1f s",
                    len(vectors),
                    self.store.embedder_name,
                    time.perf_counter() - started,
                )
        self.rounds += 1
        return trained

    def _fit_neighbours(self, vectors: np.ndarray, data: OutcomeTable) -> NeighbourQualityModel:
        return NeighbourQualityModel(k=self.k).fit_vectors(vectors, data.scores, data.models)

    async def _vectors(self, prompts: Sequence[str]) -> np.ndarray | None:
        """Every prompt's vector: from the store, the missing ones embedded in batches (then stored)."""
        assert self.store is not None
        keys = [text_key(p) for p in prompts]
        missing = [(k, p) for k, p in dict(zip(keys, prompts, strict=True)).items() if k not in self.store.vectors]
        if missing:
            log.info(
                "learned: embedding %d prompts with %s (once: they are kept)", len(missing), self.store.embedder_name
            )
        try:
            for start in range(0, len(missing), EMBED_BATCH):
                batch = missing[start : start + EMBED_BATCH]
                vectors = await self.embedder.embed([p for _, p in batch])
                self.store.add([k for k, _ in batch], vectors)
        except Exception as exc:
            self.last_error = f"embedding failed: {type(exc).__name__}: {exc}"
            log.warning("learned: %s; the lexical model routes alone", self.last_error)
            await self._in_thread(self.store.save)  # what was embedded is kept for the next round
            return None
        await self._in_thread(self.store.save)
        return np.stack([self.store.vectors[k] for k in keys]).astype(np.float32)

    def close(self) -> None:
        self.stopping.set()
        self.executor.shutdown(wait=False, cancel_futures=True)

"""The learned scorer: each candidate's predicted quality for the prompt, from prompts with known outcomes.

One object, registered as a scorer (`score`, the request path) and as a learner (`learn`, off the request path).
The request path reads one attribute (`trained`, swapped whole by the trainer) and, when there is a trained
model, predicts with the lexical model at once (well under a millisecond) and with the neighbour model only when
the prompt's embedding is at hand (`PromptEmbeddings`). With nothing trained it answers an empty mapping and does
nothing else.

The trainer (and with it numpy, SciPy, Numba and FAISS) is made on first use, when the gateway starts: loading the
plugin for a command that never starts the gateway (``routerd --help``, ``routerd eval``) loads none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

import routerd
from routerd_learned.embedding import PromptEmbeddings
from routerd_learned.sources import DatabaseOutcomes, RecentPrompts, read_files

if TYPE_CHECKING:
    from routerd_learned.training import Trained, Trainer

log = logging.getLogger("routerd.plugin.learned")
NO_OPINION: Mapping[str, routerd.Contribution] = MappingProxyType({})
# Scores in 0..1 written with two decimals, looked up: 50 candidates' reasons cost a tenth of formatting floats.
_TWO_PLACES = tuple(f"{i / 100:.2f}" for i in range(101))


def _two_places(value: float) -> str:
    return _TWO_PLACES[int(value * 100 + 0.5)] if 0.0 <= value <= 1.0 else f"{value:.2f}"


class LearnedScorer:
    name = "learned"

    def __init__(
        self,
        settings,
        decisions: routerd.DecisionLog,
        profile_store: routerd.ProfileStore,
        *,
        embedder=None,
        store=None,
        wait: float = 0.0,
    ) -> None:
        self.settings = settings
        self.trained: Trained | None = None
        self.recent = RecentPrompts()
        self.database_outcomes = DatabaseOutcomes(
            decisions, profile_store, self.recent, feedback=settings.feedback, profiles=settings.profiles
        )
        self.embedder = embedder
        self.embeddings = PromptEmbeddings(embedder, settings.embedding_cache, wait) if embedder else None
        self.store = store  # the training prompts' vectors (`VectorStore`), with an embedder
        self.files: list | None = None  # the evaluation files, read once
        self.new_outcomes = 0
        self._weights_of: Trained | None = None
        self._weight_list: list[float] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    # -- the request path ------------------------------------------------------------------------------------
    async def score(
        self, features: routerd.PromptFeatures, candidates: Sequence[routerd.ModelInfo]
    ) -> Mapping[str, routerd.Contribution]:
        trained = self.trained
        if trained is None:
            return NO_OPINION
        column = trained.column
        known = [(m.name, column[m.name]) for m in candidates if m.name in column]
        if not known:
            return NO_OPINION
        text = features.text
        lexical = trained.lexical.predict_one(text).tolist()
        near = support = None
        if trained.neighbours is not None and self.embeddings is not None:
            vector = await self.embeddings.vector(text)
            if vector is not None:
                predicted, mass = trained.neighbours.predict_with_support(vector[None, :])
                near, support = predicted[0].tolist(), mass[0].tolist()
        weights, grounds = self._weights(trained), trained.from_grounds
        found = {}
        contribution, places = routerd.Contribution, _two_places
        for name, j in known:
            quality = lexical[j]
            if near is not None and near[j] == near[j]:
                quality = 0.5 * quality + 0.5 * near[j]
                reason = (
                    f"predicted {places(quality)} from {int(support[j] + 0.5)} similar prompts ({places(near[j])})"
                    f" and {trained.grounds[j]} ({places(lexical[j])})"
                )
            else:
                reason = "predicted " + places(quality) + grounds[j]
            found[name] = contribution(quality, weights[j], reason)
        return found

    def _weights(self, trained: Trained) -> list[float]:
        """Each model's weight, `weight * n / (n + confidence_outcomes)`, once per trained state."""
        if self._weights_of is not trained:
            weight, half = self.settings.weight, self.settings.confidence_outcomes
            self._weight_list = [weight * n / (n + half) for n in trained.counts_list]
            self._weights_of = trained
        return self._weight_list

    # -- outcomes, off the request path ------------------------------------------------------------------------
    async def learn(self, outcome: routerd.Outcome) -> None:
        if outcome.rating is None:  # a routed request: keep its whole prompt for feedback to come
            if self.settings.feedback:
                self.recent.add(outcome.decision_id, outcome.features.text)
            return
        if not self.settings.feedback:
            return
        self.new_outcomes += 1
        if self.new_outcomes >= self.settings.retrain_after and self._wake is not None:
            self._wake.set()

    # -- training ----------------------------------------------------------------------------------------------
    @functools.cached_property
    def trainer(self) -> Trainer:
        from routerd_learned.training import Trainer

        return Trainer(
            self._gather,
            self._publish,
            min_outcomes=self.settings.min_outcomes,
            embedder=self.embedder,
            store=self.store,
            neighbours=self.settings.neighbours,
        )

    def _publish(self, trained: Trained) -> None:
        self.trained = trained

    async def _gather(self) -> tuple[list, list]:
        """(outcome triples from the database, evaluation files with their name mapping)."""
        if self.files is None:
            try:
                self.files = await asyncio.to_thread(read_files, self.settings.data)
            except Exception as exc:
                log.error("learned: plugins.learned.data cannot be used: %s", exc)
                self.files = []
        found = await self.database_outcomes.read() if self.settings.feedback or self.settings.profiles else []
        return found, [(data, self.settings.model_names) for data in self.files]

    async def start(self) -> None:
        self._wake = asyncio.Event()
        _ = self.trainer  # made (numpy, SciPy, Numba imported) before the gateway is ready, not in its first requests
        if self.embedder is not None:
            import faiss

            faiss.omp_set_num_threads(1)  # one search per request: more threads only add wake-up jitter
            if self.store is not None:
                await asyncio.to_thread(self.store.load)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="routerd-learned")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self.new_outcomes = 0
            try:
                await self.trainer.round()
            except Exception:
                log.exception("learned: a training round failed; the previous model (if any) stays")
            while True:
                try:
                    async with asyncio.timeout(self.settings.reload_interval):
                        await self._wake.wait()
                    break
                except TimeoutError:
                    if self.trainer.last_error is not None:  # the embeddings failed: try again
                        break
                    try:
                        if await self.database_outcomes.changed():
                            break
                    except Exception as exc:
                        log.warning("learned: looking for new outcomes failed: %s", type(exc).__name__)
            self._wake.clear()

    async def close(self) -> None:
        trainer = self.__dict__.get("trainer")
        if trainer is not None:
            trainer.stopping.set()  # a fit running in the training thread ends soon
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self.embeddings is not None:
            await self.embeddings.close()
        trainer = self.__dict__.get("trainer")  # made by `start` or a test; never made just to be closed
        if trainer is not None:
            trainer.close()
        close = getattr(self.embedder, "close", None)
        if close is not None:
            close()

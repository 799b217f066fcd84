"""The profiler: runs the suite against models, one model and one prompt at a time, and stores the results.

For each model: a short warm-up request (so that loading the model is not measured as the first prompt's
latency), then every suite prompt through the gateway's dispatcher, pinned to that model and streamed
(routerd_profiling.measure), each answer graded (routerd_profiling.grading). A prompt that fails is recorded with
its error and the suite goes on; after ``profiling.max_consecutive_failures`` failures in a row the model's
remaining prompts are recorded as skipped (a model that is down should not cost a timeout per prompt). The run is
stored in one transaction, one row per category (``context.profile_store``), and put in the gateway's in-memory
`ProfileIndex` (``context.profiles``) at once.

Which models are due: every chat model without a run for the current suite version that answered anything; a
model whose last run for it failed entirely is tried again after ``profiling.retry_interval``.

Giving way to clients (``profiling.yield_to_requests``, on by default): the profiler competes with users for the
same models (a llama.cpp server answers one request at a time), so before each step (the warm-up, each prompt,
each grading) it waits until no client request has been in flight for ``profiling.quiet_seconds``
(``context.traffic``), and a prompt or a grading runs pre-emptibly: a client request that arrives meanwhile
cancels it at once (its stream is closed, and the model stops generating), and it is done again after the next
quiet spell. A pre-empted prompt is neither a failure nor a timeout, and its timings are those of the attempt
that finished: waits are never measured. The warm-up is not pre-empted: it may be what starts the model's server,
which the client's request then needs too, and it asks for two tokens.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec

from routerd import (
    Judges,
    ModelInfo,
    Preempted,
    ProfileIndex,
    ProfileStore,
    PromptResult,
    ServedModels,
    StoredRun,
    Traffic,
    prompt_features,
    runtime_profile,
    summarise,
)
from routerd_profiling.grading import Verdict, grade
from routerd_profiling.measure import Measurement, measure, suite_request
from routerd_profiling.progress import Progress, ProgressReporter
from routerd_profiling.suite import Suite, SuitePrompt

log = logging.getLogger("routerd.plugin.profiling")
WARM_UP = "Reply with the word OK."
ANSWER_MAX = 2000  # characters of an answer kept in a profile (the most `PromptResult.answer` holds)
T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


class Profiler:
    """Profiles the models the gateway serves (``context.models``) with `suite`; `settings` is the gateway's
    ``[profiling]`` section (``context.config.profiling``); it gives way to the client requests `traffic` counts
    (``context.traffic``) when ``profiling.yield_to_requests`` is on."""

    def __init__(
        self,
        models: ServedModels,
        judges: Judges,
        store: ProfileStore,
        index: ProfileIndex,
        settings: Any,
        suite: Suite,
        traffic: Traffic,
    ) -> None:
        self.models = models
        self.judges = judges
        self.store = store
        self.index = index
        self.settings = settings
        self.suite = suite
        self.traffic = traffic
        self.progress: Progress | None = None  # the run in progress in this process, if any

    # -- which models ---------------------------------------------------------------------------------------
    def chat_models(self) -> list[ModelInfo]:
        """Every chat model served now, in the catalog's order."""
        return [info for info in self.models.all() if info.capabilities.chat]

    def chat_model(self, model: str) -> ModelInfo | None:
        """The chat model whose catalog id is `model`, or None."""
        info = self.models.get(model)
        return info if info is not None and info.capabilities.chat else None

    def skipped(self, info: ModelInfo) -> bool:
        """Whether ``profiling.skip`` keeps the background profiler away from this model."""
        return any(fnmatch.fnmatchcase(info.key, pattern) for pattern in self.settings.skip)

    def public_id(self, backend: str, name: str) -> str:
        """The model's catalog id, or ``backend/name`` for a model the catalog does not list now."""
        for info in self.models.all():
            if info.backend == backend and info.name == name:
                return info.key
        return f"{backend}/{name}"

    async def due(self, models: Sequence[ModelInfo], *, retrying: bool = False) -> list[ModelInfo]:
        """The models without a usable profile for the current suite version (see the module's doc); with
        `retrying`, models whose last run failed entirely are due at once."""
        attempts = await self.store.attempts(self.suite.suite_version)
        pause = 0.0 if retrying else self.settings.retry_interval
        retry_before = utcnow() - dt.timedelta(seconds=pause)
        due = []
        for info in models:
            runs = attempts.get((info.backend, info.name), [])
            if any(answered for _, answered in runs):
                continue
            if runs and runs[-1][0] > retry_before:
                continue
            due.append(info)
        return due

    # -- running --------------------------------------------------------------------------------------------
    async def run(self, models: Sequence[ModelInfo], reporter: ProgressReporter) -> list[StoredRun]:
        """Profile `models` one after another; a model whose run cannot be stored is logged and passed over."""
        prompts = len(self.suite.prompts)
        progress = Progress(
            models=[info.key for info in models], total=len(models) * prompts, suite_version=self.suite.suite_version
        )
        progress.prompts_per_model = prompts
        self.progress = progress
        runs: list[StoredRun] = []
        try:
            reporter.run_started(progress)
            for number, info in enumerate(models, 1):
                progress.model, progress.model_index = info.key, number
                progress.done = (number - 1) * prompts
                try:
                    run = await self.profile_model(info, progress, reporter)
                except Exception:
                    log.exception("profiling %s failed; its results are lost", info.key)
                    continue
                runs.append(run)
                reporter.model_finished(progress, run)
            progress.done = progress.total
            reporter.run_finished(progress)
        finally:
            self.progress = None
        return runs

    async def profile_model(self, info: ModelInfo, progress: Progress, reporter: ProgressReporter) -> StoredRun:
        await self._warm_up(info, progress)
        by_category: dict[str, list[PromptResult]] = {}
        failures = 0
        for number, prompt in enumerate(self.suite.prompts, 1):
            progress.category, progress.prompt, progress.prompt_index = prompt.category, prompt.id, number
            reporter.prompt_started(progress)
            if failures >= self.settings.max_consecutive_failures:
                reason = f"skipped: the model failed {failures} prompts in a row"
                result = PromptResult(id=prompt.id, prompt=prompt.prompt, score=None, method="skipped", judged=False)
                result.error = reason
            else:
                result = await self.answer(info, prompt, progress)
                failures = failures + 1 if result.method == "error" else 0
            by_category.setdefault(prompt.category, []).append(result)
            progress.done += 1
            reporter.prompt_finished(progress, result)
        run_id = uuid.uuid4().hex
        categories = [
            summarise(category, results, run_id=run_id, suite=self.suite.name, max_tokens=self.settings.max_tokens)
            for category, results in by_category.items()
        ]
        for category in categories:
            category.ttft_ms, category.latency_ms = _rounded(category.ttft_ms), _rounded(category.latency_ms)
            category.tokens_per_second = _rounded(category.tokens_per_second, 2)
        run = StoredRun(
            backend=info.backend,
            name=info.name,
            suite_version=self.suite.suite_version,
            profiled_at=utcnow(),
            run_id=run_id,
            categories=categories,
        )
        await self.store.store_run(run.backend, run.name, run.suite_version, run.profiled_at, categories)
        self.index.put(runtime_profile(run))
        return run

    # -- giving way to clients -------------------------------------------------------------------------------
    async def _give_way(self, progress: Progress | None) -> None:
        """Wait until no client request has been in flight for ``profiling.quiet_seconds`` (when yielding)."""
        if not self.settings.yield_to_requests:
            return
        if progress is not None:
            progress.paused = True
        try:
            await self.traffic.quiet(self.settings.quiet_seconds)
        finally:
            if progress is not None:
                progress.paused = False

    async def _pre_emptible(self, work: Callable[[], Awaitable[T]], what: str, progress: Progress | None) -> T:
        """`work()` after a quiet spell, pre-empted by client requests and then done again until it finishes (see
        the module's doc); without ``profiling.yield_to_requests``, at once."""
        if not self.settings.yield_to_requests:
            return await work()
        while True:
            await self._give_way(progress)
            try:
                async with self.traffic.yielding():
                    return await work()
            except Preempted:
                if progress is not None:
                    progress.preempted += 1
                log.info(
                    "profiling: %s pre-empted by a client request; again once the gateway has been quiet for %g s",
                    what,
                    self.settings.quiet_seconds,
                )

    # -- one prompt -----------------------------------------------------------------------------------------
    async def _warm_up(self, info: ModelInfo, progress: Progress | None = None) -> None:
        await self._give_way(progress)
        request = suite_request(WARM_UP, system=None, max_tokens=2)
        warm = await measure(self.models, info.key, request, seconds=self.settings.prompt_timeout)
        if warm.error:
            log.info("profiling %s: the warm-up request failed (%s)", info.key, warm.error)

    async def answer(self, info: ModelInfo, prompt: SuitePrompt, progress: Progress | None = None) -> PromptResult:
        """Ask the model one suite prompt, measure it, grade the answer; each step giving way to clients."""
        max_tokens = min(prompt.max_tokens or self.settings.max_tokens, self.settings.max_tokens)
        request = suite_request(prompt.prompt, system=prompt.system, max_tokens=max_tokens)
        timeout = self.settings.prompt_timeout

        def asking() -> Awaitable[Measurement]:
            return measure(self.models, info.key, request, seconds=timeout)

        measured = await self._pre_emptible(asking, f"{info.key}, prompt {prompt.id}", progress)
        result = PromptResult(
            id=prompt.id,
            prompt=prompt.prompt,
            score=None,
            method="error",
            judged=False,
            answer=measured.answer[:ANSWER_MAX],
            ttft_ms=_rounded(measured.ttft_ms),
            latency_ms=_rounded(measured.latency_ms),
            tokens=measured.tokens,
            tokens_per_second=_rounded(measured.tokens_per_second, 2),
            error=measured.error,
        )
        if measured.error is not None:
            return result
        features = msgspec.structs.replace(prompt_features(request), category=prompt.category)

        def grading() -> Awaitable[Verdict]:
            return grade(
                prompt, features, info.key, measured.answer, self.judges, judge_timeout=self.settings.judge_timeout
            )

        verdict = await self._pre_emptible(grading, f"{info.key}, grading prompt {prompt.id}", progress)
        result.score, result.method, result.judged = verdict.score, verdict.method, verdict.judged
        result.judge, result.reason, result.notes = verdict.judge, verdict.reason, verdict.notes
        return result

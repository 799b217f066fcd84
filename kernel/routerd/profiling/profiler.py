"""The profiler: runs the suite against models, one model and one prompt at a time, and stores the results.

For each model: a short warm-up request (so that loading the model is not measured as the first prompt's
latency), then every suite prompt through the dispatcher, pinned to that model and streamed (routerd.profiling.
measure), each answer graded (routerd.profiling.grading). A prompt that fails is recorded with its error and the
suite goes on; after ``profiling.max_consecutive_failures`` failures in a row the model's remaining prompts are
recorded as skipped (a model that is down should not cost a timeout per prompt). The run is stored in one
transaction, one row per category, and the in-memory `ProfileIndex` is updated at once.

Which models are due: every chat model without a run for the current suite version that answered anything; a
model whose last run for it failed entirely is tried again after ``profiling.retry_interval``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from routerd.catalog import Catalog, CatalogEntry
from routerd.config import ProfilingSettings
from routerd.db.database import Database
from routerd.dispatch import Dispatcher
from routerd.profiling.grading import grade
from routerd.profiling.index import ProfileIndex, runtime_profile
from routerd.profiling.measure import measure, suite_request
from routerd.profiling.progress import Progress, ProgressReporter
from routerd.profiling.repository import ProfileRepository
from routerd.profiling.results import ANSWER_MAX, PromptResult, StoredRun, summarise
from routerd.profiling.suite import Suite, SuitePrompt
from routerd.routing.features import extract_features

log = logging.getLogger("routerd.profiling")
WARM_UP = "Reply with the word OK."


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


class Profiler:
    def __init__(
        self,
        catalog: Catalog,
        dispatcher: Dispatcher,
        scorers: Mapping[str, Any],
        database: Database,
        settings: ProfilingSettings,
        suite: Suite,
        index: ProfileIndex,
    ) -> None:
        self.catalog = catalog
        self.dispatcher = dispatcher
        self.scorers = scorers  # the registry's scorers, by name: each is asked to judge, in turn
        self.settings = settings
        self.suite = suite
        self.index = index
        self.repository = ProfileRepository(database)
        self.progress: Progress | None = None  # the run in progress in this process, if any

    # -- which models ---------------------------------------------------------------------------------------
    def chat_models(self) -> list[CatalogEntry]:
        return [entry for entry in self.catalog if entry.info.capabilities.chat]

    def skipped(self, entry: CatalogEntry) -> bool:
        """Whether ``profiling.skip`` keeps the background profiler away from this model."""
        return any(fnmatch.fnmatchcase(entry.id, pattern) for pattern in self.settings.skip)

    async def due(self, entries: Sequence[CatalogEntry], *, retrying: bool = False) -> list[CatalogEntry]:
        """The entries without a usable profile for the current suite version (see the module's doc); with
        `retrying`, models whose last run failed entirely are due at once."""
        attempts = await self.repository.attempts(self.suite.suite_version)
        pause = 0.0 if retrying else self.settings.retry_interval
        retry_before = utcnow() - dt.timedelta(seconds=pause)
        due = []
        for entry in entries:
            runs = attempts.get((entry.info.backend, entry.info.name), [])
            if any(answered for _, answered in runs):
                continue
            if runs and runs[-1][0] > retry_before:
                continue
            due.append(entry)
        return due

    # -- running --------------------------------------------------------------------------------------------
    async def run(self, entries: Sequence[CatalogEntry], reporter: ProgressReporter) -> list[StoredRun]:
        """Profile `entries` one after another; a model whose run cannot be stored is logged and passed over."""
        prompts = len(self.suite.prompts)
        progress = Progress(
            models=[e.id for e in entries], total=len(entries) * prompts, suite_version=self.suite.suite_version
        )
        progress.prompts_per_model = prompts
        self.progress = progress
        runs: list[StoredRun] = []
        try:
            reporter.run_started(progress)
            for number, entry in enumerate(entries, 1):
                progress.model, progress.model_index = entry.id, number
                progress.done = (number - 1) * prompts
                try:
                    run = await self.profile_model(entry, progress, reporter)
                except Exception:
                    log.exception("profiling %s failed; its results are lost", entry.id)
                    continue
                runs.append(run)
                reporter.model_finished(progress, run)
            progress.done = progress.total
            reporter.run_finished(progress)
        finally:
            self.progress = None
        return runs

    async def profile_model(self, entry: CatalogEntry, progress: Progress, reporter: ProgressReporter) -> StoredRun:
        await self._warm_up(entry)
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
                result = await self.answer(entry, prompt)
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
            backend=entry.info.backend,
            name=entry.info.name,
            suite_version=self.suite.suite_version,
            profiled_at=utcnow(),
            run_id=run_id,
            categories=categories,
        )
        await self.repository.store_run(run.backend, run.name, run.suite_version, run.profiled_at, categories)
        self.index.put(runtime_profile(run))
        return run

    async def _warm_up(self, entry: CatalogEntry) -> None:
        request = suite_request(WARM_UP, system=None, max_tokens=2)
        warm = await measure(self.dispatcher, entry, request, seconds=self.settings.prompt_timeout)
        if warm.error:
            log.info("profiling %s: the warm-up request failed (%s)", entry.id, warm.error)

    async def answer(self, entry: CatalogEntry, prompt: SuitePrompt) -> PromptResult:
        """Ask `entry` one suite prompt, measure it, grade the answer."""
        max_tokens = min(prompt.max_tokens or self.settings.max_tokens, self.settings.max_tokens)
        request = suite_request(prompt.prompt, system=prompt.system, max_tokens=max_tokens)
        measured = await measure(self.dispatcher, entry, request, seconds=self.settings.prompt_timeout)
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
        features = msgspec.structs.replace(extract_features(request), category=prompt.category)
        verdict = await grade(
            prompt, features, entry.id, measured.answer, self.scorers, judge_timeout=self.settings.judge_timeout
        )
        result.score, result.method, result.judged = verdict.score, verdict.method, verdict.judged
        result.judge, result.reason, result.notes = verdict.judge, verdict.reason, verdict.notes
        return result

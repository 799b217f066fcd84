"""Progress of a profiling run: where it is (model, category, prompt), how far (percent) and how long it may
still take (ETA), for the command line's progress bar, the server's log and ``GET /admin/profiles``.

The profiler updates one `Progress` and tells a `ProgressReporter` after each step; `LogReporter` writes a line
per prompt at info level, the command line draws a bar (routerd_profiling.cli).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("routerd.plugin.profiling")


@dataclass
class Progress:
    models: list[str]  # the public ids of the models of this run, in order
    total: int  # prompts in all (models x suite)
    suite_version: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0  # prompts finished (answered, failed or skipped)
    model: str | None = None
    model_index: int = 0  # 1-based
    category: str | None = None
    prompt: str | None = None
    prompt_index: int = 0  # 1-based, within the model's suite
    prompts_per_model: int = 0
    paused: bool = False  # waiting for the gateway to be quiet (profiling.yield_to_requests)
    preempted: int = 0  # prompts and gradings a client request pre-empted (each done again later)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far; None before the first prompt is done."""
        if not self.done:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.done * (self.total - self.done)

    def describe(self) -> dict[str, Any]:
        eta = self.eta_seconds
        return {
            "suite_version": self.suite_version,
            "models": self.models,
            "model": self.model,
            "model_index": self.model_index,
            "category": self.category,
            "prompt": self.prompt,
            "prompt_index": self.prompt_index,
            "prompts_per_model": self.prompts_per_model,
            "paused": self.paused,
            "preempted": self.preempted,
            "done": self.done,
            "total": self.total,
            "percent": round(100 * self.fraction, 1),
            "eta_seconds": round(eta, 1) if eta is not None else None,
        }


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA unknown"
    seconds = round(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}h{minutes:02d}m" if hours else f"ETA {minutes}m{secs:02d}s" if minutes else f"ETA {secs}s"


class ProgressReporter(Protocol):
    def run_started(self, progress: Progress) -> None: ...
    def prompt_started(self, progress: Progress) -> None: ...
    def prompt_finished(self, progress: Progress, result: Any) -> None: ...
    def model_finished(self, progress: Progress, run: Any) -> None: ...
    def run_finished(self, progress: Progress) -> None: ...


class LogReporter:
    """The server's log of a run: a line per model and per prompt at info level."""

    def run_started(self, progress: Progress) -> None:
        log.info(
            "profiling %d model(s) with suite %s: %s",
            len(progress.models),
            progress.suite_version,
            ", ".join(progress.models),
        )

    def prompt_started(self, progress: Progress) -> None:
        if progress.prompt_index == 1:
            log.info("profiling %s (model %d of %d)", progress.model, progress.model_index, len(progress.models))

    def prompt_finished(self, progress: Progress, result: Any) -> None:
        if result.score is None:
            outcome = f"failed: {result.error}"
        else:
            outcome = f"{result.score:.2f} {result.method}"
            if result.latency_ms is not None:
                outcome += f", {result.latency_ms / 1000:.1f} s"
            if result.tokens_per_second:
                outcome += f", {result.tokens_per_second:.0f} tok/s"
        log.info(
            "profiling %s: %s prompt %d/%d %s: %s (%.0f%% done, %s)",
            progress.model,
            progress.category,
            progress.prompt_index,
            progress.prompts_per_model,
            progress.prompt,
            outcome,
            100 * progress.fraction,
            format_eta(progress.eta_seconds),
        )

    def model_finished(self, progress: Progress, run: Any) -> None:
        parts = [
            f"{c.category} {c.quality:.2f}" if c.quality is not None else f"{c.category} failed" for c in run.categories
        ]
        log.info("profiled %s: %s", progress.model, "; ".join(parts))

    def run_finished(self, progress: Progress) -> None:
        log.info("profiling done: %d model(s) in %.0f s", len(progress.models), time.monotonic() - progress.started)

"""A benchmark provider publishing a team's own figures, from its settings."""

from __future__ import annotations

import datetime as dt

import msgspec

import routerd


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    scores: dict[str, dict[str, float]] = {}


class HouseEvals:
    def __init__(self, name: str, scores: dict[str, dict[str, float]]) -> None:
        self.name = name
        self.scores = scores

    async def fetch(self) -> list[routerd.BenchmarkRecord]:
        now = dt.datetime.now(dt.UTC)
        return [
            routerd.BenchmarkRecord(self.name, model, benchmark, value, now)
            for model, figures in sorted(self.scores.items())
            for benchmark, value in sorted(figures.items())
        ]


@routerd.hookimpl
def register_benchmark_providers(register, context):
    register(HouseEvals(context.name, context.settings.scores))

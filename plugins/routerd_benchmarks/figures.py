"""From stored benchmark figures to a quality score per model and prompt category.

Each category reads the benchmarks that measure what its prompts need (`CATEGORY_BENCHMARKS`). Figures are on
different scales (a normalised MATH score runs to about 70, GPQA to about 30, an Arena rating around 1,000-1,500),
so each is turned into its percentile among every model its source publishes: 0.9 means better than nine in ten
published models. A model's score for a category is the mean percentile of the category's benchmarks it has
figures for, and its weight grows with how many of them it has.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from routerd import BenchmarkRecord, Contribution
from routerd_benchmarks.merge import Figure

# What each prompt category's answers need, by benchmark (routerd.stores.benchmark_screening.BENCHMARKS):
CATEGORY_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "math": ("math_lvl_5", "gpqa"),  # competition maths; graduate science questions need calculation
    "reasoning": ("bbh", "musr", "gpqa", "mmlu_pro"),  # multi-step reasoning and knowledge
    "coding": ("bbh", "mmlu_pro", "arena_elo"),  # no coding benchmark is published: algorithmic reasoning + votes
    "general": ("arena_elo", "ifeval", "open_llm_average"),  # human preference, instruction following
    "creativity": ("arena_elo", "ifeval"),
    "summarization": ("ifeval", "arena_elo"),
    "translation": ("arena_elo", "mmlu_pro"),
}

LABELS = {
    "open_llm_average": "Open LLM average",
    "ifeval": "IFEval",
    "bbh": "BBH",
    "math_lvl_5": "MATH lvl 5",
    "gpqa": "GPQA",
    "musr": "MuSR",
    "mmlu_pro": "MMLU-Pro",
    "arena_elo": "Arena rating",
}


class Populations:
    """Every published value of each (source, benchmark), sorted: what a figure's percentile is taken among."""

    def __init__(self, records: Iterable[BenchmarkRecord]) -> None:
        values: dict[tuple[str, str], list[float]] = {}
        for record in records:
            values.setdefault((record.source, record.benchmark), []).append(record.value)
        self.sorted = {key: sorted(map(float, found)) for key, found in values.items()}

    def percentile(self, source: str, benchmark: str, value: float) -> tuple[float, int, int]:
        """(the share of published models below `value`, ties counting half; its rank, 1 the best; how many
        models were published)."""
        population = self.sorted.get((source, benchmark))
        if population is None or not len(population):
            return 0.5, 1, 1
        below = bisect.bisect_left(population, value)
        upto = bisect.bisect_right(population, value)
        size = len(population)
        return (below + upto) / 2 / size, size - upto + 1, size


@dataclass(frozen=True)
class CategoryScore:
    score: float
    known: int  # how many of the category's benchmarks the model has figures for
    wanted: int
    reason: str


def category_score(
    category: str,
    figures: Mapping[str, Figure],
    populations: Populations,
    benchmarks: Sequence[str],
) -> CategoryScore | None:
    """A model's score for one category from its merged figures; None when it has none of the benchmarks."""
    parts: list[float] = []
    cited: dict[tuple[str, str], list[str]] = {}  # (source, published name) -> its figures
    published: dict[tuple[str, str], int] = {}
    for benchmark in benchmarks:
        figure = figures.get(benchmark)
        if figure is None:
            continue
        share, rank, population = populations.percentile(figure.source, benchmark, figure.value)
        parts.append(share)
        key = (figure.source, figure.source_model)
        cited.setdefault(key, []).append(f"{LABELS.get(benchmark, benchmark)} {figure.value:g} (#{rank})")
        published[key] = max(published.get(key, 0), population)
    if not parts:
        return None
    score = sum(parts) / len(parts)
    sources = "; ".join(
        f"{', '.join(found)} of {published[key]:,} models on {key[0]} (as {key[1]})" for key, found in cited.items()
    )
    reason = f"{category}: {sources}"
    return CategoryScore(score, len(parts), len(benchmarks), reason)


def contributions(
    figures: Mapping[str, Figure],
    populations: Populations,
    mapping: Mapping[str, Sequence[str]],
    weight: float,
) -> dict[str, Contribution]:
    """A model's contribution per category, ready for the request path."""
    found = {}
    for category, benchmarks in mapping.items():
        scored = category_score(category, figures, populations, benchmarks)
        if scored is not None:
            coverage = scored.known / scored.wanted
            found[category] = Contribution(scored.score, weight * (0.5 + 0.5 * coverage), scored.reason)
    return found

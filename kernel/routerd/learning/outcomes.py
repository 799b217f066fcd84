"""Known outcomes as (prompt, model, score) triples, and the table the quality models train on.

Every source of outcomes speaks the same triples: a line of an evaluation file gives one per model it scores, a
rating of a routed answer one for the model that answered, a profiling run one per judged suite prompt. A model
trains on what is known: `table` gathers triples into one row per distinct prompt and one column per model, the
mean where a prompt has several outcomes for a model, NaN where it has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from routerd.learning.dataset import ScoredPrompts

OutcomeTriple = tuple[str, str, float]  # (prompt, model, score in 0..1)


@dataclass(frozen=True)
class OutcomeTable:
    """`scores[i, j]`: the mean known score of `models[j]` on `prompts[i]` (NaN: unknown), the mean of
    `outcomes[i, j]` outcomes; `counts[j]`: how many prompts know model j."""

    prompts: list[str]
    models: list[str]
    scores: np.ndarray
    outcomes: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)


def table(outcomes: Iterable[OutcomeTriple]) -> OutcomeTable:
    """Gather triples into an `OutcomeTable`; empty prompts and scores outside 0..1 (or not numbers) are skipped."""
    rows: dict[str, int] = {}
    columns: dict[str, int] = {}
    cells: dict[tuple[int, int], list[float]] = {}
    for prompt, model, score in outcomes:
        if not prompt or not model or not isinstance(score, int | float) or not 0.0 <= score <= 1.0:
            continue
        key = (rows.setdefault(prompt, len(rows)), columns.setdefault(model, len(columns)))
        cell = cells.get(key)
        if cell is None:
            cells[key] = [float(score), 1.0]
        else:
            cell[0] += score
            cell[1] += 1
    scores = np.full((len(rows), len(columns)), np.nan)
    outcomes = np.zeros((len(rows), len(columns)))
    for (i, j), (total, n) in cells.items():
        scores[i, j] = total / n
        outcomes[i, j] = n
    return OutcomeTable(list(rows), list(columns), scores, outcomes, (~np.isnan(scores)).sum(axis=0))


def from_scored_prompts(data: ScoredPrompts, names: Mapping[str, str] | None = None) -> Iterator[OutcomeTriple]:
    """The triples of an evaluation file (`routerd.learning.dataset.read_scored_prompts`), with its model names
    translated by `names` (a name it does not list stays as it is)."""
    names = names or {}
    models = [names.get(m, m) for m in data.models]
    for prompt, row in zip(data.prompts, data.scores.tolist(), strict=True):
        for model, score in zip(models, row, strict=True):
            if score == score:  # not NaN
                yield prompt, model, score

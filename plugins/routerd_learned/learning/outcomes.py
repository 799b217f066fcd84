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

from routerd_learned.learning.dataset import ScoredPrompts

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


def table(
    outcomes: Iterable[OutcomeTriple] = (), blocks: Iterable[tuple[ScoredPrompts, Mapping[str, str]]] = ()
) -> OutcomeTable:
    """Gather outcomes into an `OutcomeTable`: `outcomes` as triples (empty prompts and scores outside 0..1, or
    not numbers, are skipped), `blocks` as whole evaluation files with their model names translated (a name
    a mapping does not list stays as it is). Built with numpy from flat lists, so a large file makes a few
    objects, not one per outcome (the garbage collector would walk them all, holding up the gateway)."""
    rows: dict[str, int] = {}
    columns: dict[str, int] = {}
    found_rows: list[np.ndarray] = []
    found_columns: list[np.ndarray] = []
    found_scores: list[np.ndarray] = []
    for data, names in blocks:
        row_ids = np.array([rows.setdefault(p, len(rows)) for p in data.prompts], dtype=np.int64)
        column_ids = np.array([columns.setdefault(names.get(m, m), len(columns)) for m in data.models], np.int64)
        i, j = np.nonzero(~np.isnan(data.scores))
        found_rows.append(row_ids[i])
        found_columns.append(column_ids[j])
        found_scores.append(data.scores[i, j])
    triple_rows: list[int] = []
    triple_columns: list[int] = []
    triple_scores: list[float] = []
    for prompt, model, score in outcomes:
        if not prompt or not model or not isinstance(score, int | float) or not 0.0 <= score <= 1.0:
            continue
        triple_rows.append(rows.setdefault(prompt, len(rows)))
        triple_columns.append(columns.setdefault(model, len(columns)))
        triple_scores.append(float(score))
    found_rows.append(np.array(triple_rows, dtype=np.int64))
    found_columns.append(np.array(triple_columns, dtype=np.int64))
    found_scores.append(np.array(triple_scores, dtype=np.float64))
    where = (np.concatenate(found_rows), np.concatenate(found_columns))
    totals = np.zeros((len(rows), len(columns)))
    outcomes_per_cell = np.zeros((len(rows), len(columns)))
    np.add.at(totals, where, np.concatenate(found_scores))
    np.add.at(outcomes_per_cell, where, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(outcomes_per_cell > 0, totals / outcomes_per_cell, np.nan)
    return OutcomeTable(list(rows), list(columns), scores, outcomes_per_cell, (outcomes_per_cell > 0).sum(axis=0))


def from_scored_prompts(data: ScoredPrompts, names: Mapping[str, str] | None = None) -> Iterator[OutcomeTriple]:
    """The triples of an evaluation file (`routerd_learned.learning.dataset.read_scored_prompts`), with its model names
    translated by `names` (a name it does not list stays as it is)."""
    names = names or {}
    models = [names.get(m, m) for m in data.models]
    for prompt, row in zip(data.prompts, data.scores.tolist(), strict=True):
        for model, score in zip(models, row, strict=True):
            if score == score:  # not NaN
                yield prompt, model, score

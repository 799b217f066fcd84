"""Prompts with known outcomes: the JSONL files the learned quality models train and are evaluated on.

One JSON object a line::

    {"id": "q1", "prompt": "...", "scores": {"model-a": 1.0, "model-b": 0.0}, "costs": {"model-a": 0.002, ...}}

`scores` are qualities in 0..1 (a correct answer, a judge's grade, a user's rating); every line scores the same
models. `costs` (USD per call) is optional; without it, a prices file (USD per million input and output tokens per
model, as ../shared/eval/routing/models.json) gives an estimate from the prompt's length. Any other key (``source``,
...) is ignored: routers see the prompt text only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routerd_learned.learning import LearningError

CHARS_PER_TOKEN = 4  # the gateway's usage estimate uses the same ratio
DEFAULT_OUTPUT_TOKENS = 256


class DatasetError(LearningError, ValueError):
    """A data or prices file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Price:
    """List prices of a model in USD per million tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def call_cost(self, input_tokens: float, output_tokens: float) -> float:
        return (input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok) / 1e6


@dataclass(frozen=True)
class ScoredPrompts:
    """Prompts with a known quality per model: `scores[i, j]` is model `models[j]` on `prompts[i]`.

    `costs` has the same shape in USD per call, or is None when unknown; `cost_source` says where it came from
    (``"data"``, ``"prices"`` or ``"unknown"``).
    """

    ids: list[str]
    prompts: list[str]
    models: list[str]
    scores: np.ndarray
    costs: np.ndarray | None = None
    cost_source: str = "unknown"

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, index: Sequence[int] | np.ndarray) -> ScoredPrompts:
        index = np.asarray(index, dtype=np.int64)
        return ScoredPrompts(
            ids=[self.ids[i] for i in index],
            prompts=[self.prompts[i] for i in index],
            models=list(self.models),
            scores=self.scores[index],
            costs=None if self.costs is None else self.costs[index],
            cost_source=self.cost_source,
        )

    def with_prices(self, prices: Mapping[str, Price], output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> ScoredPrompts:
        """The same prompts with costs estimated from `prices`, unless the data had its own costs."""
        if self.costs is not None:
            return self
        missing = [m for m in self.models if m not in prices]
        if missing:
            raise DatasetError(f"the prices file has no price for {', '.join(missing)}")
        costs = estimate_costs(self.prompts, [prices[m] for m in self.models], output_tokens)
        return ScoredPrompts(self.ids, self.prompts, self.models, self.scores, costs, "prices")


def estimate_costs(prompts: Sequence[str], prices: Sequence[Price], output_tokens: int) -> np.ndarray:
    """USD per call of each model on each prompt: input tokens from the prompt's length, a fixed answer length."""
    input_tokens = np.array([max(1, len(p) // CHARS_PER_TOKEN) for p in prompts], dtype=np.float64)
    per_input = np.array([p.input_usd_per_mtok for p in prices]) / 1e6
    per_output = np.array([p.output_usd_per_mtok for p in prices]) / 1e6
    return input_tokens[:, None] * per_input[None, :] + output_tokens * per_output[None, :]


def read_scored_prompts(path: str | Path) -> ScoredPrompts:
    """Read a JSONL file of scored prompts; raise `DatasetError` naming the first bad line."""
    path = Path(path)
    ids: list[str] = []
    prompts: list[str] = []
    rows: list[list[float]] = []
    cost_rows: list[list[float] | None] = []
    models: list[str] | None = None
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{where}: expected a JSON object")
            prompt = record.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise DatasetError(f"{where}: missing 'prompt' (a non-empty string)")
            scores = _numbers(record.get("scores"), "scores", where, upper=1.0)
            if models is None:
                models = sorted(scores)
            elif set(scores) != set(models):
                missing = sorted(set(models) - set(scores))
                extra = sorted(set(scores) - set(models))
                detail = "; ".join(
                    part
                    for part in (
                        f"no score for {', '.join(missing)}" if missing else "",
                        f"unexpected {', '.join(extra)}" if extra else "",
                    )
                    if part
                )
                raise DatasetError(f"{where}: 'scores' must name the same models as line 1's ({detail})")
            costs = record.get("costs")
            if costs is not None:
                costs = _numbers(costs, "costs", where, upper=None)
                if set(costs) != set(models):
                    raise DatasetError(f"{where}: 'costs' must name the same models as 'scores'")
            if cost_rows and (costs is None) != (cost_rows[0] is None):
                raise DatasetError(f"{where}: 'costs' must be given on every line or on none")
            ids.append(str(record.get("id", f"line-{number}")))
            prompts.append(prompt)
            rows.append([scores[m] for m in models])
            cost_rows.append(None if costs is None else [costs[m] for m in models])
    if models is None:
        raise DatasetError(f"{path}: no data")
    if len(models) < 2:
        raise DatasetError(f"{path}: routing needs scores for at least two models, found {models}")
    has_costs = cost_rows[0] is not None
    return ScoredPrompts(
        ids=ids,
        prompts=prompts,
        models=models,
        scores=np.array(rows, dtype=np.float64),
        costs=np.array(cost_rows, dtype=np.float64) if has_costs else None,
        cost_source="data" if has_costs else "unknown",
    )


def _numbers(value: Any, key: str, where: str, upper: float | None) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise DatasetError(f"{where}: missing '{key}' (an object of model name -> number)")
    numbers: dict[str, float] = {}
    for model, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise DatasetError(f"{where}: '{key}' of {model!r} is not a number: {number!r}")
        if number < 0 or (upper is not None and number > upper):
            bound = f"0..{upper:g}" if upper is not None else ">= 0"
            raise DatasetError(f"{where}: '{key}' of {model!r} must be {bound}, got {number!r}")
        numbers[model] = float(number)
    return numbers


def read_prices(path: str | Path) -> dict[str, Price]:
    """A prices file: ``{model: {"input_usd_per_mtok": x, "output_usd_per_mtok": y}}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected an object of model name -> prices")
    prices: dict[str, Price] = {}
    for model, entry in data.items():
        fields = ("input_usd_per_mtok", "output_usd_per_mtok")
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), int | float) for f in fields):
            raise DatasetError(f"{path}: {model!r} needs numbers {fields[0]} and {fields[1]}")
        prices[model] = Price(float(entry[fields[0]]), float(entry[fields[1]]))
    return prices


def split(data: ScoredPrompts, test_fraction: float, seed: int) -> tuple[ScoredPrompts, ScoredPrompts]:
    """A reproducible random split into (train, test): the same seed and data give the same split."""
    if not 0 < test_fraction < 1:
        raise DatasetError(f"the test fraction must be between 0 and 1, got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(data))
    n_test = round(len(data) * test_fraction)
    if n_test < 1 or n_test >= len(data):
        raise DatasetError(f"{len(data)} prompts cannot be split with a test fraction of {test_fraction}")
    return data.subset(np.sort(order[n_test:])), data.subset(np.sort(order[:n_test]))

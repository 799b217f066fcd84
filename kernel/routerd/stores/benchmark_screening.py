"""The whitelist of benchmark figures the kernel stores, and the screening of what providers return.

What a provider returns is untrusted: a third-party plugin, or a payload fetched from the internet. Every record
is checked field by field: its keys against `RECORD_FIELDS`, its benchmark against the whitelist, its value's
type and range, its model name's length and characters. A record that fails a check is refused with one
`Refusal` per failing field, naming the field and the reason; the rest of the payload is still used. Only
screened records reach the database, and only as bound parameters.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from routerd.schemas.catalog import BenchmarkRecord


@dataclass(frozen=True)
class Benchmark:
    """A benchmark the kernel accepts: its name in `BenchmarkRecord.benchmark` and its value range."""

    name: str
    description: str
    low: float = 0.0
    high: float = 100.0


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("open_llm_average", "Open LLM Leaderboard v2: the average of its six benchmarks (0-100)"),
        Benchmark("ifeval", "IFEval: following verifiable instructions (normalised, 0-100)"),
        Benchmark("bbh", "BIG-Bench Hard: multi-step reasoning (normalised, 0-100)"),
        Benchmark("math_lvl_5", "MATH level 5: competition mathematics (normalised, 0-100)"),
        Benchmark("gpqa", "GPQA: graduate-level science questions (normalised, 0-100)"),
        Benchmark("musr", "MuSR: multi-step soft reasoning over long narratives (normalised, 0-100)"),
        Benchmark("mmlu_pro", "MMLU-Pro: knowledge and reasoning, ten choices (normalised, 0-100)"),
        Benchmark("arena_elo", "LMArena (Chatbot Arena): rating from human preference votes", 0.0, 5000.0),
    )
}
"""The benchmarks every gateway accepts. ``benchmarks.extra_benchmarks`` adds names for an operator's own
providers (any finite value)."""

RECORD_FIELDS = ("source", "model", "benchmark", "value", "fetched_at")
"""The fields of a record; a record given as a mapping with any other key is refused."""

MODEL_NAME_MAX = 400  # the width of benchmark_records.model
BENCHMARK_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Refusal:
    """One field of one record that was not accepted, and why."""

    index: int  # the record's position in what the provider returned
    model: str | None  # the record's model, when it could be read
    field: str
    reason: str

    def __str__(self) -> str:
        model = f" ({_shorten(self.model)})" if self.model is not None else ""
        return f"record {self.index}{model}: {self.field}: {self.reason}"


@dataclass
class Screened:
    """What screening kept and what it refused. `empty` counts figures the source left blank (a null value),
    `duplicates` later records of a (model, benchmark) already seen: neither is an error."""

    records: list[BenchmarkRecord] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    empty: int = 0
    duplicates: int = 0


def allowed_benchmarks(extra: Iterable[str] = ()) -> dict[str, Benchmark]:
    """The whitelist: the kernel's benchmarks plus `extra` names (any finite value)."""
    allowed = dict(BENCHMARKS)
    for name in extra:
        if name not in allowed:
            allowed[name] = Benchmark(name, "an operator's own benchmark", -math.inf, math.inf)
    return allowed


def _shorten(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    return type(value).__name__


def _fields_of(item: Any, index: int) -> tuple[dict[str, Any], list[Refusal]]:
    """The record's fields as a dict, and a refusal for every key that is not a record field."""
    if isinstance(item, BenchmarkRecord):
        return {name: getattr(item, name) for name in RECORD_FIELDS}, []
    if isinstance(item, Mapping):
        model = item.get("model")
        model = model if isinstance(model, str) else None
        reason = f"unknown field (a record has only {', '.join(RECORD_FIELDS)})"
        unknown = [Refusal(index, model, _shorten(key, 40), reason) for key in item if key not in RECORD_FIELDS]
        return {name: item.get(name) for name in RECORD_FIELDS}, unknown
    return {}, [Refusal(index, None, "record", f"expected a BenchmarkRecord, got {_type_name(item)}")]


def _check_model(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a string, got {_type_name(value)}"
    if not value.strip():
        return "empty"
    if len(value) > MODEL_NAME_MAX:
        return f"longer than {MODEL_NAME_MAX} characters"
    if _CONTROL.search(value):
        return "contains control characters"
    return None


def _check_value(value: Any, benchmark: Benchmark | None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {_type_name(value)} {_shorten(value, 40)}"
    if not math.isfinite(value):
        return f"not a finite number: {value}"
    if benchmark is not None and not benchmark.low <= value <= benchmark.high:
        return f"{value} is outside {benchmark.name}'s range {benchmark.low:g}..{benchmark.high:g}"
    return None


def _check_fetched_at(value: Any) -> str | None:
    if value is None or isinstance(value, dt.datetime):
        return None
    return f"expected a datetime, got {_type_name(value)}"


def screen(
    source: str,
    items: Iterable[Any],
    *,
    allowed: Mapping[str, Benchmark] | None = None,
    now: dt.datetime | None = None,
) -> Screened:
    """Check every record `source` returned; keep the good ones, refuse the rest field by field.

    A null value is a figure the source left blank: skipped, not refused. The first record of a
    (model, benchmark) pair wins; later ones are counted as duplicates.
    """
    allowed = BENCHMARKS if allowed is None else allowed
    now = now or dt.datetime.now(dt.UTC)
    result = Screened()
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        data, refusals = _fields_of(item, index)
        if not data:
            result.refusals.extend(refusals)
            continue
        model = data["model"] if isinstance(data["model"], str) else None
        if data["value"] is None and not refusals:
            result.empty += 1
            continue
        if data["source"] != source:
            refusals.append(Refusal(index, model, "source", f"{_shorten(data['source'], 40)} is not this provider"))
        if reason := _check_model(data["model"]):
            refusals.append(Refusal(index, model, "model", reason))
        benchmark = data["benchmark"]
        spec = allowed.get(benchmark) if isinstance(benchmark, str) else None
        if spec is None:
            refusals.append(Refusal(index, model, "benchmark", f"{_shorten(benchmark, 40)} is not a known benchmark"))
        if reason := _check_value(data["value"], spec):
            refusals.append(Refusal(index, model, "value", reason))
        if reason := _check_fetched_at(data["fetched_at"]):
            refusals.append(Refusal(index, model, "fetched_at", reason))
        if refusals:
            result.refusals.extend(refusals)
            continue
        key = (data["model"].strip(), benchmark)
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        fetched_at = data["fetched_at"] or now
        if fetched_at.tzinfo is None:
            fetched_at = fetched_at.replace(tzinfo=dt.UTC)
        result.records.append(BenchmarkRecord(source, key[0], benchmark, float(data["value"]), fetched_at))
    return result

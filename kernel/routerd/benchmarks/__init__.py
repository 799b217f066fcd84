"""Public benchmark figures: what the kernel accepts from benchmark providers (`fields`), how it pairs the
catalog's model names with published ones (`matching`), how it merges several sources (`merge`), and how it
stores them (`repository`). `download` is a toolkit for provider plugins. The sync job is
`routerd.jobs.benchmark_sync`."""

from routerd.benchmarks.fields import BENCHMARKS, RECORD_FIELDS, Benchmark, Refusal, Screened, records_from_row, screen
from routerd.benchmarks.matching import ModelKey, ModelMatcher, match_model, parse
from routerd.benchmarks.merge import BenchmarkIndex, Figure, MergedModel, merge

__all__ = [
    "BENCHMARKS",
    "RECORD_FIELDS",
    "Benchmark",
    "BenchmarkIndex",
    "Figure",
    "MergedModel",
    "ModelKey",
    "ModelMatcher",
    "Refusal",
    "Screened",
    "match_model",
    "merge",
    "parse",
    "records_from_row",
    "screen",
]

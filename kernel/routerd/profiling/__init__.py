"""Profiling: the suite, the profiler, and the runtime profiles scorers read (docs/profiling.md).

Plugins see the profiles through ``context.profiles``, a `ProfileIndex` of each model's latest
`RuntimeProfile` (per category, a `CategoryProfile`)."""

from routerd.profiling.index import CategoryProfile, ProfileIndex, RuntimeProfile

__all__ = ["CategoryProfile", "ProfileIndex", "RuntimeProfile"]

"""What the gateway keeps in its database for plugins to read and write through public interfaces, never through
the tables themselves: profiling runs (`ProfileStore`) and their in-memory index (`ProfileIndex`), and the synced
public benchmark figures (`BenchmarkStore`)."""

from routerd.stores.benchmark_screening import BENCHMARKS, Benchmark
from routerd.stores.benchmark_store import BenchmarkStore, SyncStatus
from routerd.stores.profile_index import CategoryProfile, ProfileIndex, RuntimeProfile, runtime_profile
from routerd.stores.profile_results import CategoryResult, ProfileDetails, PromptResult, StoredRun, summarise
from routerd.stores.profile_store import ProfileStore

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "BenchmarkStore",
    "CategoryProfile",
    "CategoryResult",
    "ProfileDetails",
    "ProfileIndex",
    "ProfileStore",
    "PromptResult",
    "RuntimeProfile",
    "StoredRun",
    "SyncStatus",
    "runtime_profile",
    "summarise",
]

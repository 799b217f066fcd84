"""routerd: a self-hosted, OpenAI-compatible LLM gateway.

This module is the public API for plugin authors (docs/plugins.md, "Internals for plugins"): the names in
``__all__`` and the modules it names (`routerd.toolkit`, for plugins that call HTTP services); everything else
may change between versions. Builtin plugins import nothing else, and a test keeps it so.

The names below the protocols and schemas are the gateway's shared services as plugins see them through their
`PluginContext`; they are loaded on first use, so ``import routerd`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from routerd.config import explain_validation_error, mask_secrets
from routerd.context import PluginContext
from routerd.errors import (
    AuthenticationFailed,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    PluginError,
    RateLimited,
    RouterdError,
)
from routerd.hookspecs import hookimpl
from routerd.plugins import require_modules
from routerd.protocols import Authenticator, Backend, BenchmarkProvider, Cache, Job, Judge, Learner, Scorer, Skill
from routerd.schemas.catalog import (
    ANONYMOUS,
    AuthRequest,
    BenchmarkRecord,
    Capabilities,
    Contribution,
    Judgement,
    ModelInfo,
    Outcome,
    Principal,
    PromptFeatures,
)
from routerd.schemas.openai import (
    AnswerMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    ContentPart,
    Delta,
    Embedding,
    EmbeddingResponse,
    FunctionCall,
    ImageURL,
    Message,
    StreamOptions,
    ToolCall,
    Usage,
)
from routerd.schemas.pipeline import CachedAnswer, CacheQuery
from routerd.served_models import ServedModels

if TYPE_CHECKING:
    from routerd import toolkit
    from routerd.db.database import Database, DatabaseUnavailable
    from routerd.decisions import DecisionLog, DecisionView, Rating
    from routerd.embedding import GatewayEmbedder
    from routerd.judging import Judges, JudgeVerdict
    from routerd.routing.features import CATEGORIES as PROMPT_CATEGORIES
    from routerd.routing.features import extract_features as prompt_features
    from routerd.stores import (
        Benchmark,
        BenchmarkStore,
        CategoryProfile,
        CategoryResult,
        ProfileDetails,
        ProfileIndex,
        ProfileStore,
        PromptResult,
        RuntimeProfile,
        StoredRun,
        SyncStatus,
        runtime_profile,
        summarise,
    )
    from routerd.traffic import Preempted, Traffic

__version__ = "0.1.0"

# Loaded on first use: name -> (module, attribute; None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "toolkit": ("routerd.toolkit", None),
    "Database": ("routerd.db.database", "Database"),
    "DatabaseUnavailable": ("routerd.db.database", "DatabaseUnavailable"),
    "PROMPT_CATEGORIES": ("routerd.routing.features", "CATEGORIES"),
    "DecisionLog": ("routerd.decisions", "DecisionLog"),
    "DecisionView": ("routerd.decisions", "DecisionView"),
    "Rating": ("routerd.decisions", "Rating"),
    "GatewayEmbedder": ("routerd.embedding", "GatewayEmbedder"),
    "Judges": ("routerd.judging", "Judges"),
    "JudgeVerdict": ("routerd.judging", "JudgeVerdict"),
    "prompt_features": ("routerd.routing.features", "extract_features"),
    "Preempted": ("routerd.traffic", "Preempted"),
    "Traffic": ("routerd.traffic", "Traffic"),
    **{
        name: ("routerd.stores", name)
        for name in (
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
        )
    },
}


def __getattr__(name: str) -> Any:
    found = _LAZY.get(name)
    if found is None:
        raise AttributeError(f"module 'routerd' has no attribute {name!r}")
    module = importlib.import_module(found[0])
    value = module if found[1] is None else getattr(module, found[1])
    globals()[name] = value
    return value


__all__ = [
    "ANONYMOUS",
    "PROMPT_CATEGORIES",
    "AnswerMessage",
    "AuthRequest",
    "AuthenticationFailed",
    "Authenticator",
    "Backend",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "Benchmark",
    "BenchmarkProvider",
    "BenchmarkRecord",
    "BenchmarkStore",
    "Cache",
    "CacheQuery",
    "CachedAnswer",
    "Capabilities",
    "CategoryProfile",
    "CategoryResult",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatRequest",
    "Choice",
    "ChunkChoice",
    "ConfigError",
    "ContentPart",
    "ContextLengthExceeded",
    "Contribution",
    "Database",
    "DatabaseUnavailable",
    "DecisionLog",
    "DecisionView",
    "Delta",
    "Embedding",
    "EmbeddingResponse",
    "FunctionCall",
    "GatewayEmbedder",
    "GatewayError",
    "ImageURL",
    "InvalidRequest",
    "Job",
    "Judge",
    "JudgeVerdict",
    "Judgement",
    "Judges",
    "Learner",
    "Message",
    "ModelInfo",
    "ModelNotFound",
    "NotFound",
    "Outcome",
    "PermissionDenied",
    "PluginContext",
    "PluginError",
    "Preempted",
    "Principal",
    "ProfileDetails",
    "ProfileIndex",
    "ProfileStore",
    "PromptFeatures",
    "PromptResult",
    "RateLimited",
    "Rating",
    "RouterdError",
    "RuntimeProfile",
    "Scorer",
    "ServedModels",
    "Skill",
    "StoredRun",
    "StreamOptions",
    "SyncStatus",
    "ToolCall",
    "Traffic",
    "Usage",
    "__version__",
    "explain_validation_error",
    "hookimpl",
    "mask_secrets",
    "prompt_features",
    "require_modules",
    "runtime_profile",
    "summarise",
    "toolkit",
]

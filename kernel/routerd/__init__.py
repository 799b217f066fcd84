"""routerd: a self-hosted, OpenAI-compatible LLM gateway.

This module is the public API for plugin authors; everything not in ``__all__`` may change.
See docs/plugins.md.
"""

from routerd.context import PluginContext
from routerd.errors import (
    AuthenticationFailed,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    PluginError,
    RateLimited,
)
from routerd.hookspecs import hookimpl
from routerd.plugins import require_modules
from routerd.protocols import Authenticator, Backend, BenchmarkProvider, Cache, Scorer, Skill
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
    Delta,
    Embedding,
    EmbeddingResponse,
    Message,
    Usage,
)
from routerd.served_models import ServedModels

__version__ = "0.1.0"

__all__ = [
    "ANONYMOUS",
    "AnswerMessage",
    "AuthRequest",
    "AuthenticationFailed",
    "Authenticator",
    "Backend",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BenchmarkProvider",
    "BenchmarkRecord",
    "Cache",
    "Capabilities",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatRequest",
    "Choice",
    "ChunkChoice",
    "ConfigError",
    "Contribution",
    "Delta",
    "Embedding",
    "EmbeddingResponse",
    "GatewayError",
    "InvalidRequest",
    "Judgement",
    "Message",
    "ModelInfo",
    "ModelNotFound",
    "Outcome",
    "PermissionDenied",
    "PluginContext",
    "PluginError",
    "Principal",
    "PromptFeatures",
    "RateLimited",
    "Scorer",
    "ServedModels",
    "Skill",
    "Usage",
    "__version__",
    "hookimpl",
    "require_modules",
]

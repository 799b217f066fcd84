"""The parts of Ollama's native API responses the backend reads (``docs/api.md`` of ollama/ollama).

Fields Ollama may leave out, or that older servers do not send, have defaults; unknown fields
are ignored, so newer servers keep working.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Details(msgspec.Struct):
    """``details`` of ``/api/tags``, ``/api/show`` and ``/api/ps`` entries."""

    format: str | None = None
    family: str | None = None
    families: list[str] | None = None
    parameter_size: str | None = None
    quantization_level: str | None = None


class TagEntry(msgspec.Struct):
    """A model of ``GET /api/tags``; `size` is its files' size in bytes."""

    name: str
    size: int | None = None
    digest: str = ""
    details: Details | None = None


class Tags(msgspec.Struct):
    models: list[TagEntry] = []


class Show(msgspec.Struct):
    """``POST /api/show``: `model_info` holds the GGUF metadata (``general.parameter_count``,
    ``<arch>.context_length``, ...); `capabilities` (Ollama 0.6.4 and later) lists
    ``completion``, ``vision``, ``tools``, ``embedding``, ``thinking``, ...; `template` is the
    prompt template and `projector_info` the vision projector's metadata (vision models only)."""

    details: Details | None = None
    model_info: dict[str, Any] | None = None
    capabilities: list[str] | None = None
    template: str | None = None
    projector_info: dict[str, Any] | None = None


class RunningModel(msgspec.Struct):
    """A model of ``GET /api/ps``: `size_vram` is the part of `size` held in GPU memory."""

    name: str
    model: str | None = None
    size: int = 0
    size_vram: int = 0


class Running(msgspec.Struct):
    models: list[RunningModel] = []


class ToolFunction(msgspec.Struct):
    name: str
    arguments: dict[str, Any] | str = {}


class ToolCall(msgspec.Struct):
    function: ToolFunction
    id: str | None = None


class ChatMessage(msgspec.Struct):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    thinking: str | None = None  # a thinking model's reasoning, apart from its answer (Ollama 0.9 and later)


class ChatLine(msgspec.Struct):
    """The answer of ``POST /api/chat``, or one line of its NDJSON stream. The last line has
    ``done: true``, `done_reason` and the token counts; a failure mid-stream is a line with
    `error` only."""

    message: ChatMessage | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None


class Embed(msgspec.Struct):
    """``POST /api/embed``: one vector per input, in order."""

    embeddings: list[list[float]]
    prompt_eval_count: int = 0

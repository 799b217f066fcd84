"""The OpenAI wire format (chat completions, stream chunks, embeddings, models, errors).

Field names and shapes follow the OpenAI API reference, so the official SDKs and UIs work
unchanged. Unknown request fields are kept out (`forbid_unknown_fields` is off on purpose:
clients send vendor extensions, which are ignored rather than refused).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType


class ImageURL(msgspec.Struct, omit_defaults=True):
    url: str
    detail: str | UnsetType = UNSET


class ContentPart(msgspec.Struct, omit_defaults=True):
    """A part of a message's content: ``{"type": "text", "text": ...}`` or an ``image_url``."""

    type: str
    text: str | UnsetType = UNSET
    image_url: ImageURL | UnsetType = UNSET


class FunctionCall(msgspec.Struct, omit_defaults=True):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ToolCall(msgspec.Struct, omit_defaults=True):
    id: str | UnsetType = UNSET
    type: str = "function"
    function: FunctionCall | UnsetType = UNSET
    index: int | UnsetType = UNSET


class Message(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET
    tool_call_id: str | UnsetType = UNSET

    def text(self) -> str:
        """The message's text content, parts joined; images contribute nothing."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if p.type == "text" and isinstance(p.text, str))

    def has_image(self) -> bool:
        return isinstance(self.content, list) and any(p.type == "image_url" for p in self.content)


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool = False


class ChatRequest(msgspec.Struct, omit_defaults=True):
    """``POST /v1/chat/completions`` body. Every standard parameter is carried to the backend."""

    messages: list[Message]
    model: str | UnsetType = UNSET
    stream: bool = False
    stream_options: StreamOptions | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    n: int | UnsetType = UNSET
    max_tokens: int | UnsetType = UNSET
    max_completion_tokens: int | UnsetType = UNSET
    stop: str | list[str] | UnsetType = UNSET
    presence_penalty: float | UnsetType = UNSET
    frequency_penalty: float | UnsetType = UNSET
    logit_bias: dict[str, float] | UnsetType = UNSET
    user: str | UnsetType = UNSET
    seed: int | UnsetType = UNSET
    logprobs: bool | UnsetType = UNSET
    top_logprobs: int | UnsetType = UNSET
    response_format: dict[str, Any] | UnsetType = UNSET
    tools: list[dict[str, Any]] | UnsetType = UNSET
    tool_choice: str | dict[str, Any] | UnsetType = UNSET


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Choice(msgspec.Struct, omit_defaults=True):
    index: int
    message: Message
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletion(msgspec.Struct, omit_defaults=True):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: str | None = None


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET


class ChunkChoice(msgspec.Struct, omit_defaults=True):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | UnsetType | None = UNSET
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"


class EmbeddingRequest(msgspec.Struct, omit_defaults=True):
    input: str | list[str]
    model: str | UnsetType = UNSET
    encoding_format: str | UnsetType = UNSET
    dimensions: int | UnsetType = UNSET
    user: str | UnsetType = UNSET


class Embedding(msgspec.Struct):
    index: int
    embedding: list[float]
    object: Literal["embedding"] = "embedding"


class EmbeddingResponse(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: Usage
    object: Literal["list"] = "list"


class ModelCard(msgspec.Struct):
    id: str
    created: int
    owned_by: str
    object: Literal["model"] = "model"


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: Literal["list"] = "list"


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(msgspec.Struct):
    error: ErrorBody

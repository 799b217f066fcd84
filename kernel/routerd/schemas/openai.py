"""The OpenAI wire format (chat completions, stream chunks, embeddings, models, errors).

Field names and shapes follow the OpenAI API reference, so the official SDKs and UIs work
unchanged.

Request bodies (`ChatRequest`, `EmbeddingRequest`) accept the OpenAI API's documented parameters
and the vendor sampling parameters open-weight servers take (``top_k``, ``min_p``, ``typical_p``,
``repeat_penalty``, ``repetition_penalty``); any other top-level field is refused
(``forbid_unknown_fields``): the client gets a 400 ``unknown_parameter`` naming it, as OpenAI answers
(`routerd.api.openai.decode`), rather than an answer that silently ignored it. Inside messages, fields
routerd does not know are dropped (the reasoning of an earlier answer, say: see `AnswerMessage`). The
legacy ``functions`` and ``function_call`` are accepted and translated to tools
(`routerd.pipeline.legacy_functions`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType


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


class ToolCall(msgspec.Struct):
    """A tool call of a message. Its ``type`` is always written (OpenAI's API refuses a call in a conversation's
    history without one); unset fields are left out."""

    id: str | UnsetType = UNSET
    type: str = "function"
    function: FunctionCall | UnsetType = UNSET
    index: int | UnsetType = UNSET


class ToolCallDelta(msgspec.Struct, omit_defaults=True):
    """A piece of a tool call in a stream chunk, relayed as the backend sends it: OpenAI's API gives the ``id``,
    ``type`` and name in a call's first piece, then only ``index`` and more of the ``arguments``."""

    index: int | UnsetType = UNSET
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    function: FunctionCall | UnsetType = UNSET


Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(msgspec.Struct, omit_defaults=True):
    """A message of a conversation. ``function_call`` (on an assistant turn) and the role ``function`` are the
    legacy form of tool calls and their results; the pipeline turns them into ``tool_calls`` and role ``tool``
    before any backend sees them."""

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET
    tool_call_id: str | UnsetType = UNSET
    function_call: FunctionCall | UnsetType | None = UNSET

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


Temperature = Annotated[float, Meta(ge=0, le=2)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]
PositiveInt = Annotated[int, Meta(ge=1)]


class FunctionDefinition(msgspec.Struct, omit_defaults=True):
    """An entry of the legacy ``functions`` parameter: what a tool's ``function`` holds."""

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET


class FunctionChoice(msgspec.Struct):
    """The legacy ``function_call`` parameter's ``{"name": ...}``: call this function."""

    name: str


class ChatRequest(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """``POST /v1/chat/completions`` body. Every standard parameter is validated against the
    ranges the OpenAI API documents and carried to the backend; unknown ones are refused (see the
    module's doc)."""

    messages: Annotated[list[Message], Meta(min_length=1)]
    model: str | UnsetType = UNSET
    stream: bool = False
    stream_options: StreamOptions | UnsetType | None = UNSET
    temperature: Temperature | UnsetType | None = UNSET
    top_p: Probability | UnsetType | None = UNSET
    n: Annotated[int, Meta(ge=1, le=128)] | UnsetType | None = UNSET
    max_tokens: Annotated[int, Meta(ge=1, le=1 << 20)] | UnsetType | None = UNSET  # no model writes 1M tokens
    max_completion_tokens: Annotated[int, Meta(ge=1, le=1 << 20)] | UnsetType | None = UNSET
    stop: str | Annotated[list[str], Meta(max_length=4)] | UnsetType | None = UNSET
    presence_penalty: Penalty | UnsetType | None = UNSET
    frequency_penalty: Penalty | UnsetType | None = UNSET
    logit_bias: dict[str, Annotated[float, Meta(ge=-100, le=100)]] | UnsetType | None = UNSET
    user: str | UnsetType = UNSET
    seed: int | UnsetType | None = UNSET
    logprobs: bool | UnsetType | None = UNSET
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | UnsetType | None = UNSET
    response_format: dict[str, Any] | UnsetType | None = UNSET
    tools: list[dict[str, Any]] | UnsetType | None = UNSET
    tool_choice: str | dict[str, Any] | UnsetType | None = UNSET
    parallel_tool_calls: bool | UnsetType | None = UNSET
    # Newer standard parameters, carried to OpenAI-compatible backends as given (their values are the backend's
    # to judge: new ones keep appearing). A model that refuses one (a 400 naming it: a reasoning effort for a
    # model that does not reason, say) is asked again without it (routerd.toolkit.openai_compat).
    reasoning_effort: Annotated[str, Meta(min_length=1, max_length=32)] | UnsetType | None = UNSET
    verbosity: Annotated[str, Meta(min_length=1, max_length=32)] | UnsetType | None = UNSET
    service_tier: Annotated[str, Meta(min_length=1, max_length=32)] | UnsetType | None = UNSET
    store: bool | UnsetType | None = UNSET
    metadata: (
        Annotated[dict[Annotated[str, Meta(max_length=64)], Annotated[str, Meta(max_length=512)]], Meta(max_length=16)]
        | UnsetType
        | None
    ) = UNSET
    prompt_cache_key: Annotated[str, Meta(max_length=1024)] | UnsetType | None = UNSET
    safety_identifier: Annotated[str, Meta(max_length=1024)] | UnsetType | None = UNSET
    prediction: dict[str, Any] | UnsetType | None = UNSET
    web_search_options: dict[str, Any] | UnsetType | None = UNSET
    # Sampling parameters outside the OpenAI API that open-weight servers take (llama.cpp, vLLM, Ollama's options,
    # LM Studio): carried to OpenAI-compatible backends as given, translated where a backend names them otherwise.
    top_k: Annotated[int, Meta(ge=0)] | UnsetType | None = UNSET
    min_p: Probability | UnsetType | None = UNSET
    typical_p: Probability | UnsetType | None = UNSET
    repeat_penalty: Annotated[float, Meta(ge=0)] | UnsetType | None = UNSET
    repetition_penalty: Annotated[float, Meta(ge=0)] | UnsetType | None = UNSET
    # Standard parameters that are newer still: hints carried to OpenAI-compatible backends as given.
    prompt_cache_options: dict[str, Any] | UnsetType = UNSET
    prompt_cache_retention: Annotated[str, Meta(min_length=1, max_length=32)] | UnsetType | None = UNSET
    moderation: dict[str, Any] | UnsetType | None = UNSET
    # Audio output: no backend of routerd's makes it. ``modalities: ["text"]`` is the default, and accepted;
    # asking for audio is refused with a 400 naming the parameter (`routerd.pipeline.chat`).
    modalities: list[Literal["text", "audio"]] | UnsetType | None = UNSET
    audio: dict[str, Any] | UnsetType | None = UNSET
    # The legacy (deprecated) function calling: translated to ``tools`` / ``tool_choice`` before routing, and the
    # answer given back in the same legacy form (`routerd.pipeline.legacy_functions`).
    functions: Annotated[list[FunctionDefinition], Meta(min_length=1, max_length=128)] | UnsetType | None = UNSET
    function_call: Literal["none", "auto"] | FunctionChoice | UnsetType | None = UNSET

    def wants_usage_in_stream(self) -> bool:
        return bool(self.stream_options) and bool(self.stream_options.include_usage)

    def wants_json(self) -> bool:
        return bool(self.response_format) and self.response_format.get("type") in ("json_object", "json_schema")


class AnswerMessage(Message, omit_defaults=True):
    """A message in an answer: a `Message` and what backends send beside it, relayed as they send it (a refusal
    under structured outputs, citations from web search, the model's reasoning: ``reasoning_content`` from
    DeepSeek, vLLM and llama.cpp, ``reasoning`` from OpenRouter and Ollama). Only answers have them: in a
    request's history they are dropped (DeepSeek refuses a request whose messages carry its reasoning)."""

    refusal: str | UnsetType | None = UNSET
    annotations: list[Any] | UnsetType | None = UNSET
    reasoning_content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    # relayed as the backend sends them (``cached_tokens``, ``reasoning_tokens``, ...); UNSET is never encoded
    prompt_tokens_details: dict[str, Any] | UnsetType | None = UNSET
    completion_tokens_details: dict[str, Any] | UnsetType | None = UNSET


class Choice(msgspec.Struct):
    index: int
    message: AnswerMessage
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: str | None = None
    service_tier: str | UnsetType | None = UNSET


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET  # a `ToolCall` (a whole call) is encoded alike
    function_call: FunctionCall | UnsetType | None = UNSET  # the legacy form, for clients that sent `functions`
    refusal: str | UnsetType | None = UNSET  # as in `Message`
    reasoning_content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET

    def carries_more_than_text(self) -> bool:
        """Whether the delta says something besides its content: a role, tool calls, a refusal, reasoning."""
        return (
            self.role is not UNSET
            or self.tool_calls is not UNSET
            or bool(self.function_call)
            or bool(self.refusal)
            or bool(self.reasoning_content)
            or bool(self.reasoning)
        )


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletionChunk(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | UnsetType | None = UNSET
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    system_fingerprint: str | UnsetType | None = UNSET
    service_tier: str | UnsetType | None = UNSET


class EmbeddingRequest(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """``POST /v1/embeddings`` body; unknown fields are refused, as for chat."""

    input: str | Annotated[list[str], Meta(min_length=1, max_length=2048)]
    model: str | UnsetType = UNSET
    encoding_format: Literal["float", "base64"] | UnsetType = UNSET
    dimensions: Annotated[int, Meta(ge=1)] | UnsetType = UNSET  # refused unless it is the model's own size
    user: str | UnsetType = UNSET


class Embedding(msgspec.Struct):
    index: int
    embedding: list[float] | str  # a str is base64 of little-endian float32 (encoding_format="base64")
    object: Literal["embedding"] = "embedding"


class EmbeddingResponse(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: Usage
    object: Literal["list"] = "list"


class Architecture(msgspec.Struct):
    """What goes in and out of a model, as OpenRouter's model list says it (``text``, ``image``, ``embeddings``)."""

    input_modalities: list[str]
    output_modalities: list[str]


class CardCapabilities(msgspec.Struct):
    """What a model can do, as routing knows it (`routerd.Capabilities`, every field decided)."""

    chat: bool
    vision: bool
    tools: bool
    json_output: bool
    embeddings: bool


class ModelCard(msgspec.Struct):
    """A ``/v1/models`` entry: OpenAI's four fields, then what the model can do, in the extra fields other
    gateways use (OpenRouter's ``context_length``, ``architecture`` and ``supported_parameters``; LiteLLM's and
    LM Studio's ``type``) and routerd's ``capabilities``. Clients that know only OpenAI's fields ignore them."""

    id: str
    created: int
    owned_by: str
    object: Literal["model"] = "model"
    type: Literal["chat", "embedding", "other"] | UnsetType = UNSET
    context_length: int | UnsetType | None = UNSET
    architecture: Architecture | UnsetType = UNSET
    supported_parameters: list[str] | UnsetType = UNSET
    capabilities: CardCapabilities | UnsetType = UNSET


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

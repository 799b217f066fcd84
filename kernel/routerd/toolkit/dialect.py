"""What an OpenAI-compatible server takes of a chat request, where it is not all of OpenAI's API, and the request
rewritten for it (`adapt`).

llama.cpp's servers are the reason: both llama-server (C++) and llama-cpp-python's server read ``max_tokens`` and
not ``max_completion_tokens`` (what the openai SDK's newer code and LangChain send); llama-cpp-python's server
refuses a ``json_schema`` response format (a 500 with its traceback) and takes the schema as
``{"type": "json_object", "schema": {...}}``, which llama-server takes too (both turn it into a grammar); neither
answers more than one choice (llama-cpp-python's server ignores ``n``, llama-server refuses it), so ``n`` > 1 is
several requests (`routerd.toolkit.choices`); they name the repetition penalty ``repeat_penalty`` where vLLM and
Hugging Face name it ``repetition_penalty``. llama-cpp-python's server also drops ``typical_p`` without a word: the
local backend refuses it rather than answer as if it had been applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from routerd.errors import InvalidRequest
from routerd.schemas.openai import ChatRequest

# The response formats a llama.cpp server can produce.
LLAMA_CPP_FORMATS = ("text", "json_object", "json_schema")


@dataclass(frozen=True)
class Dialect:
    """How a server differs from OpenAI's API. `name` is said in errors; `max_tokens_only`: the server reads
    ``max_tokens`` only; `schema_in_json_object`: it takes a JSON schema as ``{"type": "json_object", "schema":
    ...}`` and no other format than those of `LLAMA_CPP_FORMATS`; `one_choice`: it answers one choice, whatever
    ``n`` says; `repeat_penalty`: it names the repetition penalty ``repeat_penalty``; `unsupported`: request fields
    it drops without a word, refused here (a 400 naming the field) rather than ignored."""

    name: str = "OpenAI"
    max_tokens_only: bool = False
    schema_in_json_object: bool = False
    one_choice: bool = False
    repeat_penalty: bool = False
    unsupported: tuple[str, ...] = ()


OPENAI = Dialect()
LLAMA_CPP = Dialect("llama.cpp", max_tokens_only=True, schema_in_json_object=True, one_choice=True, repeat_penalty=True)
LLAMA_CPP_PYTHON = Dialect(
    "llama-cpp-python",
    max_tokens_only=True,
    schema_in_json_object=True,
    one_choice=True,
    repeat_penalty=True,
    unsupported=("typical_p",),
)


def given(value: Any) -> bool:
    return value is not msgspec.UNSET and value is not None


def output_limit(request: ChatRequest) -> int | None:
    """The most answer tokens the request allows: the smaller of ``max_tokens`` and ``max_completion_tokens``
    when both are given."""
    limits = [v for v in (request.max_tokens, request.max_completion_tokens) if given(v)]
    return min(limits) if limits else None


def choices_asked(request: ChatRequest) -> int:
    return request.n if given(request.n) else 1


def json_schema_of(response_format: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of a ``json_schema`` response format (None: it has none, any JSON object will do); a 400
    naming ``response_format`` when it is not an object."""
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if (spec is not None and not isinstance(spec, dict)) or (schema is not None and not isinstance(schema, dict)):
        raise InvalidRequest("response_format.json_schema.schema must be a JSON schema object", param="response_format")
    return schema


def response_format_for(request: ChatRequest, dialect: Dialect) -> dict[str, Any] | None:
    """The request's response format as `dialect` takes it; a 400 naming ``response_format`` for one the server
    cannot produce."""
    response_format = request.response_format
    if not given(response_format) or not dialect.schema_in_json_object:
        return response_format  # type: ignore[return-value]
    kind = response_format.get("type")
    if kind not in LLAMA_CPP_FORMATS:
        raise InvalidRequest(
            f"response_format of type {kind!r} is not one {dialect.name} servers can produce "
            f"({', '.join(LLAMA_CPP_FORMATS)})",
            param="response_format",
        )
    if kind == "json_schema":
        schema = json_schema_of(response_format)
        return {"type": "json_object"} if schema is None else {"type": "json_object", "schema": schema}
    return response_format


def adapt(request: ChatRequest, dialect: Dialect, *, default_max_tokens: int | None = None) -> ChatRequest:
    """The request as `dialect` takes it (a copy; the request is left as it is). `default_max_tokens` is the
    answer's limit when the request sets neither ``max_tokens`` nor ``max_completion_tokens``."""
    for name in dialect.unsupported:
        if given(getattr(request, name)):
            raise InvalidRequest(f"{dialect.name} servers do not take {name}", param=name)
    changes: dict[str, Any] = {}
    limit = output_limit(request)
    if limit is None and default_max_tokens is not None:
        limit = default_max_tokens
        changes["max_tokens" if dialect.max_tokens_only else "max_completion_tokens"] = limit
    if dialect.max_tokens_only and limit is not None:
        changes["max_tokens"] = limit
        changes["max_completion_tokens"] = msgspec.UNSET
    if dialect.schema_in_json_object and given(request.response_format):
        changes["response_format"] = response_format_for(request, dialect)
    if dialect.repeat_penalty and given(request.repetition_penalty):
        if not given(request.repeat_penalty):
            changes["repeat_penalty"] = request.repetition_penalty
        changes["repetition_penalty"] = msgspec.UNSET
    return msgspec.structs.replace(request, **changes) if changes else request

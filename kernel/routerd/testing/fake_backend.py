"""A backend that answers from a script, for tests of everything around backends: routing,
scorers, caches, skills. It is a real `Backend`: the kernel drives it like any other."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from importlib.metadata import EntryPoint
from typing import Annotated, Any

import msgspec

from routerd.hookspecs import hookimpl
from routerd.schemas.catalog import Capabilities, ModelInfo
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
    FunctionCall,
    ToolCall,
    Usage,
)

# Add this to the entry points an app is built with to get a `fake` backend plugin.
FAKE_PLUGIN = EntryPoint(name="fake", value="routerd.testing.fake_backend", group="routerd")


class FakeModel(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    parameters: int | None = None
    context_window: int | None = 8192
    vision: bool = False
    tools: bool = False
    embeddings: bool = False


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(description="The backend's name.")] = "fake"
    models: list[FakeModel] = msgspec.field(
        default_factory=lambda: [
            FakeModel("fake-small", parameters=1_000_000_000),
            FakeModel("fake-large", parameters=70_000_000_000, tools=True),
        ]
    )
    reply: str = "Hello from the fake backend."
    calls_tool: Annotated[
        str | None,
        msgspec.Meta(
            description=(
                "A tool the models call when a request offers it (with `tool_arguments`), until the conversation "
                "has its result; then they answer `reply`, followed by the results."
            )
        ),
    ] = None
    tool_arguments: dict[str, Any] = {}


class FakeBackend:
    """Answers every chat with `reply` (streamed word by word), embeds text as a deterministic
    8-dimensional vector, and records every call in `calls`. With `calls_tool`, a request that offers that tool
    gets a call of it first (not streamed), and the answer after its result quotes the result."""

    def __init__(
        self,
        name: str,
        models: list[ModelInfo],
        reply: str,
        calls_tool: str | None = None,
        tool_arguments: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.models = models
        self.reply = reply
        self.calls_tool = calls_tool
        self.tool_arguments = dict(tool_arguments or {})
        self.calls: list[tuple[str, str]] = []
        self.unloaded: list[str] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> FakeBackend:
        models = [
            ModelInfo(
                name=m.name,
                backend=settings.name,
                parameters=m.parameters,
                context_window=m.context_window,
                capabilities=Capabilities(vision=m.vision, tools=m.tools, embeddings=m.embeddings),
            )
            for m in settings.models
        ]
        return cls(settings.name, models, settings.reply, settings.calls_tool, settings.tool_arguments)

    async def list_models(self) -> list[ModelInfo]:
        return list(self.models)

    def _usage(self, request: ChatRequest) -> Usage:
        prompt = sum(len(m.text().split()) for m in request.messages)
        completion = len(self.reply.split())
        return Usage(prompt, completion, prompt + completion)

    def _offered(self, request: ChatRequest) -> bool:
        for tool in request.tools or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and function.get("name") == self.calls_tool:
                return True
        return False

    async def chat(self, model: str, request: ChatRequest) -> ChatCompletion:
        self.calls.append(("chat", model))
        message = AnswerMessage(role="assistant", content=self.reply)
        finish = "stop"
        if self.calls_tool and self._offered(request):
            if request.messages[-1].role != "tool":
                call = ToolCall(
                    id=f"call-{len(self.calls)}",
                    function=FunctionCall(name=self.calls_tool, arguments=json.dumps(self.tool_arguments)),
                )
                message, finish = AnswerMessage(role="assistant", content=None, tool_calls=[call]), "tool_calls"
            else:
                results = [m.text() for m in request.messages if m.role == "tool"]
                message = AnswerMessage(role="assistant", content=f"{self.reply} {' '.join(results)}")
        return ChatCompletion(
            id=f"fake-{len(self.calls)}",
            created=int(time.time()),
            model=model,
            choices=[Choice(index=0, message=message, finish_reason=finish)],
            usage=self._usage(request),
        )

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        self.calls.append(("stream", model))
        created, ident = int(time.time()), f"fake-{len(self.calls)}"
        yield ChatCompletionChunk(ident, created, model, [ChunkChoice(0, Delta(role="assistant", content=""))])
        words = self.reply.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            yield ChatCompletionChunk(ident, created, model, [ChunkChoice(0, Delta(content=piece))])
        yield ChatCompletionChunk(ident, created, model, [ChunkChoice(0, Delta(), finish_reason="stop")])

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResponse:
        self.calls.append(("embed", model))
        data = []
        for i, text in enumerate(inputs):
            digest = hashlib.sha256(text.encode()).digest()
            data.append(Embedding(index=i, embedding=[b / 255 for b in digest[:8]]))
        tokens = sum(len(t.split()) for t in inputs)
        return EmbeddingResponse(data=data, model=model, usage=Usage(tokens, 0, tokens))

    async def unload(self, model: str) -> None:
        self.unloaded.append(model)


@hookimpl
def register_backends(register, context) -> None:
    register(FakeBackend.from_settings(context.settings))

"""Measuring one answer: the suite prompt goes to one model through the gateway's dispatcher (``context.models``:
pinned to that model, no routing, no fallback) and is streamed, so time to first token, decoding speed and total
latency are measured as a client would see them.

- `ttft_ms`: from sending the request to the first chunk that carries text;
- `tokens_per_second`: the tokens after the first one, over the time from the first to the last text chunk
  (decoding speed, without the prompt's processing); tokens are the backend's reported usage when it sends one,
  else the text chunks (each a token with llama.cpp, Ollama and the OpenAI API);
- `latency_ms`: from sending the request to the end of the stream.

Errors never escape: a backend error, a timeout or a failing backend plugin is recorded in `error`, with
whatever text had arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec

from routerd import ChatRequest, GatewayError, Message, ServedModels, StreamOptions, mask_secrets

ERROR_MAX = 300


class Measurement(msgspec.Struct, kw_only=True):
    answer: str
    ttft_ms: float | None = None
    latency_ms: float | None = None
    tokens: int = 0
    tokens_per_second: float | None = None
    finish_reason: str | None = None
    error: str | None = None


def suite_request(prompt: str, *, system: str | None, max_tokens: int) -> ChatRequest:
    messages = [Message(role="system", content=system)] if system else []
    messages.append(Message(role="user", content=prompt))
    return ChatRequest(
        messages=messages,
        stream=True,
        stream_options=StreamOptions(include_usage=True),
        temperature=0.0,
        max_tokens=max_tokens,
        seed=0,
    )


async def measure(models: ServedModels, model: str, request: ChatRequest, *, seconds: float) -> Measurement:
    """Stream `request` from `model` (its catalog id) under `seconds` in all; see the module's doc."""
    pieces: list[str] = []
    chunks = 0
    usage_tokens: int | None = None
    finish: str | None = None
    error: str | None = None
    started = time.perf_counter()
    first = last = None
    try:
        async with asyncio.timeout(seconds), contextlib.aclosing(models.stream(model, request)) as stream:
            async for chunk in stream:
                if chunk.usage and chunk.usage.completion_tokens:
                    usage_tokens = chunk.usage.completion_tokens
                for choice in chunk.choices[:1]:
                    content = choice.delta.content
                    if isinstance(content, str) and content:
                        now = time.perf_counter()
                        first = first if first is not None else now
                        last = now
                        chunks += 1
                        pieces.append(content)
                    finish = choice.finish_reason or finish
    except TimeoutError:
        error = f"no complete answer within {seconds:g} s"
    except GatewayError as exc:
        error = exc.message
    except Exception as exc:  # a backend plugin's bug must not end the profiling run
        error = f"{type(exc).__name__}: {exc}"
    ended = time.perf_counter()
    tokens = usage_tokens or chunks
    result = Measurement(answer="".join(pieces), tokens=tokens, finish_reason=finish)
    if first is not None:
        result.ttft_ms = (first - started) * 1000
    if error is not None:
        result.error = mask_secrets(error)[:ERROR_MAX]
        return result
    result.latency_ms = (ended - started) * 1000
    if first is not None and last is not None and last > first and tokens > 1:
        result.tokens_per_second = (tokens - 1) / (last - first)
    return result

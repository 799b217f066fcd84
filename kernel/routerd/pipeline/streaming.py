"""Relaying a stream to the client as server-sent events.

The signature goes in just before the chunk that carries `finish_reason`; usage, when the
client asked for it, comes in a last chunk (estimated when the backend sends none). A failure
after the first byte ends the stream with an error event in the OpenAI error shape, never with
a made-up `finish_reason`. If the client goes away, the upstream request is closed.

`send_events` writes the events: the first one at once, and then, in one write, whatever the
relay produced while the previous write was under way, so that an upstream that delivers many
chunks in one read costs one write, not one per chunk, and no chunk ever waits for another.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

import msgspec
from litestar.types import Receive, Send

from routerd.dispatch import Dispatcher, StreamStart
from routerd.errors import BackendError, GatewayError
from routerd.pipeline.legacy_functions import delta_in_legacy_form
from routerd.schemas.openai import (
    ChatCompletionChunk,
    ChatRequest,
    ChunkChoice,
    Delta,
    ErrorBody,
    ErrorResponse,
    Usage,
)
from routerd.signature import Signature

_encoder = msgspec.json.Encoder()
DONE = b"data: [DONE]\n\n"
# Above this many bytes waiting for a slow client, the relay waits too (backpressure upstream).
WRITE_BUFFER = 64 * 1024


# What a chat template adds, in tokens: per message (its role and delimiters), and once to prime the reply
# (OpenAI's cookbook counts 3 and 3 for its models; Gemma's template adds about as many).
TOKENS_PER_MESSAGE = 3
TOKENS_TO_PRIME_REPLY = 3


def estimate_usage(chat: ChatRequest, completion_text: str) -> Usage:
    """Token counts for a backend that reports none: about four characters a token, plus what the chat template
    adds around each message and before the reply."""
    prompt = TOKENS_TO_PRIME_REPLY + sum(TOKENS_PER_MESSAGE + len(m.text()) // 4 for m in chat.messages)
    completion = max(1, len(completion_text) // 4) if completion_text else 0
    return Usage(prompt, completion, prompt + completion)


def sse(chunk: ChatCompletionChunk | ErrorResponse) -> bytes:
    return b"data: " + _encoder.encode(chunk) + b"\n\n"


@dataclass
class StreamEnd:
    """How a relayed stream ended: `status` ``ok``, ``error`` or ``cancelled`` (the client went away); the usage
    (estimated when the backend sent none); the answer's text as the model sent it (one choice only) and its
    finish reason; whether it carried tool calls."""

    status: str
    usage: Usage
    response_id: str
    text: str
    finish_reason: str | None
    tool_calls: bool


async def relay_events(
    signature: Signature,
    dispatcher: Dispatcher,
    chat: ChatRequest,
    start: StreamStart,
    ended: Callable[[StreamEnd], None] | None = None,
    *,
    legacy_functions: bool = False,
) -> AsyncGenerator[bytes, None]:
    """The stream as SSE bytes. `ended` is called once at the end (see `StreamEnd`). With `legacy_functions` (the
    client sent ``functions``), tool calls go out in the legacy form (`delta_in_legacy_form`)."""
    model = start.entry.id
    status = "cancelled"
    single = chat.n in (msgspec.UNSET, None, 1)
    hold = signature.holdback()
    sign = single and not chat.wants_json()
    finish: ChatCompletionChunk | None = None
    usage = None
    text: list[str] = []
    tool_calls = False
    last: ChatCompletionChunk = start.first
    relayed = dispatcher.relay(start)
    chunk: ChatCompletionChunk | None = start.first
    try:
        while chunk is not None:
            chunk.model = model
            last = chunk
            event = True
            if chunk.usage:
                usage = chunk.usage
                chunk.usage = msgspec.UNSET
                event = bool(chunk.choices)
            if event:
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.tool_calls:
                        sign = False
                        tool_calls = True
                    if legacy_functions and tool_calls:
                        delta_in_legacy_form(choice)
                    if single and isinstance(delta.content, str) and delta.content:
                        text.append(delta.content)
                        delta.content = hold.feed(delta.content)
                if single and chunk.choices and chunk.choices[0].finish_reason is not None:
                    finish = chunk
                elif not (single and chunk.choices and _empty(chunk.choices[0])):
                    yield sse(chunk)
            chunk = await anext(relayed, None)
        if single and finish is None:
            # [DONE] with no finish_reason before it: the backend cut the answer short (llama_cpp.server does
            # when another request interrupts it). The client gets what came, then says so, not a clean end.
            held = hold.finish()
            if held:
                yield sse(ChatCompletionChunk(last.id, last.created, model, [ChunkChoice(0, Delta(content=held))]))
            raise BackendError(
                f"backend {start.entry.info.backend} ended the stream before the answer finished",
                code="stream_incomplete",
            )
        # The end goes out as one event batch: the held-back text and signature, the finish, usage, [DONE].
        end: list[bytes] = []
        tail = hold.finish() if single else ""
        if sign:
            tail += signature.render(model)
        if tail:
            end.append(sse(ChatCompletionChunk(last.id, last.created, model, [ChunkChoice(0, Delta(content=tail))])))
        if finish is not None:
            end.append(sse(finish))
        if chat.wants_usage_in_stream():
            usage = usage or estimate_usage(chat, "".join(text))
            end.append(sse(ChatCompletionChunk(last.id, last.created, model, [], usage=usage)))
        end.append(DONE)
        status = "ok"
        yield b"".join(end)
    except GatewayError as exc:
        status = "error"
        body = ErrorBody(message=exc.message, type=exc.error_type, code=exc.code or "stream_interrupted")
        yield sse(ErrorResponse(body))
    finally:
        await relayed.aclose()  # closes the upstream request now, also when the client went away
        if ended is not None:
            answer = "".join(text)
            reason = finish.choices[0].finish_reason if finish is not None and finish.choices else None
            ended(StreamEnd(status, usage or estimate_usage(chat, answer), last.id, answer, reason, tool_calls))


def _empty(choice: ChunkChoice) -> bool:
    delta = choice.delta
    return (
        delta.content in ("", None, msgspec.UNSET)
        and choice.finish_reason is None
        and not delta.carries_more_than_text()
    )


class _Writer:
    """Sends the events pushed by the relay task from a task of its own, each batch in one
    ASGI message; cancels the relay task when the client goes away or a send fails."""

    def __init__(self, send: Send, relay: asyncio.Task) -> None:
        self.send = send
        self.relay = relay
        self.pending: list[bytes] = []
        self.size = 0
        self.finished = False  # the relay produced its last event
        self.done = False  # the last ASGI message is on its way: a disconnect now is the normal end
        self.gone = False  # the client went away (or a send failed): the relay was cancelled
        self.error: BaseException | None = None
        self.task: asyncio.Task | None = None
        self._wakeup: asyncio.Future | None = None
        self._drained: asyncio.Future | None = None

    async def push(self, data: bytes) -> None:
        self.pending.append(data)
        self.size += len(data)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())
        else:
            self._wake()
        if self.size > WRITE_BUFFER:  # the client reads slower than the upstream writes: wait for it
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not self.pending and not self.finished:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                last = self.finished
                body = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
                self.pending.clear()
                self.size = 0
                if self._drained is not None and not self._drained.done():
                    self._drained.set_result(None)
                self.done = last
                await self.send({"type": "http.response.body", "body": body, "more_body": not last})
                if last:
                    return
        except Exception as exc:
            self.error = exc
            self.disconnected()

    def disconnected(self) -> None:
        if not self.done and not self.gone:
            self.gone = True
            self.relay.cancel()

    async def finish(self) -> None:
        """After the last event: send what is left and end the response."""
        self.finished = True
        if self.task is not None:
            self._wake()
            await self.task
            return
        body = b"".join(self.pending)
        self.pending.clear()
        self.done = True
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self._drained is not None and not self._drained.done():
            self._drained.cancel()


async def _watch_disconnect(receive: Receive, writer: _Writer) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            writer.disconnected()
            return


async def send_events(receive: Receive, send: Send, headers: list[tuple[bytes, bytes]], events: AsyncIterator[bytes]):
    """Send a 200 with `headers`, then `events` as they come (see the module's doc). If the
    client goes away, the relay is cancelled where it waits, which closes the upstream request."""
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    relay = asyncio.current_task()
    assert relay is not None
    cancelling = relay.cancelling()
    writer = _Writer(send, relay)
    watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, writer))
    try:
        first = await anext(events, None)
        if first is not None:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for data in events:
                await writer.push(data)
        await writer.finish()
    except asyncio.CancelledError:
        # Cancelled by the writer because the client went away: the response simply ends here.
        if not writer.gone or relay.uncancel() > cancelling:
            raise
    finally:
        watcher.cancel()
        writer.close()
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    if writer.error is not None:
        raise writer.error

"""A fast, zero-latency OpenAI-compatible upstream for the overhead benchmarks.

Serves two models, ``mock-7b`` and ``mock-70b`` (`MODELS_SERVED`: two candidates, so that a gateway in front of it
routes between them; bench/overhead.py maps the evaluation data's weak and strong model onto them), and gives every
request the same answer, whichever model it names. Answers ``GET /v1/models``, ``POST /v1/chat/completions`` (JSON,
or server-sent events with a few chunks and ``[DONE]`` when the body says ``"stream": true``) and
``POST /v1/embeddings``. It is a raw asyncio protocol on uvloop with httptools' C parser, and every answer but the
embeddings is a pre-built byte string, so that the mock costs as little as possible next to what is measured.

    .venv/bin/python bench/mock_upstream.py [--host 127.0.0.1] [--port 0] [--chunk-delay-ms 0]

prints ``listening on http://HOST:PORT`` once it accepts connections, and serves until killed. It is
not measured, only measured against: it keeps Python's default garbage collector and times nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys

import httptools
import msgspec

MODEL = "mock-7b"
STRONG_MODEL = "mock-70b"
MODELS_SERVED = (MODEL, STRONG_MODEL)
CREATED = 1_700_000_000
ANSWER_WORDS = ["Hello", " from", " the", " mock", " upstream", "."]

_json = msgspec.json.Encoder()


class _Body(msgspec.Struct):
    stream: bool = False
    input: str | list[str] | None = None
    model: str | None = None


_body_decoder = msgspec.json.Decoder(_Body)


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"content-type: " + content_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


MODELS = _response(
    "200 OK",
    _json.encode(
        {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": CREATED, "owned_by": "mock"} for name in MODELS_SERVED],
        }
    ),
)
COMPLETION = _response(
    "200 OK",
    _json.encode(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(ANSWER_WORDS)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
        }
    ),
)


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + _json.encode(chunk) + b"\n\n"


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# The events of a streamed answer: the role, the words, the finish, [DONE]; each its own HTTP chunk.
STREAM_EVENTS = [
    _chunk({"role": "assistant", "content": ""}),
    *(_chunk({"content": word}) for word in ANSWER_WORDS),
    _chunk({}, "stop"),
    b"data: [DONE]\n\n",
]
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
STREAM_CHUNKS = [_http_chunk(event) for event in STREAM_EVENTS]
STREAM_END = b"0\r\n\r\n"
STREAM_ALL = STREAM_HEAD + b"".join(STREAM_CHUNKS) + STREAM_END

NOT_FOUND = _response("404 Not Found", b'{"error":{"message":"not found","type":"invalid_request_error"}}')
BAD_REQUEST = _response("400 Bad Request", b'{"error":{"message":"bad request","type":"invalid_request_error"}}')
EMBEDDING_SIZE = 8


def embeddings(body: _Body) -> bytes:
    inputs = [body.input] if isinstance(body.input, str) else (body.input or [])
    data = [
        {"object": "embedding", "index": i, "embedding": [((i + k) % 7) / 7.0 for k in range(EMBEDDING_SIZE)]}
        for i in range(len(inputs))
    ]
    tokens = sum(len(text.split()) for text in inputs)
    return _response(
        "200 OK",
        _json.encode(
            {
                "object": "list",
                "data": data,
                "model": body.model or MODEL,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        ),
    )


class MockProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; requests on one connection are answered in order."""

    chunk_delay = 0.0

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.streaming = 0  # answers still being streamed with a delay (later requests wait)
        self.queued: list[tuple[bytes, bytes, bytes]] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(BAD_REQUEST)
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        self.handle(method, self.url.split(b"?", 1)[0], b"".join(self.body))
        if not self.parser.should_keep_alive() and not self.streaming:
            self.transport.close()

    def handle(self, method: bytes, path: bytes, body: bytes) -> None:
        transport = self.transport
        if self.streaming:
            self.queued.append((method, path, body))
            return
        if path.endswith(b"/chat/completions") and method == b"POST":
            try:
                parsed = _body_decoder.decode(body)
            except msgspec.MsgspecError:
                transport.write(BAD_REQUEST)
                return
            if not parsed.stream:
                transport.write(COMPLETION)
            elif self.chunk_delay <= 0:
                transport.write(STREAM_ALL)
            else:
                self.streaming += 1
                transport.write(STREAM_HEAD)
                asyncio.get_running_loop().create_task(self._trickle())
        elif path.endswith(b"/models") and method == b"GET":
            transport.write(MODELS)
        elif path.endswith(b"/embeddings") and method == b"POST":
            try:
                transport.write(embeddings(_body_decoder.decode(body)))
            except msgspec.MsgspecError:
                transport.write(BAD_REQUEST)
        else:
            transport.write(NOT_FOUND)

    async def _trickle(self) -> None:
        try:
            for chunk in STREAM_CHUNKS:
                await asyncio.sleep(self.chunk_delay)
                if self.transport.is_closing():
                    return
                self.transport.write(chunk)
            self.transport.write(STREAM_END)
        finally:
            self.streaming -= 1
            queued, self.queued = self.queued, []
            for request in queued:
                self.handle(*request)


async def serve(host: str, port: int, protocol: type[asyncio.Protocol] | None = None) -> None:
    """Listen (`protocol`: `MockProtocol` or one built on it), say where, and serve until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol or MockProtocol, host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()
    print(f"listening on http://{bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def spawn(*, chunk_delay_ms: float = 0.0) -> tuple[subprocess.Popen, str]:
    """Start the mock in a process of its own; returns the process and its ``/v1`` base URL.
    The caller stops it (``terminate()``)."""
    return start_script(os.path.abspath(__file__), ["--chunk-delay-ms", str(chunk_delay_ms)], "the mock upstream")


def start_script(script: str, arguments: list[str], what: str) -> tuple[subprocess.Popen, str]:
    """Run an upstream `script` (this one, or one built on it) on a free port; returns the process and its ``/v1``
    base URL, read from the ``listening on`` line it prints once it listens."""
    command = [sys.executable, script, "--port", "0", *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()  # its address as soon as it listens; "" if it died first
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"{what} did not start: {line!r}")
    return process, line.split()[-1] + "/v1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A zero-latency OpenAI-compatible mock upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause before each streamed chunk")
    args = parser.parse_args(argv)
    MockProtocol.chunk_delay = args.chunk_delay_ms / 1000
    run(args.host, args.port, MockProtocol)


def run(host: str, port: int, protocol: type[asyncio.Protocol]) -> None:
    """`serve` on uvloop (plain asyncio where it is missing: slower, but it works), then exit."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(serve(host, port, protocol))
    else:
        uvloop.run(serve(host, port, protocol))
    sys.exit(0)


if __name__ == "__main__":
    main()

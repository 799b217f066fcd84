"""The mock upstream (bench/mock_upstream.py) with faults injected on request, for the soak suite (bench/soak.py).

A chat completion whose body contains ``fault:NAME`` (anywhere: the soak puts it in the user message, which the
gateway forwards as is) gets that fault instead of the mock's answer; every other request gets exactly the mock's
answer (same models, same bytes, same ``--chunk-delay-ms``). The faults:

- ``fault:500``: ``500 Internal Server Error`` with a JSON error body;
- ``fault:reset``: the answer starts (for a stream: the head and three events; JSON: half the body), then the
  connection is aborted (a TCP reset);
- ``fault:stall``: the answer starts (a stream: the head and two events; JSON: nothing at all), then the upstream
  falls silent for ``--stall-s`` seconds and closes the connection.

    .venv/bin/python bench/faulty_upstream.py [--host 127.0.0.1] [--port 0] [--chunk-delay-ms 0] [--stall-s 10]

prints ``listening on http://HOST:PORT`` once it accepts connections, and serves until killed. Other scripts start
it with ``faulty_upstream.spawn()``. Like the mock, it is measured against, never measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess

import mock_upstream

FAULT = re.compile(rb"fault:(500|reset|stall)")
SERVER_ERROR = mock_upstream._response(
    "500 Internal Server Error", b'{"error":{"message":"injected fault","type":"server_error"}}'
)


class FaultyProtocol(mock_upstream.MockProtocol):
    """The mock's protocol; a chat completion that asks for a fault gets it."""

    stall_seconds = 10.0

    def handle(self, method: bytes, path: bytes, body: bytes) -> None:
        found = FAULT.search(body) if method == b"POST" and path.endswith(b"/chat/completions") else None
        if found is None or self.streaming:  # the mock queues requests behind a trickling answer
            super().handle(method, path, body)
            return
        fault = found.group(1)
        stream = b'"stream":true' in body.replace(b" ", b"")
        transport = self.transport
        if fault == b"500":
            transport.write(SERVER_ERROR)
        elif fault == b"reset":
            if stream:
                transport.write(mock_upstream.STREAM_HEAD + b"".join(mock_upstream.STREAM_CHUNKS[:3]))
            else:
                transport.write(mock_upstream.COMPLETION[: len(mock_upstream.COMPLETION) // 2])
            transport.abort()
        else:  # stall: later requests on this connection wait, as behind a trickling answer
            if stream:
                transport.write(mock_upstream.STREAM_HEAD + b"".join(mock_upstream.STREAM_CHUNKS[:2]))
            self.streaming += 1
            asyncio.get_running_loop().call_later(self.stall_seconds, transport.close)


def spawn(*, chunk_delay_ms: float = 0.0, stall_s: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Start it in a process of its own; returns the process and its ``/v1`` base URL. The caller stops it."""
    arguments = ["--chunk-delay-ms", str(chunk_delay_ms), "--stall-s", str(stall_s)]
    return mock_upstream.start_script(os.path.abspath(__file__), arguments, "the faulty upstream")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The mock upstream with faults injected on request.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause before each streamed chunk")
    parser.add_argument("--stall-s", type=float, default=10.0, help="how long fault:stall stays silent (default 10)")
    args = parser.parse_args(argv)
    FaultyProtocol.chunk_delay = args.chunk_delay_ms / 1000
    FaultyProtocol.stall_seconds = args.stall_s
    mock_upstream.run(args.host, args.port, FaultyProtocol)


if __name__ == "__main__":
    main()

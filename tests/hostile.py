"""Hostile clients and a never-ending upstream, for the HTTP front end's tests (tests/test_hardening_http.py).

Clients are raw sockets, so that a test sends exactly the bytes an attacker would (a head that never ends, a
body shorter than its Content-Length); `routerd_serve` runs the real ``routerd serve`` in a process of its own,
for what only a process shows (its open-file limit, how long SIGTERM takes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from servers import aiohttp_in_thread, chunk, completion, free_port

ROUTERD = Path(sys.executable).parent / "routerd"


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def send_all(sock: socket.socket, data: bytes) -> int:
    """Send `data` until the peer stops reading or closes; the bytes sent."""
    sent = 0
    view = memoryview(data)
    try:
        while sent < len(data):
            sent += sock.send(view[sent : sent + 65536])
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """What the peer sends until it closes the connection, and the seconds that took (``inf``: still open after
    `timeout`)."""
    start = time.monotonic()
    received = b""
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            return received, float("inf")
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return received, float("inf")
        except ConnectionResetError:
            return received, time.monotonic() - start
        if not data:
            return received, time.monotonic() - start
        received += data


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, bytes]:
    """One response with a Content-Length on a kept-alive connection: its status and body."""
    sock.settimeout(timeout)
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"the connection closed before a whole response: {received[:300]!r}")
        received += data
    head_bytes, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head_bytes.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        data = sock.recv(65536)
        if not data:
            raise AssertionError("the connection closed in a response body")
        body += data
    return int(head_bytes[9:12]), body


def status_of(answer: bytes) -> int | None:
    """The status code of the first response in `answer`."""
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


def head(path: str = "/healthz", *, method: str = "GET", extra: bytes = b"", length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()]
    if length is not None:
        lines.append(b"Content-Type: application/json\r\nContent-Length: %d\r\n" % length)
    return b"".join(lines) + extra + b"\r\n"


def trickle(sock: socket.socket, data: bytes, interval: float, stop: Callable[[], bool]) -> None:
    """Send `data` one byte every `interval` seconds until it is sent, the peer closes, or `stop()`."""
    for byte in data:
        if stop():
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return
        time.sleep(interval)


def endless_app(model: str = "endless", close_connections: bool = False) -> web.Application:
    """An OpenAI-shaped upstream whose chat streams never end (a word every 0.2 s) and whose JSON answers come
    after an hour, unless the request sets ``max_tokens``: then that many words, at once. `close_connections`:
    every answer closes its connection, so each request connects anew."""

    async def models(request: web.Request) -> web.Response:
        response = web.json_response({"object": "list", "data": [{"id": model, "object": "model", "owned_by": "x"}]})
        if close_connections:
            response.force_close()
        return response

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        words = body.get("max_tokens")
        if not body.get("stream"):
            if words is None:
                await asyncio.sleep(3600)
            response = web.json_response(completion(model, " ".join(["word"] * words)))
            if close_connections:
                response.force_close()
            return response
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        if close_connections:
            response.force_close()
        await response.prepare(request)
        try:
            await response.write(chunk(model, {"role": "assistant", "content": ""}))
            sent = 0
            while words is None or sent < words:
                await response.write(chunk(model, {"content": " word"}))
                sent += 1
                if words is None:
                    await asyncio.sleep(0.2)
            await response.write(chunk(model, {}, finish="length"))
            await response.write(b"data: [DONE]\n\n")
        except ConnectionResetError:  # the gateway left
            pass
        return response

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    return app


@contextlib.contextmanager
def endless_upstream(**kwargs: Any) -> Iterator[str]:
    """`endless_app` served in a thread; yields its ``/v1`` base URL."""
    with aiohttp_in_thread(endless_app(**kwargs)) as base:
        yield f"{base}/v1"


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def open_file_limit(self) -> tuple[int, int]:
        """The process's open-file limit (soft, hard), as /proc shows it."""
        for line in Path(f"/proc/{self.process.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
        raise AssertionError("no open-file limit in /proc")

    def stop(self, timeout: float) -> float:
        """SIGTERM; the seconds until the process exited (it is killed past `timeout`, and the test fails)."""
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"routerd did not stop within {timeout} s of SIGTERM:\n{self.output()}") from None
        return time.monotonic() - start


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def write_config(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    """A TOML file of `tables` (``"server"``, ``"plugins.openai"``, ...: one level of keys each)."""
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def routerd_serve(
    tmp_path: Path, tables: dict[str, dict[str, Any]], open_files: tuple[int, int] | None = None
) -> Iterator[ServeProcess]:
    """``routerd serve`` with the configuration `tables` (its data in `tmp_path`; the plugins that would reach
    the internet or start llama.cpp off), started with the open-file limit `open_files` when given; yields once
    ``/healthz`` answers."""
    port = free_port()
    tables = {
        "server": {"port": port, **tables.get("server", {})},
        "profiling": {"enabled": False},
        "plugins.local": {"enabled": False},
        "plugins.hf_leaderboard": {"enabled": False},
        "plugins.lmsys_arena": {"enabled": False},
        **{name: table for name, table in tables.items() if name != "server"},
    }
    config = write_config(tmp_path / "routerd.toml", tables)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ROUTERD", "ROUTER_"))}
    env["ROUTERD__DATA_DIR"] = str(tmp_path)

    def limit() -> None:
        import resource

        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

    log = tmp_path / "routerd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROUTERD), "--config", str(config), "serve"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,  # setrlimit only, before exec
        )
    server = ServeProcess(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"routerd exited with {process.returncode}:\n{server.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"routerd did not start:\n{server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

"""The local backend: one llama_cpp.server process per model (`routerd_local.llama_server`, which adds the bundled
model's chat format), started on demand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from routerd import BackendUnavailable, Capabilities, ModelInfo
from routerd.toolkit import LLAMA_CPP_PYTHON, LoadedModel, OpenAICompatibleBackend, plan_unloads

if TYPE_CHECKING:
    from routerd_local import Settings

log = logging.getLogger("routerd.plugin.local")
# llama_cpp.server with routerd's chat formats registered; run by its path, so a model's start does not import routerd
SERVER = Path(__file__).with_name("llama_server.py")


@dataclass(frozen=True)
class LocalModelFile:
    name: str
    path: Path
    chat_format: str | None = None


@dataclass
class ModelServer:
    """A running (or crashed) llama_cpp.server for one model."""

    file: LocalModelFile
    process: asyncio.subprocess.Process
    port: int
    client: OpenAICompatibleBackend
    last_used: float = field(default_factory=time.monotonic)
    active: int = 0  # requests in flight: a busy server is never stopped for idleness or room
    stopping: bool = False

    @contextlib.asynccontextmanager
    async def in_use(self) -> AsyncIterator[None]:
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self.last_used = time.monotonic()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalBackend:
    def __init__(
        self, name: str, files: list[LocalModelFile], settings: Settings, *, pinned: str | None, log_dir: Path
    ) -> None:
        self.name = name
        self.files = {f.name: f for f in files}
        self.settings = settings
        self.pinned = pinned
        self.log_dir = log_dir
        self.servers: dict[str, ModelServer] = {}
        self._lock = asyncio.Lock()
        self._watchdog: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="routerd-local-watchdog")

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        for model in list(self.servers):
            await self.unload(model)

    async def _watch(self) -> None:
        """Stop idle servers; restart crashed ones that were in use."""
        while True:
            await asyncio.sleep(min(5.0, self.settings.idle_timeout / 2))
            now = time.monotonic()
            for model, server in list(self.servers.items()):
                if server.process.returncode is not None and not server.stopping:
                    log.warning("local model %s crashed (exit %s); restarting", model, server.process.returncode)
                    self.servers.pop(model, None)
                    await server.client.close()
                    with contextlib.suppress(Exception):
                        await self._ensure(model)
                elif server.active == 0 and now - server.last_used > self.settings.idle_timeout:
                    log.info("local model %s idle for %.0f s; stopping it", model, now - server.last_used)
                    await self.unload(model)

    # -- processes ---------------------------------------------------------------------------
    def _command(self, file: LocalModelFile, port: int) -> list[str]:
        command = [
            sys.executable, str(SERVER),
            "--model", str(file.path),
            "--model_alias", file.name,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(self.settings.context_size),
            "--embedding", "true",
            "--verbose", "false",
            # llama_cpp.server cuts a running stream short (no finish_reason, then [DONE]) when another
            # request arrives, by default; the gateway sends it requests at once (a profiling run, users)
            "--interrupt_requests", "false",
        ]  # fmt: skip
        if file.chat_format:
            command += ["--chat_format", file.chat_format]
        if self.settings.threads:
            command += ["--n_threads", str(self.settings.threads)]
        return command

    async def _ensure(self, model: str) -> ModelServer:
        server = self.servers.get(model)
        if server is not None and server.process.returncode is None:
            server.last_used = time.monotonic()
            return server
        async with self._lock:
            server = self.servers.get(model)
            if server is not None and server.process.returncode is None:
                return server
            file = self.files.get(model)
            if file is None:
                raise BackendUnavailable(f"backend {self.name} has no model {model}")
            await self._make_room(file)
            server = await self._spawn(file)
            self.servers[model] = server
            return server

    async def _make_room(self, file: LocalModelFile) -> None:
        loaded = [
            LoadedModel(name, s.file.path.stat().st_size, s.last_used)
            for name, s in self.servers.items()
            if s.process.returncode is None and s.active == 0
        ]
        for victim in plan_unloads(
            loaded,
            budget_bytes=self.settings.memory_budget,
            needed_bytes=file.path.stat().st_size,
            pinned=self.pinned,
            max_loaded=self.settings.max_loaded,
        ):
            log.info("unloading local model %s to make room for %s", victim, file.name)
            await self.unload(victim)

    async def _spawn(self, file: LocalModelFile) -> ModelServer:
        port = _free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logfile = (self.log_dir / f"{file.name}.log").open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(file, port),
                stdout=logfile,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            logfile.close()
        client = OpenAICompatibleBackend(
            f"{self.name}:{file.name}",
            f"http://127.0.0.1:{port}/v1",
            tools=False,
            dialect=LLAMA_CPP_PYTHON,
            default_max_tokens=self.settings.max_output_tokens,
        )
        await client.start()
        server = ModelServer(file, process, port, client)
        log.info("starting local model %s (pid %s, port %s)", file.name, process.pid, port)
        started = time.monotonic()
        deadline = started + self.settings.startup_timeout
        try:
            while time.monotonic() < deadline:
                if process.returncode is not None:
                    await client.close()
                    raise BackendUnavailable(
                        f"local model {file.name} failed to start (exit {process.returncode}); see {self.log_dir}"
                    )
                try:
                    async with client.session.get("models", timeout=aiohttp.ClientTimeout(total=2)) as response:
                        if response.status == 200:
                            server.last_used = time.monotonic()
                            log.info("local model %s ready in %.1f s", file.name, time.monotonic() - started)
                            return server
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            # the gateway closing (or a request given up) while the server starts: it is not in `servers` yet,
            # so nothing else would ever stop it
            await asyncio.shield(self._stop(server))
            raise
        await self._stop(server)
        raise BackendUnavailable(f"local model {file.name} did not start within {self.settings.startup_timeout:g} s")

    async def _stop(self, server: ModelServer) -> None:
        server.stopping = True
        await server.client.close()
        if server.process.returncode is None:
            server.process.terminate()
            try:
                await asyncio.wait_for(server.process.wait(), timeout=10)
            except TimeoutError:
                server.process.kill()
                await server.process.wait()

    # -- Backend -----------------------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                name=f.name,
                backend=self.name,
                context_window=self.settings.context_size,
                # llama_cpp.server as started here: chat and embeddings, no image projector, and
                # no tool calls (only its functionary chat formats make them)
                capabilities=Capabilities(chat=True, vision=False, tools=False, embeddings=True, json_output=True),
                size_bytes=f.path.stat().st_size,
                metadata={"path": str(f.path), "loaded": f.name in self.servers},
            )
            for f in self.files.values()
        ]

    async def chat(self, model: str, request: Any):
        server = await self._ensure(model)
        async with server.in_use():
            return await server.client.chat(model, request)

    async def stream(self, model: str, request: Any) -> AsyncIterator[Any]:
        server = await self._ensure(model)
        async with server.in_use():
            async for chunk in server.client.stream(model, request):
                yield chunk

    async def embed(self, model: str, inputs: list[str]):
        server = await self._ensure(model)
        async with server.in_use():
            return await server.client.embed(model, inputs)

    async def unload(self, model: str) -> None:
        server = self.servers.pop(model, None)
        if server is not None:
            log.info("stopping local model %s", model)
            await self._stop(server)

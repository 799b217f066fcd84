"""A plugin that shows through HTTP and the CLI what its learner, job, routes and command saw: a learner that
records every outcome, a job that counts its ticks, an open route and an admin route that show both, and a
`fixture-hello` command that starts the gateway and prints the models it serves."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import click
import msgspec
from litestar import Request, get

import routerd


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    tick: float = 0.05


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.outcomes: list[routerd.Outcome] = []

    async def learn(self, outcome: routerd.Outcome) -> None:
        self.outcomes.append(outcome)


class Ticker:
    name = "ticker"

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.ticks = 0
        self.started = False
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.started = True
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(self.tick)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _recorder(context) -> Recorder:
    return context.shared("recorder", Recorder)


def _ticker(context) -> Ticker:
    return context.shared("ticker", lambda: Ticker(context.settings.tick))


@routerd.hookimpl
def register_learners(register, context):
    register(_recorder(context))


@routerd.hookimpl
def register_jobs(register, context):
    register(_ticker(context))


@routerd.hookimpl
def register_routes(register, context):
    recorder, ticker = _recorder(context), _ticker(context)

    @get("/fixture/outcomes")
    async def outcomes(request: Request) -> list[dict[str, Any]]:
        principal = await context.principal(request)
        return [
            {"model": o.model, "ok": o.ok, "rating": o.rating, "category": o.features.category, "who": principal.kind}
            for o in recorder.outcomes
        ]

    @get("/admin/fixture/ticks")
    async def ticks() -> dict[str, Any]:
        return {"ticks": ticker.ticks, "started": ticker.started}

    register(outcomes)
    register(ticks)


@routerd.hookimpl
def register_commands(register, context):
    @click.command("fixture-hello", help="Start the gateway and list the models it serves.")
    @click.option("--greeting", default="hello")
    def hello(greeting: str) -> None:
        async def run() -> list[str]:
            async with context.started():
                assert not context.serving  # a command's gateway runs no jobs
                return sorted(context.models.names())

        names = asyncio.run(run())
        click.echo(f"{greeting}: {', '.join(names)} (ticks {_ticker(context).ticks})")

    register(hello)

"""``routerd profile [MODEL] [--force]`` and ``routerd profiles export|import``, the commands the plugin registers.

`routerd profile` runs the profiler in this process: the gateway is started (database, plugins, discovery;
no HTTP server, no background jobs: ``context.started()``), the due models are profiled with a progress bar
(model, category, prompt, percent, ETA), and the results are printed as a table. Like the background job, it holds
the replica lock on PostgreSQL while it profiles.

Errors end a command with one line: a database that does not answer exits 1, as in the kernel's commands; other
errors exit 2 (``profiles import``: 1, and a refused file names each problem).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click

from routerd import ConfigError, DatabaseUnavailable, GatewayError, PluginContext, PluginError, runtime_profile
from routerd_profiling.exchange import (
    ImportRefused,
    encode,
    export_measurements,
    import_measurements,
    parse_measurements,
)
from routerd_profiling.job import PROFILING_LOCK_ID
from routerd_profiling.profiler import Profiler

ERRORS = (ConfigError, PluginError, GatewayError, ImportRefused)  # what ends a command with one line


def _fail(command: str, exc: BaseException, code: int) -> None:
    """One line, no traceback; a database that does not answer exits 1, as in the other commands."""
    click.echo(f"routerd {command}: {exc}", err=True)
    sys.exit(1 if isinstance(exc, DatabaseUnavailable) else code)


def _run(command: str, work: Coroutine[Any, Any, Any], code: int) -> Any:
    try:
        return asyncio.run(work)
    except (*ERRORS, DatabaseUnavailable) as exc:
        _fail(command, exc, code)


@asynccontextmanager
async def _gateway(context: PluginContext, *, database_only: bool = False) -> AsyncIterator[None]:
    """The gateway started for a command (only its database, for export and import), once it has answered."""
    async with context.started(database_only=database_only):
        yield


class BarReporter:
    """A rich progress bar for a profiling run, and a line per model as it finishes."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: Any = None

    def run_started(self, progress) -> None:
        self.bar.start()
        self.task = self.bar.add_task("starting", total=progress.total)

    def prompt_started(self, progress) -> None:
        from rich.markup import escape

        where = f"{progress.model} [{progress.model_index}/{len(progress.models)}]"
        step = f"{progress.category} · {progress.prompt} ({progress.prompt_index}/{progress.prompts_per_model})"
        self.bar.update(self.task, description=escape(f"{where} {step}"))

    def prompt_finished(self, progress, result) -> None:
        from rich.markup import escape

        self.bar.update(self.task, completed=progress.done)
        if result.score is None and result.method == "error":
            self.bar.console.print(escape(f"  {progress.model} {result.id}: failed: {result.error}"))

    def model_finished(self, progress, run) -> None:
        from rich.markup import escape

        parts = [
            f"{c.category} {c.quality:.2f}" if c.quality is not None else f"{c.category} -" for c in run.categories
        ]
        self.bar.console.print(escape(f"profiled {progress.model}: {'; '.join(parts)}"))

    def run_finished(self, progress) -> None:
        self.bar.update(self.task, completed=progress.total, description="done")
        self.bar.stop()


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def results_table(runs: list[tuple[str, Any]]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table("model", "category", "quality", "graded", "unjudged", "failed", "TTFT ms", "tok/s", "latency ms")
    for model, run in runs:
        profile = runtime_profile(run)
        for name, c in [*profile.categories.items(), ("all", profile.overall())]:
            table.add_row(
                escape(model),
                name,
                _figure(c.quality, ".2f"),
                str(c.judged),
                str(c.unjudged),
                str(c.errors),
                _figure(c.ttft_ms, ".0f"),
                _figure(c.tokens_per_second, ".1f"),
                _figure(c.latency_ms, ".0f"),
            )
    return table


async def _profile(context: PluginContext, profiler: Profiler, model: str | None, force: bool, console: Any) -> int:
    async with _gateway(context):
        suite = profiler.suite.suite_version
        if model is not None:
            info = profiler.chat_model(model)
            if info is None:
                known = ", ".join(m.key for m in profiler.chat_models()) or "none"
                raise click.UsageError(f"no chat model {model!r} in the catalog (chat models: {known})")
            models = [info]
        else:
            models = [m for m in profiler.chat_models() if not profiler.skipped(m)]
        if not models:
            console.print("no chat model to profile (the catalog is empty: are the backends reachable?)")
            return 0
        async with context.database.replica_lock(PROFILING_LOCK_ID) as acquired:
            if not acquired:
                console.print("another gateway replica is profiling now; try again when it has finished")
                return 1
            due = models if force else await profiler.due(models, retrying=True)
            if not due:
                names = ", ".join(m.key for m in models)
                console.print(f"{names}: profiled with suite {suite} already (--force profiles again)")
                latest = {(r.backend, r.name): r for r in await profiler.store.latest()}
                shown = [(m.key, latest[(m.backend, m.name)]) for m in models if (m.backend, m.name) in latest]
                console.print(results_table(shown))
                return 0
            runs = await profiler.run(due, BarReporter(console))
        console.print(results_table([(profiler.public_id(r.backend, r.name), r) for r in runs]))
        return 0 if len(runs) == len(due) else 1


async def _export(context: PluginContext) -> Any:
    async with _gateway(context, database_only=True):
        return await export_measurements(context.profile_store, context.benchmarks)


async def _import(context: PluginContext, measurements: Any) -> Any:
    async with _gateway(context, database_only=True):
        return await import_measurements(context.database, context.profile_store, context.benchmarks, measurements)


def profiling_commands(context: PluginContext, profiler: Profiler) -> list[click.Command]:
    """``routerd profile`` and the ``routerd profiles`` group, as closures over the plugin's context."""

    @click.command(
        "profile",
        help=(
            "Profile models now, in this process: run the profiling suite against MODEL (default: every chat model "
            "without a profile for the current suite), with a progress bar, and print per-category quality and "
            "speed."
        ),
    )
    @click.argument("model", required=False)
    @click.option("--force", is_flag=True, help="Profile again even models with a profile for the current suite.")
    def profile_command(model: str | None, force: bool) -> None:
        from rich.console import Console

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        sys.exit(_run("profile", _profile(context, profiler, model, force, Console(width=160)), 2))

    @click.group("profiles", help="Share measurements between gateways: profiles and benchmark records as JSON.")
    def profiles_group() -> None:
        pass

    @profiles_group.command(
        "export",
        help="Write every stored profile (with its history) and benchmark record as JSON (docs/profiling.md).",
    )
    @click.option(
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write to this file (default: standard output).",
    )
    def profiles_export(output: Path | None) -> None:
        measurements = _run("profiles export", _export(context), 2)
        data = encode(measurements)
        if output is None:
            click.echo(data.decode(), nl=False)
            return
        output.write_bytes(data)
        click.echo(
            f"wrote {len(measurements.profiles)} profile rows and {len(measurements.benchmarks)} benchmark records "
            f"to {output}",
            err=True,
        )

    @profiles_group.command(
        "import",
        help=(
            "Read profiles and benchmark records exported by a gateway. The whole file is checked first; any "
            "problem refuses it, naming the record and field, and nothing is written. Importing twice adds nothing."
        ),
    )
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def profiles_import(file: Path) -> None:
        try:
            measurements = parse_measurements(file.read_bytes(), context.benchmarks)
        except ImportRefused as exc:
            _fail("profiles import", exc, 1)
        summary = _run("profiles import", _import(context, measurements), 1)
        click.echo(f"imported {file}: {summary}")

    return [profile_command, profiles_group]

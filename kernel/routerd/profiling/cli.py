"""``routerd profile [MODEL] [--force]`` and ``routerd profiles export|import``.

`routerd profile` runs the profiler in this process: the gateway is started (database, plugins, discovery;
no HTTP server, no background jobs), the due models are profiled with a progress bar (model, category,
prompt, percent, ETA), and the results are printed as a table.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import click

from routerd.errors import RouterdError


def _echo_error(command: str, exc: BaseException, code: int) -> None:
    """One line, no traceback; a database that does not answer exits 1, as in the other commands."""
    from routerd.db.database import DatabaseUnavailable

    click.echo(f"routerd {command}: {exc}", err=True)
    sys.exit(1 if isinstance(exc, DatabaseUnavailable) else code)


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

    from routerd.profiling.index import runtime_profile

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


async def _profile(settings: Any, model: str | None, force: bool, console: Any) -> int:
    from routerd.db.advisory import replica_lock
    from routerd.db.database import ensure_reachable
    from routerd.gateway import Gateway
    from routerd.jobs.profiling import PROFILING_LOCK_ID
    from routerd.profiling.report import public_id

    await ensure_reachable(settings.database_url)
    gateway = Gateway(settings)
    await gateway.start(background=False)
    try:
        profiler = gateway.profiling.profiler
        suite = profiler.suite.suite_version
        if model is not None:
            entry = gateway.catalog.get(model)
            if entry is None or not entry.info.capabilities.chat:
                known = ", ".join(e.id for e in profiler.chat_models()) or "none"
                raise click.UsageError(f"no chat model {model!r} in the catalog (chat models: {known})")
            entries = [entry]
        else:
            entries = [e for e in profiler.chat_models() if not profiler.skipped(e)]
        if not entries:
            console.print("no chat model to profile (the catalog is empty: are the backends reachable?)")
            return 0
        async with replica_lock(gateway.database, PROFILING_LOCK_ID) as acquired:
            if not acquired:
                console.print("another gateway replica is profiling now; try again when it has finished")
                return 1
            due = entries if force else await profiler.due(entries, retrying=True)
            if not due:
                names = ", ".join(e.id for e in entries)
                console.print(f"{names}: profiled with suite {suite} already (--force profiles again)")
                latest = {(r.backend, r.name): r for r in await profiler.repository.latest()}
                shown = [
                    (e.id, latest[(e.info.backend, e.info.name)])
                    for e in entries
                    if (e.info.backend, e.info.name) in latest
                ]
                console.print(results_table(shown))
                return 0
            runs = await profiler.run(due, BarReporter(console))
        console.print(results_table([(public_id(gateway.catalog, r.backend, r.name), r) for r in runs]))
        return 0 if len(runs) == len(due) else 1
    finally:
        await gateway.close()


@click.command(
    "profile",
    help=(
        "Profile models now, in this process: run the profiling suite against MODEL (default: every chat model "
        "without a profile for the current suite), with a progress bar, and print per-category quality and speed."
    ),
)
@click.argument("model", required=False)
@click.option("--force", is_flag=True, help="Profile again even models with a profile for the current suite.")
@click.pass_context
def profile_command(ctx: click.Context, model: str | None, force: bool) -> None:
    from rich.console import Console

    from routerd.config import load_settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(ctx.obj["config"])
        code = asyncio.run(_profile(settings, model, force, Console(width=160)))
    except RouterdError as exc:
        _echo_error("profile", exc, 2)
    sys.exit(code)


@click.group("profiles", help="Share measurements between gateways: profiles and benchmark records as JSON.")
def profiles_group() -> None:
    pass


async def _with_database(settings: Any, work: Any) -> Any:
    from routerd.db.database import Database, ensure_reachable

    await ensure_reachable(settings.database_url)
    database = Database(settings.database_url, auto_upgrade=settings.database.auto_upgrade)
    await database.start()
    try:
        return await work(database)
    finally:
        await database.close()


@profiles_group.command(
    "export", help="Write every stored profile (with its history) and benchmark record as JSON (docs/profiling.md)."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (default: standard output).",
)
@click.pass_context
def profiles_export(ctx: click.Context, output: Path | None) -> None:
    from routerd.config import load_settings
    from routerd.profiling.exchange import encode, export_measurements

    try:
        measurements = asyncio.run(_with_database(load_settings(ctx.obj["config"]), export_measurements))
    except RouterdError as exc:
        _echo_error("profiles export", exc, 2)
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
        "Read profiles and benchmark records exported by a gateway. The whole file is checked first; any problem "
        "refuses it, naming the record and field, and nothing is written. Importing twice adds nothing."
    ),
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def profiles_import(ctx: click.Context, file: Path) -> None:
    from routerd.benchmarks.fields import allowed_benchmarks
    from routerd.config import load_settings
    from routerd.profiling.exchange import import_measurements, parse_measurements

    try:
        settings = load_settings(ctx.obj["config"])
        measurements = parse_measurements(file.read_bytes(), allowed_benchmarks(settings.benchmarks.extra_benchmarks))

        async def work(database):
            return await import_measurements(database, measurements)

        summary = asyncio.run(_with_database(settings, work))
    except RouterdError as exc:
        _echo_error("profiles import", exc, 1)
    click.echo(f"imported {file}: {summary}")

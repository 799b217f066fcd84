"""The command line: ``routerd serve | plugins | config | db | eval | profile | profiles``."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from routerd.config import Settings, effective, load_settings
from routerd.db.database import DatabaseUnavailable, ensure_reachable
from routerd.errors import ConfigError, PluginError


def _fail_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Configuration and plugin errors, and a database that does not answer, end the command with
    one clear line, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, PluginError) as exc:
            click.echo(f"routerd: configuration error: {exc}", err=True)
            sys.exit(2)
        except DatabaseUnavailable as exc:
            click.echo(f"routerd: {exc}", err=True)
            sys.exit(1)

    return wrapper


def _settings(ctx: click.Context) -> Settings:
    return load_settings(ctx.obj["config"])


def _reachable_database_url(settings: Settings) -> str:
    """The database URL, once the database has answered (else `DatabaseUnavailable`)."""
    asyncio.run(ensure_reachable(settings.database_url))
    return settings.database_url


@click.group(help="routerd: one OpenAI-compatible endpoint in front of every model you run.")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML configuration file (default: $ROUTERD_CONFIG; without either, defaults and environment).",
)
@click.version_option(package_name="routerd")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    ctx.obj = {"config": config}


@main.command(help="Run the gateway (uvicorn, one worker; a log line per request only at log level debug).")
@click.option("--host", default=None, help="Listen address (default: server.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: server.port).")
@click.pass_context
@_fail_cleanly
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    import uvicorn

    from routerd.app import create_app
    from routerd.http_server import http_protocol

    settings = _settings(ctx)
    logging.basicConfig(level=settings.server.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # faiss-cpu's wheel (1.15 here) is one library that picks its SIMD code at run time (compile options "DD"),
    # but its loader still tries the per-instruction-set modules first and logs each miss at INFO, with a
    # ModuleNotFoundError that reads like a failure
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    app = create_app(settings)
    _reachable_database_url(settings)
    uvicorn.run(
        app,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=settings.server.log_level,
        # uvloop and httptools when installed (uvicorn[standard], a dependency): "auto" picks the
        # loop; the protocol is httptools' with one socket write per response (routerd.http_server).
        loop="auto",
        http=http_protocol(),
        # The access log costs a formatted line per request on the hot path: debug only.
        access_log=settings.server.log_level.lower() == "debug",
        proxy_headers=False,
    )


@main.command(help="List every installed plugin: version, enabled or not, hooks, what it registered.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same as GET /admin/plugins).")
@click.pass_context
@_fail_cleanly
def plugins(ctx: click.Context, as_json: bool) -> None:
    from routerd.gateway import Gateway

    described = Gateway(_settings(ctx)).plugins.describe()
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("plugin", "version", "enabled", "hooks", "registered", box=None)
    for row in described:
        registered = "; ".join(f"{family}: {', '.join(names)}" for family, names in row["registered"].items())
        hooks = ", ".join(row["hooks"]) if row["enabled"] else (row["note"] or "(not imported)")
        cells = [row["name"], row["version"], "yes" if row["enabled"] else "no", hooks, registered or "-"]
        table.add_row(*(escape(cell) for cell in cells))
    Console(width=200).print(table)


@main.group(help="Show the configuration.")
def config() -> None:
    pass


@config.command("show", help="The effective configuration, secrets masked.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML-like text.")
@click.pass_context
@_fail_cleanly
def config_show(ctx: click.Context, as_json: bool) -> None:
    data = effective(_settings(ctx))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for line in _as_toml(data):
        click.echo(line)


def _as_toml(data: dict[str, Any], prefix: str = "") -> list[str]:
    lines = [
        f"# {k} is not set" if v is None else f"{k} = {json.dumps(v)}"
        for k, v in data.items()
        if not isinstance(v, dict)
    ]
    for key, value in data.items():
        if isinstance(value, dict):
            name = f"{prefix}{key}"
            body = _as_toml(value, name + ".")
            if any(not isinstance(v, dict) for v in value.values()):
                lines += ["", f"[{name}]"]
            lines += body
    return lines


@config.command("docs", help="Print the settings table of docs/configuration.md (--write: update that file).")
@click.option(
    "--write",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Replace the table between the settings-table markers of this Markdown file.",
)
def config_docs(target: Path | None) -> None:
    from routerd.config_docs import settings_table, write_table

    if target is None:
        click.echo(settings_table(), nl=False)
    else:
        write_table(target)
        click.echo(f"updated {target}")


from routerd.learning.cli import eval_group  # noqa: E402  (`routerd eval routing`)

main.add_command(eval_group)

from routerd.profiling.cli import profile_command, profiles_group  # noqa: E402  (`routerd profile`, `profiles`)

main.add_command(profile_command)
main.add_command(profiles_group)


@main.group(help="Database schema: migrations with Alembic.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply migrations up to REVISION (default: the newest).")
@click.argument("revision", default="head")
@click.pass_context
@_fail_cleanly
def db_upgrade(ctx: click.Context, revision: str) -> None:
    from routerd.db import migrate

    url = _reachable_database_url(_settings(ctx))
    asyncio.run(migrate.upgrade(url, revision))
    click.echo(f"database at revision {asyncio.run(migrate.current(url))}")


@db.command("downgrade", help="Revert migrations down to REVISION ('base' removes every table).")
@click.argument("revision")
@click.pass_context
@_fail_cleanly
def db_downgrade(ctx: click.Context, revision: str) -> None:
    from routerd.db import migrate

    url = _reachable_database_url(_settings(ctx))
    asyncio.run(migrate.downgrade(url, revision))
    click.echo(f"database at revision {asyncio.run(migrate.current(url)) or 'base'}")


@db.command("current", help="Print the database's revision and the newest one available.")
@click.pass_context
@_fail_cleanly
def db_current(ctx: click.Context) -> None:
    from routerd.db import migrate

    current = asyncio.run(migrate.current(_reachable_database_url(_settings(ctx))))
    head = migrate.head_revision()
    state = "up to date" if current == head else "upgrade available: routerd db upgrade"
    click.echo(f"current: {current or 'none (empty database)'}\nhead: {head}\n{state}")

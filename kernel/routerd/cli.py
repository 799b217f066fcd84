"""The command line: ``routerd serve | plugins | config | db``, and the commands plugins register
(`register_commands`: ``routerd eval`` from ``learned``, ``routerd profile`` and ``profiles`` from ``profiling``).
Plugin commands are found by loading the enabled plugins of the configuration the command is given."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import click

from routerd.config import Settings, effective, load_settings
from routerd.db.database import DatabaseUnavailable, ensure_reachable
from routerd.errors import ConfigError, PluginError


def _settings(ctx: click.Context) -> Settings:
    return load_settings(ctx.obj["config"])


def _reachable_database_url(settings: Settings) -> str:
    """The database URL, once the database has answered (else `DatabaseUnavailable`)."""
    asyncio.run(ensure_reachable(settings.database_url))
    return settings.database_url


class RouterdCommands(click.Group):
    """The kernel's commands, then those the enabled plugins register; the plugins are loaded (from the
    configuration, ``--config`` or ``ROUTERD_CONFIG``) only when a command that is not the kernel's is asked for,
    or the list of commands."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        found = ctx.meta.get("routerd.plugin_commands")
        if found is not None:
            return found
        found = {}
        try:
            from routerd.gateway import Gateway

            gateway = Gateway(load_settings(ctx.params.get("config")))
            for name, command in gateway.plugins.registry.commands.items():
                if name in self.commands:
                    owner = gateway.plugins.registry.owner[("register_commands", name)]
                    raise PluginError(owner, f"register_commands: `routerd {name}` is a command of the kernel")
                found[name] = command
            ctx.meta["routerd.gateway"] = gateway
        except (ConfigError, PluginError) as exc:
            ctx.meta["routerd.plugin_error"] = exc
        ctx.meta["routerd.plugin_commands"] = found
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugin_commands(ctx)})

    def invoke(self, ctx: click.Context) -> Any:
        """Configuration and plugin errors, and a database that does not answer, end any command (the kernel's
        or a plugin's) with one clear line and exit status 2 or 1, never a traceback."""
        try:
            return super().invoke(ctx)
        except (ConfigError, PluginError) as exc:
            click.echo(f"routerd: configuration error: {exc}", err=True)
            ctx.exit(2)
        except DatabaseUnavailable as exc:
            click.echo(f"routerd: {exc}", err=True)
            ctx.exit(1)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        command = self._plugin_commands(ctx).get(cmd_name)
        if command is None and (error := ctx.meta.get("routerd.plugin_error")) is not None:
            click.echo(f"routerd: configuration error: {error}", err=True)
            ctx.exit(2)
        return command


@click.group(cls=RouterdCommands, help="routerd: one OpenAI-compatible endpoint in front of every model you run.")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    is_eager=True,  # before --help, which lists the commands of the plugins this configuration enables
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
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    import uvicorn

    from routerd.app import create_app
    from routerd.http_server import raise_open_file_limit, uvicorn_options

    settings = _settings(ctx)
    logging.basicConfig(level=settings.server.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # faiss-cpu's wheel (1.15 here) is one library that picks its SIMD code at run time (compile options "DD"),
    # but its loader still tries the per-instruction-set modules first and logs each miss at INFO, with a
    # ModuleNotFoundError that reads like a failure
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    app = create_app(settings)
    _reachable_database_url(settings)
    raise_open_file_limit(settings.server.max_connections)
    uvicorn.run(
        app,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=settings.server.log_level,
        # uvloop and httptools when installed (uvicorn[standard], a dependency): "auto" picks the
        # loop; the protocol is httptools' with one socket write per response and [server]'s limits and
        # deadlines, with its connection limit and shutdown deadline (routerd.http_server).
        loop="auto",
        **uvicorn_options(settings.server),
        # The access log costs a formatted line per request on the hot path: debug only.
        access_log=settings.server.log_level.lower() == "debug",
        proxy_headers=False,
    )


@main.command(help="List every installed plugin: version, enabled or not, hooks, what it registered.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same as GET /admin/plugins).")
@click.pass_context
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


@main.group(help="Database schema: migrations with Alembic (the kernel's, then each enabled plugin's own).")
def db() -> None:
    pass


def _plugin_migrations(settings: Settings) -> dict[str, Path]:
    """The enabled plugins' own migrations (their MIGRATIONS folders): the plugins are loaded to find them."""
    from routerd.gateway import Gateway

    return dict(Gateway(settings).database.plugin_migrations)


@db.command("upgrade", help="Apply the kernel's migrations up to REVISION (default: the newest), then every plugin's.")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    from routerd.db import migrate

    settings = _settings(ctx)
    plugins = _plugin_migrations(settings)
    url = _reachable_database_url(settings)
    asyncio.run(migrate.upgrade(url, revision, plugins=plugins))
    click.echo(f"database at revision {asyncio.run(migrate.current(url))}")
    for name in sorted(plugins):
        click.echo(f"plugin {name} at revision {asyncio.run(migrate.current(url, plugin=name))}")


@db.command("downgrade", help="Revert migrations down to REVISION ('base' removes every table they made).")
@click.argument("revision")
@click.option("--plugin", default=None, help="Revert this plugin's own migrations instead of the kernel's.")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str, plugin: str | None) -> None:
    from routerd.db import migrate

    settings = _settings(ctx)
    target = None
    if plugin is not None:
        plugins = _plugin_migrations(settings)
        if plugin not in plugins:
            raise ConfigError("--plugin", f"no enabled plugin {plugin!r} has migrations (with: {sorted(plugins)})")
        target = (plugin, plugins[plugin])
    url = _reachable_database_url(settings)
    asyncio.run(migrate.downgrade(url, revision, plugin=target))
    found = asyncio.run(migrate.current(url, plugin=plugin))
    click.echo(f"{'plugin ' + plugin if plugin else 'database'} at revision {found or 'base'}")


@db.command("current", help="Print the database's revisions (the kernel's and each plugin's) and the newest ones.")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    from routerd.db import migrate

    settings = _settings(ctx)
    plugins = _plugin_migrations(settings)
    url = _reachable_database_url(settings)
    current = asyncio.run(migrate.current(url))
    head = migrate.head_revision()
    behind = current != head
    click.echo(f"current: {current or 'none (empty database)'}\nhead: {head}")
    for name, folder in sorted(plugins.items()):
        found, newest = asyncio.run(migrate.current(url, plugin=name)), migrate.plugin_head(name, folder)
        behind = behind or found != newest
        click.echo(f"plugin {name}: current {found or 'none'}, head {newest}")
    click.echo("upgrade available: routerd db upgrade" if behind else "up to date")

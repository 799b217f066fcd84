"""Builtin plugin ``profiling``: measures every model the gateway serves with a suite of prompts the team wrote,
how good its answers are per kind of prompt and how fast it gives them (docs/profiling.md).

- `register_jobs`: profiling in the background (at start, for new models, on ``POST /admin/reprofile``);
- `register_routes`: ``GET /admin/profiles``, ``GET /admin/profiles/{model}``, ``POST /admin/reprofile``;
- `register_commands`: ``routerd profile [MODEL] [--force]`` and ``routerd profiles export|import``.

The settings are the gateway's ``[profiling]`` section (``context.config.profiling``): ``profiling.enabled =
false`` switches the background profiler off; ``[plugins.profiling] enabled = false`` switches the whole plugin
off (no job, no routes, no commands). The runs go to ``context.profile_store`` and ``context.profiles``, which the
kernel keeps: the ``profiles`` and ``speed`` scorers read them whether this plugin is on or not.
"""

from __future__ import annotations

import routerd
from routerd import CategoryProfile, ProfileIndex, RuntimeProfile
from routerd_profiling.job import ProfilingJob
from routerd_profiling.profiler import Profiler
from routerd_profiling.suite import load_suite

__all__ = ["CategoryProfile", "ProfileIndex", "RuntimeProfile"]  # where they used to live (bench/, old plugins)


def _profiler(context: routerd.PluginContext) -> Profiler:
    """The plugin's one profiler in this gateway, shared by the job, the routes and the commands. A suite that
    does not validate stops start-up (a `routerd.ConfigError` naming the file, the prompt and the field)."""

    def make() -> Profiler:
        settings = context.config.profiling
        suite = load_suite(settings.suite)
        return Profiler(
            context.models, context.judges, context.profile_store, context.profiles, settings, suite, context.traffic
        )

    return context.shared("profiler", make)


def _job(context: routerd.PluginContext) -> ProfilingJob:
    return context.shared(
        "job", lambda: ProfilingJob(_profiler(context), context.database, context.models, context.config.profiling)
    )


@routerd.hookimpl
def register_jobs(register, context: routerd.PluginContext) -> None:
    register(_job(context))


@routerd.hookimpl
def register_routes(register, context: routerd.PluginContext) -> None:
    from routerd_profiling.routes import profiling_routes

    for handler in profiling_routes(_job(context), context.profile_store):
        register(handler)


@routerd.hookimpl
def register_commands(register, context: routerd.PluginContext) -> None:
    from routerd_profiling.cli import profiling_commands

    for command in profiling_commands(context, _profiler(context)):
        register(command)

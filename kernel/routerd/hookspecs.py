"""Every hook a routerd plugin can implement (pluggy project name ``routerd``).

Hooks run once, at start-up, to register objects; the per-request work happens in the async
methods of those objects (see `routerd.protocols`). Each hook is called separately for each
enabled plugin, with that plugin's own `PluginContext`, so ``context.settings`` is always the
plugin's own validated settings Struct.

A plugin implements a hook by defining a function of the same name decorated with
``@routerd.hookimpl``; it may take any subset of the arguments. A misspelled hook name stops
start-up. docs/plugins.md has a section and a runnable example for each hook below; a test fails
when one is missing.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from routerd.context import PluginContext
from routerd.protocols import Authenticator, Backend, BenchmarkProvider, Cache, Scorer, Skill

PROJECT = "routerd"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_backends(register: Callable[[Backend], None], context: PluginContext) -> None:
    """Register the plugin's `Backend` objects: call ``register(backend)`` for each.

    Called at start-up, before discovery polls the backends. Names must be unique across all
    plugins. Returns nothing.
    """


@hookspec
def register_benchmark_providers(register: Callable[[BenchmarkProvider], None], context: PluginContext) -> None:
    """Register the plugin's `BenchmarkProvider` objects: call ``register(provider)`` for each.

    Called at start-up. The benchmark sync job calls ``fetch()`` on each provider named in
    ``benchmarks.sources`` (every one, when that list is empty). Returns nothing.
    """


@hookspec
def register_scorers(register: Callable[[Scorer], None], context: PluginContext) -> None:
    """Register the plugin's `Scorer` objects: call ``register(scorer)`` for each.

    Called at start-up. Routing calls ``score()`` on every scorer for every request and combines
    the contributions; profiling and learning call ``judge()`` on answers. Returns nothing.
    """


@hookspec
def register_skills(register: Callable[[Skill], None], context: PluginContext) -> None:
    """Register the plugin's `Skill` objects (server-side tools): call ``register(skill)``.

    Called at start-up. Skill names must be unique; they are offered to models as tools.
    Returns nothing.
    """


@hookspec
def register_caches(register: Callable[[Cache], None], context: PluginContext) -> None:
    """Register the plugin's `Cache` objects: call ``register(cache)`` for each.

    Called at start-up. On a request the caches are asked in registration order; the first hit
    answers. Returns nothing.
    """


@hookspec
def register_authenticators(register: Callable[[Authenticator], None], context: PluginContext) -> None:
    """Register the plugin's `Authenticator` objects: call ``register(authenticator)`` for each.

    Called at start-up. Every request is shown to each authenticator in turn until one returns a
    principal or refuses the request. Returns nothing.
    """


# The hook families, in the order the kernel calls them, with the protocol each registers.
FAMILIES: dict[str, type] = {
    "register_backends": Backend,
    "register_benchmark_providers": BenchmarkProvider,
    "register_scorers": Scorer,
    "register_skills": Skill,
    "register_caches": Cache,
    "register_authenticators": Authenticator,
}

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
from typing import Any

import pluggy

from routerd.context import PluginContext
from routerd.protocols import Authenticator, Backend, BenchmarkProvider, Cache, Job, Judge, Learner, Scorer, Skill

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
    """Register the plugin's `Scorer` objects (predictors): call ``register(scorer)`` for each.

    Called at start-up. Routing calls ``score()`` on every scorer for every request that is not pinned and
    combines the contributions into a ranked list of models. Returns nothing.
    """


@hookspec
def register_judges(register: Callable[[Judge], None], context: PluginContext) -> None:
    """Register the plugin's `Judge` objects: call ``register(judge)`` for each.

    Called at start-up. Whoever grades answers (profiling) asks the judges in registration order through
    ``context.judges``; the first valid verdict counts. Routing never calls a judge. Returns nothing.
    """


@hookspec
def register_learners(register: Callable[[Learner], None], context: PluginContext) -> None:
    """Register the plugin's `Learner` objects: call ``register(learner)`` for each.

    Called at start-up. The decision log shows every routed request's outcome, and every piece of feedback, to
    each learner's ``learn()``, off the request path. Returns nothing.
    """


@hookspec
def register_skills(register: Callable[[Skill], None], context: PluginContext) -> None:
    """Register the plugin's `Skill` objects (server-side tools): call ``register(skill)``.

    Called at start-up. Skill names must be unique. The chat pipeline offers the skills to the requests that ask
    for them (``skills.offer``, the ``X-Routerd-Skills`` header) as tools, runs the ones the model calls and
    continues the conversation with their results, at most ``skills.max_iterations`` times. Returns nothing.
    """


@hookspec
def register_caches(register: Callable[[Cache], None], context: PluginContext) -> None:
    """Register the plugin's `Cache` objects: call ``register(cache)`` for each.

    Called at start-up. Before routing, the caches are asked in registration order and the first hit answers
    the request; a complete, successful answer is shown to every cache's ``store()``. Returns nothing.
    """


@hookspec
def register_authenticators(register: Callable[[Authenticator], None], context: PluginContext) -> None:
    """Register the plugin's `Authenticator` objects: call ``register(authenticator)`` for each.

    Called at start-up. Every request is shown to each authenticator in turn until one returns a
    principal or refuses the request. Returns nothing.
    """


@hookspec
def register_jobs(register: Callable[[Job], None], context: PluginContext) -> None:
    """Register the plugin's background `Job` objects: call ``register(job)`` for each.

    Called at start-up. A gateway that serves requests starts the jobs (``await job.start()``) once every other
    registered object has started, and closes them first when it stops; a gateway started for a command
    (``context.started()``) does not start them. Returns nothing.
    """


@hookspec
def register_routes(register: Callable[[Any], None], context: PluginContext) -> None:
    """Register the plugin's HTTP routes: call ``register(handler)`` with Litestar route handlers (functions
    decorated with ``@litestar.get``, ``@litestar.post``, ...) or a ``litestar.Router``.

    Called at start-up, when the app is built. A route under ``/admin`` needs an admin principal, as the kernel's
    own admin routes do; a route elsewhere is open unless the handler checks ``context.principal(request)``. A
    path the kernel or another plugin already serves stops start-up. Returns nothing.
    """


@hookspec
def register_commands(register: Callable[[Any], None], context: PluginContext) -> None:
    """Register the plugin's command-line commands: call ``register(command)`` with ``click`` commands or groups,
    which become ``routerd <name>``.

    Called when the ``routerd`` command starts (plugins are loaded from the configuration it is given). A command
    that needs the running gateway (its database, models, plugins) uses ``async with context.started():``. A name
    the kernel or another plugin already uses stops the command. Returns nothing.
    """


# The hook families, in the order the kernel calls them, with the protocol each registers. Routes and
# commands register Litestar handlers and click commands, checked as such (`routerd.plugins.Registry`).
FAMILIES: dict[str, type | None] = {
    "register_backends": Backend,
    "register_benchmark_providers": BenchmarkProvider,
    "register_scorers": Scorer,
    "register_judges": Judge,
    "register_learners": Learner,
    "register_skills": Skill,
    "register_caches": Cache,
    "register_authenticators": Authenticator,
    "register_jobs": Job,
    "register_routes": None,
    "register_commands": None,
}

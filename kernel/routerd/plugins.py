"""Plugin discovery, enabling, per-plugin settings, hook calls and introspection.

Plugins are found through the ``routerd`` entry-point group; builtin plugins are entry points of
the routerd distribution itself, so the kernel never imports a plugin by name. A plugin switched
off with ``enabled = false`` in its ``[plugins.<name>]`` table is never imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import msgspec
import pluggy

from routerd import hookspecs
from routerd.config import Settings, describe_key, explain_validation_error
from routerd.context import PluginContext, Services
from routerd.db.database import Database
from routerd.errors import ConfigError, MissingExtra, PluginError

GROUP = "routerd"
log = logging.getLogger("routerd.plugins")

# Builtin plugins that stay off until ``[plugins.<name>] enabled = true``: they call models on
# their own (the LLM judge), which costs time and tokens nobody asked for by installing routerd.
OPT_IN = frozenset({"judge"})


class _MissingModules(Exception):
    def __init__(self, extra: str, distribution: str, modules: list[str]) -> None:
        super().__init__(extra)
        self.extra, self.distribution, self.modules = extra, distribution, modules


def require_modules(extra: str, *modules: str, distribution: str = "routerd") -> None:
    """Call at the top of a plugin module whose dependencies are an optional extra: if any of
    `modules` is missing, start-up stops with ``pip install '<distribution>[<extra>]'``."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise _MissingModules(extra, distribution, missing)


@dataclass
class PluginRecord:
    """What is known of one discovered plugin (``routerd plugins``, ``GET /admin/plugins``)."""

    name: str
    module: str
    distribution: str
    version: str
    enabled: bool
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    settings: Any = None
    note: str = ""
    migrations: Path | None = None  # the folder of its own Alembic revisions (module attribute MIGRATIONS)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "module": self.module,
            "enabled": self.enabled,
            "builtin": self.distribution == "routerd",
            "hooks": self.hooks,
            "registered": self.registered,
            "migrations": str(self.migrations) if self.migrations is not None else None,
            "note": self.note,
        }


class Registry:
    """The objects plugins registered, by family, in registration order."""

    def __init__(self) -> None:
        self.by_family: dict[str, dict[str, Any]] = {family: {} for family in hookspecs.FAMILIES}
        self.owner: dict[tuple[str, str], str] = {}

    @property
    def backends(self) -> dict[str, Any]:
        return self.by_family["register_backends"]

    @property
    def benchmark_providers(self) -> dict[str, Any]:
        return self.by_family["register_benchmark_providers"]

    @property
    def scorers(self) -> dict[str, Any]:
        return self.by_family["register_scorers"]

    @property
    def judges(self) -> dict[str, Any]:
        return self.by_family["register_judges"]

    @property
    def learners(self) -> dict[str, Any]:
        return self.by_family["register_learners"]

    @property
    def skills(self) -> dict[str, Any]:
        return self.by_family["register_skills"]

    @property
    def caches(self) -> dict[str, Any]:
        return self.by_family["register_caches"]

    @property
    def authenticators(self) -> dict[str, Any]:
        return self.by_family["register_authenticators"]

    @property
    def jobs(self) -> dict[str, Any]:
        return self.by_family["register_jobs"]

    @property
    def routes(self) -> dict[str, Any]:
        return self.by_family["register_routes"]

    @property
    def commands(self) -> dict[str, Any]:
        return self.by_family["register_commands"]

    def all_objects(self) -> list[Any]:
        """Every registered object with a lifecycle (not jobs, routes or commands), once, in registration order
        (an object registered in two families, a scorer that also learns, say, is started and closed once)."""
        seen: dict[int, Any] = {}
        for family, objects in self.by_family.items():
            if family in ("register_jobs", "register_routes", "register_commands"):
                continue
            for obj in objects.values():
                seen.setdefault(id(obj), obj)
        return list(seen.values())


def family_label(hook: str) -> str:
    """``register_benchmark_providers`` -> ``benchmark_providers``."""
    return hook.removeprefix("register_")


def discover(eps: Iterable[EntryPoint] | None = None) -> list[EntryPoint]:
    """The entry points of the ``routerd`` group, by name; two plugins of one name are refused."""
    found = list(entry_points(group=GROUP) if eps is None else eps)
    seen: dict[str, EntryPoint] = {}
    for ep in found:
        if ep.name in seen and seen[ep.name].value != ep.value:
            raise PluginError(ep.name, f"two plugins share this name: {seen[ep.name].value} and {ep.value}")
        seen[ep.name] = ep
    return sorted(seen.values(), key=lambda ep: ep.name)


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "(none)", "0"
    return dist.metadata["Name"], dist.version


def _is_enabled(name: str, table: dict[str, Any]) -> bool:
    if "enabled" not in table:
        if name in OPT_IN and table:
            log.warning("plugins.%s has settings, but the plugin is off until plugins.%s.enabled = true", name, name)
        return name not in OPT_IN
    try:
        return msgspec.convert(table["enabled"], bool, strict=False)
    except msgspec.ValidationError:
        raise ConfigError(f"plugins.{name}.enabled", "expected true or false") from None


class PluginHost:
    """Loads the enabled plugins, calls their hooks, and owns what they registered."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        eps: Iterable[EntryPoint] | None = None,
        *,
        services: Services | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        # What every plugin's context offers besides its own settings; the gateway fills it before `load()`.
        self.services = services if services is not None else Services()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.contexts: dict[str, PluginContext] = {}  # one per plugin, shared by its hooks
        self.registry = Registry()
        self._entry_points = discover(eps)
        self._started: list[Any] = []
        self.started = False

    # -- loading -----------------------------------------------------------------------------
    def load(self) -> None:
        """Import and register every enabled plugin, validate its settings, call its hooks."""
        tables = self.settings.plugins
        names = {ep.name for ep in self._entry_points}
        self._check_unknown_tables(tables, names)
        for ep in self._entry_points:
            table = dict(tables.get(ep.name, {}))
            distribution, version = _dist_of(ep)
            record = PluginRecord(ep.name, ep.value, distribution, version, _is_enabled(ep.name, table))
            self.records[ep.name] = record
            if ep.name in OPT_IN and not record.enabled and "enabled" not in table:
                record.note = f"off until switched on: [plugins.{ep.name}] enabled = true"
            if record.enabled:
                self._check_extras(
                    ep, record, explicit="enabled" in table or ep.name in self.settings.backends.provider
                )
            if record.enabled:
                self._load_one(ep, record, table)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin) or "?"
            known = ", ".join(sorted(hookspecs.FAMILIES))
            raise PluginError(name, f"{exc}; the hooks are: {known} (docs/plugins.md)") from None
        self._check_providers()
        for hook in hookspecs.FAMILIES:
            for record in self.records.values():
                if record.enabled and hook in record.hooks:
                    self._call_hook(hook, record)
        for name, scorer in list(self.registry.scorers.items()):
            self._adopt_old_scorer(scorer, name, self.records[self.registry.owner[("register_scorers", name)]])

    def _check_unknown_tables(self, tables: dict[str, dict[str, Any]], names: set[str]) -> None:
        for name, table in tables.items():
            if name in names:
                continue
            keys = [f"plugins.{name}.{key}" for key in table] or [f"plugins.{name}"]
            from_env = [self.settings.sources.get(key, "") for key in keys]
            if all(source.startswith("environment variable") for source in from_env):
                log.warning("%s set but no plugin named %r is installed; ignored", ", ".join(from_env), name)
                continue
            installed = ", ".join(sorted(names)) or "none"
            raise ConfigError(f"plugins.{name}", f"no installed plugin has this name (installed: {installed})")

    def _check_extras(self, ep: EntryPoint, record: PluginRecord, *, explicit: bool) -> None:
        """A plugin whose entry point names extras (``"module [extra]"``) needs them installed.
        Switched on explicitly, a missing extra stops start-up; on by default, the plugin is
        left off (and not imported), with a note in ``routerd plugins``."""
        for extra in ep.extras:
            missing = _missing_requirements(ep, extra)
            if not missing:
                continue
            if explicit:
                raise MissingExtra(ep.name, record.distribution, extra, missing)
            record.enabled = False
            record.note = f"off: needs {', '.join(missing)}; pip install '{record.distribution}[{extra}]'"
            log.info("plugin %s %s", ep.name, record.note)
            return

    def _load_one(self, ep: EntryPoint, record: PluginRecord, table: dict[str, Any]) -> None:
        try:
            plugin = ep.load()
        except _MissingModules as exc:
            raise MissingExtra(ep.name, exc.distribution, exc.extra, exc.modules) from None
        except ModuleNotFoundError as exc:
            raise PluginError(ep.name, _missing_module_advice(ep, record.distribution, exc)) from None
        except Exception as exc:
            raise PluginError(ep.name, f"importing {ep.value} failed: {type(exc).__name__}: {exc}") from exc
        table.pop("enabled", None)
        record.settings = _validate_settings(ep.name, plugin, table, self.settings)
        migrations = getattr(plugin, "MIGRATIONS", None)
        if migrations is not None:
            folder = Path(migrations)
            if not folder.is_dir():
                raise PluginError(ep.name, f"MIGRATIONS names {folder}, which is not a folder of Alembic revisions")
            record.migrations = folder
            self.database.plugin_migrations[ep.name] = folder
        if self.pm.is_registered(plugin):
            other = self.pm.get_name(plugin)
            raise PluginError(ep.name, f"{ep.value} is already loaded as plugin {other!r}")
        try:
            self.pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(ep.name, str(exc)) from None
        record.hooks = sorted(_hooks_of(self.pm, plugin))

    def _check_providers(self) -> None:
        for name in self.settings.backends.provider:
            record = self.records.get(name)
            if record is None or not record.enabled:
                enabled = ", ".join(n for n, r in self.records.items() if r.enabled) or "none"
                raise ConfigError(
                    describe_key(self.settings, "backends.provider"),
                    f"no enabled plugin named {name!r} (enabled: {enabled})",
                )

    def _call_hook(self, hook: str, record: PluginRecord) -> None:
        def register(obj: Any) -> None:
            name = _checked_name(hook, obj, record.name)
            if hook == "register_backends" and self.settings.backends.provider:
                if record.name not in self.settings.backends.provider:
                    log.info("backend %s of plugin %s not used: backends.provider", name, record.name)
                    return
            self._add(hook, name, obj, record)

        context = self.contexts.get(record.name)
        if context is None:
            data_dir = Path(self.settings.data_dir) / "plugins" / record.name
            data_dir.mkdir(parents=True, exist_ok=True)
            context = self.contexts[record.name] = PluginContext(
                name=record.name,
                settings=record.settings,
                config=self.settings,
                data_dir=data_dir,
                log=logging.getLogger(f"routerd.plugin.{record.name}"),
                database=self.database,
                services=self.services,
            )
        others = [p for p in self.pm.get_plugins() if self.pm.get_name(p) != record.name]
        caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
        try:
            caller(register=register, context=context)
        except (PluginError, ConfigError):
            raise
        except Exception as exc:
            raise PluginError(record.name, f"{hook} failed: {type(exc).__name__}: {exc}") from exc

    def _add(self, hook: str, name: str, obj: Any, record: PluginRecord) -> None:
        registered = self.registry.by_family[hook]
        label = family_label(hook)
        if name in registered:
            other = self.registry.owner[(hook, name)]
            raise PluginError(record.name, f"{label} name {name!r} is already registered by {other!r}")
        registered[name] = obj
        self.registry.owner[(hook, name)] = record.name
        record.registered.setdefault(label, []).append(name)

    def _adopt_old_scorer(self, obj: Any, name: str, record: PluginRecord) -> None:
        """A scorer written against the old `Scorer` protocol, which also judged (``judge``) and learned
        (``learn``): it keeps working, as a judge and a learner too, with a warning that says what to change."""
        for method, hook in (("judge", "register_judges"), ("learn", "register_learners")):
            if not callable(getattr(obj, method, None)):
                continue
            if any(existing is obj for existing in self.registry.by_family[hook].values()):
                continue  # registered there by its plugin: the new way
            log.warning(
                "plugin %s: scorer %r defines %s(); register it with %s as well (docs/plugins.md). It is "
                "registered as one for now; a scorer that does not %s should drop the method",
                record.name,
                name,
                method,
                hook,
                method,
            )
            self._add(hook, name, obj, record)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Call ``start()`` on every registered object that has one (jobs aside), in registration order."""
        for obj in self.registry.all_objects():
            start = getattr(obj, "start", None)
            if start is not None:
                await start()
            self._started.append(obj)
        self.started = True

    async def start_jobs(self) -> None:
        """Start the registered jobs (a gateway that serves), after everything else: they are closed first."""
        for job in self.registry.jobs.values():
            if any(job is started for started in self._started):
                continue  # also registered in another family: already started
            await job.start()
            self._started.append(job)

    async def close(self) -> None:
        """Call ``close()`` on every started object, in reverse order; errors are logged."""
        self.started = False
        while self._started:
            obj = self._started.pop()
            close = getattr(obj, "close", None)
            if close is None:
                continue
            try:
                await close()
            except Exception:
                log.exception("closing %r failed", getattr(obj, "name", obj))

    def describe(self) -> list[dict[str, Any]]:
        return [record.describe() for record in self.records.values()]


def _checked_name(hook: str, obj: Any, plugin: str) -> str:
    """The name `obj` is registered under in `hook`'s family, once it is of the family's kind."""
    if hook == "register_routes":
        from litestar import Router
        from litestar.handlers import BaseRouteHandler

        if isinstance(obj, Router):
            return f"{obj.path} (router)"
        if isinstance(obj, BaseRouteHandler):
            methods = sorted(getattr(obj, "http_methods", None) or ["*"])
            return f"{','.join(methods)} {' '.join(sorted(obj.paths))}"
        raise PluginError(plugin, f"{hook} got {obj!r}, not a Litestar route handler or Router")
    if hook == "register_commands":
        import click

        if not isinstance(obj, click.Command) or not obj.name:
            raise PluginError(plugin, f"{hook} got {obj!r}, not a named click command")
        return obj.name
    protocol = hookspecs.FAMILIES[hook]
    assert protocol is not None
    if not isinstance(obj, protocol):
        missing = [a for a in _protocol_members(protocol) if not hasattr(obj, a)]
        hint = ""
        if hook == "register_scorers" and hasattr(obj, "judge"):
            hint = "; a judge is registered with register_judges"
        elif hook == "register_scorers" and hasattr(obj, "learn"):
            hint = "; a learner is registered with register_learners"
        raise PluginError(plugin, f"{hook} got {obj!r}, not a {protocol.__name__} (missing: {missing}){hint}")
    name = obj.name
    if not isinstance(name, str) or not name:
        raise PluginError(plugin, f"{hook} got {obj!r}, whose name is not a non-empty string")
    return name


def _hooks_of(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    return [caller.name for caller in pm.get_hookcallers(plugin) or []]


def _protocol_members(protocol: type) -> list[str]:
    members = set(getattr(protocol, "__annotations__", {}))
    members |= {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
    return sorted(members)


def _validate_settings(name: str, plugin: Any, table: dict[str, Any], settings: Settings) -> Any:
    struct = getattr(plugin, "Settings", None)
    if struct is None:
        if table:
            key = next(iter(table))
            raise ConfigError(f"plugins.{name}.{key}", "unknown key (this plugin takes no settings)")
        return None
    try:
        return msgspec.convert(table, struct, strict=False)
    except TypeError as exc:  # the Struct itself is wrong: the plugin's bug, not the user's
        raise PluginError(name, f"its Settings Struct is not valid for msgspec: {exc}") from None
    except msgspec.ValidationError as exc:
        key, reason = explain_validation_error(exc, prefix=f"plugins.{name}")
        source = settings.sources.get(key)
        raise ConfigError(f"{key} (from {source})" if source else key, reason) from None


_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)[^;]*;(.*)")


def _missing_requirements(ep: EntryPoint, extra: str) -> list[str]:
    """The distributions that `extra` of the entry point's distribution needs and that are not
    installed."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return []
    missing = []
    for requirement in dist.requires or []:
        match = _REQUIREMENT.match(requirement)
        if not match or not re.search(r"extra\s*==\s*['\"]" + re.escape(extra) + r"['\"]", match[2]):
            continue
        try:
            importlib.metadata.distribution(match[1])
        except importlib.metadata.PackageNotFoundError:
            missing.append(match[1])
    return missing


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _missing_module_advice(ep: EntryPoint, distribution: str, exc: ModuleNotFoundError) -> str:
    missing = exc.name or "?"
    if ep.module == missing or ep.module.startswith(missing + "."):
        return f"module {ep.module} is not installed (reinstall {distribution})"
    dist = getattr(ep, "dist", None)
    extras: list[str] = []
    if dist is not None:
        for requirement in dist.requires or []:
            match = re.match(r"\s*([A-Za-z0-9_.\-]+).*extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
            if match and _normal(match[1]).startswith(_normal(missing.split(".")[0])):
                extras.append(match[2])
    if extras:
        return f"needs {missing!r}, not installed; install the extra: pip install '{distribution}[{extras[0]}]'"
    return f"needs {missing!r}, which is not installed"

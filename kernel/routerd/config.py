"""Settings: a TOML file, overridden by environment variables, validated with msgspec.

Precedence, lowest first: the defaults below, the TOML file (``--config`` or ``ROUTERD_CONFIG``),
``ROUTERD__SECTION__KEY`` variables (any key, nested with double underscores), then the
``ROUTER_*`` variables of the system routerd replaces (`LEGACY_ENVIRONMENT`). Invalid settings
stop start-up with a `ConfigError` that names the key, where it came from, and the reason.

Every field carries its meaning (``Meta(description=...)``); ``routerd config docs`` prints the
table in docs/configuration.md from it, and a test keeps the two equal.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from routerd.errors import ConfigError

log = logging.getLogger("routerd.config")
CONFIG_ENV = "ROUTERD_CONFIG"
NESTED_ENV_PREFIX = "ROUTERD__"


def _doc(text: str, **constraints: Any) -> Meta:
    return Meta(description=text, **constraints)


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Section):
    host: Annotated[str, _doc("Address `routerd serve` listens on.")] = "127.0.0.1"
    port: Annotated[int, _doc("Port `routerd serve` listens on.", ge=1, le=65535)] = 8080
    max_body_bytes: Annotated[int, _doc("Largest request body accepted, in bytes (413 above).", ge=1024)] = (
        16 * 1024 * 1024
    )
    log_level: Annotated[str, _doc("Logging level: debug, info, warning or error.")] = "info"
    require_chat_model: Annotated[
        bool,
        _doc(
            "`/readyz` answers 503 (its check `models` failing) while no backend serves a chat model, since every "
            "chat request would then fail. False: ready without models, for gateways that start before their "
            "backends have a model."
        ),
    ] = True
    # The HTTP front end (routerd.http_server; docs/hardening.md, "The HTTP front end"): nginx-like limits.
    max_header_bytes: Annotated[
        int,
        _doc(
            "Largest request head (request line and every header), in bytes; larger: 431 and the connection "
            "closed (nginx: 4 buffers of 8 KB).",
            ge=1024,
        ),
    ] = 32 * 1024
    max_header_line_bytes: Annotated[
        int, _doc("Largest single header (name and value), in bytes; larger: 431 (nginx: 8 KB).", ge=256)
    ] = 8 * 1024
    max_headers: Annotated[int, _doc("Most headers in one request; more: 431.", ge=8)] = 100
    header_timeout: Annotated[
        float,
        _doc(
            "Seconds a client has to send a whole request head, from its connection (or, on a kept-alive "
            "connection, from the request's first byte); later: 408 and closed (nginx client_header_timeout).",
            gt=0,
        ),
    ] = 15.0
    body_timeout: Annotated[
        float,
        _doc(
            "Seconds a request body may make no progress (and the grace period before `body_min_rate` counts); "
            "then the connection is closed (nginx client_body_timeout).",
            gt=0,
        ),
    ] = 15.0
    body_min_rate: Annotated[
        int,
        _doc(
            "Slowest request body accepted, in bytes per second averaged since its head, counted once the body "
            "has taken `body_timeout` seconds; slower: the connection is closed. 0: no rate.",
            ge=0,
        ),
    ] = 1024
    keepalive_timeout: Annotated[
        float, _doc("Seconds an idle kept-alive connection stays open (uvicorn timeout_keep_alive).", gt=0)
    ] = 5.0
    max_connections: Annotated[
        int,
        _doc(
            "Most open client connections (idle ones included) and requests in progress; a request beyond "
            "gets 503 and its connection is closed. `routerd serve` raises the open-file limit to the hard limit.",
            ge=1,
        ),
    ] = 2048
    shutdown_timeout: Annotated[
        float,
        _doc(
            "Seconds `routerd serve` lets requests in progress finish after SIGTERM before cancelling them "
            "(keep it under the orchestrator's grace period: Kubernetes' default is 30).",
            ge=0,
        ),
    ] = 20.0


class DatabaseSettings(_Section):
    url: Annotated[
        str,
        _doc(
            "SQLAlchemy URL. Empty: a SQLite file `routerd.db` in `data_dir`. PostgreSQL: "
            "`postgresql+asyncpg://user:password@host/db`."
        ),
    ] = ""
    auto_upgrade: Annotated[bool, _doc("Apply pending migrations when the server starts.")] = True


class AuditSettings(_Section):
    """How much of past requests the decision log (the audit log) holds, in memory and for the database."""

    prompt_chars: Annotated[
        int,
        _doc(
            "Characters of a prompt the decision log keeps (in memory and in `routing_decisions.features`): enough "
            "to recognise it. Routing sees the whole prompt; only what is kept after the request is cut.",
            ge=0,
            le=100_000,
        ),
    ] = 200
    learner_prompt_chars: Annotated[
        int,
        _doc(
            "Characters of a prompt shown to learners once its request is over (the `learned` scorer keeps the "
            "latest ones in memory to embed when feedback comes): the most any plugin keeps of a past prompt.",
            ge=0,
            le=1_000_000,
        ),
    ] = 4000
    remembered: Annotated[
        int, _doc("Decisions kept in memory for `GET /admin/decisions/{id}` and feedback look-ups.", ge=1)
    ] = 5000
    outage_buffer: Annotated[
        int,
        _doc(
            "Decisions held for the database while it cannot be written (an outage), retried with backoff until "
            "it is back; beyond this, the oldest are dropped and counted in a warning.",
            ge=0,
        ),
    ] = 10_000
    retry_max_seconds: Annotated[
        float, _doc("Longest wait between two attempts to write held decisions while the database is down.", gt=0)
    ] = 10.0


class BackendSettings(_Section):
    provider: Annotated[
        list[str],
        _doc("Backend plugins to route to (for example `ollama`); empty: every enabled backend plugin."),
    ] = []
    discovery_interval: Annotated[float, _doc("Seconds between polls of each backend's models.", gt=0)] = 60.0


class RoutingSettings(_Section):
    external_model_name: Annotated[
        str, _doc("The gateway's own model name in `/v1/models`; requests naming it are routed.")
    ] = "routerd"
    pinned_model: Annotated[str | None, _doc("A model never unloaded to make room for another.")] = None
    quality_preference: Annotated[
        float, _doc("0 = fastest and cheapest, 1 = best answer; a request may override it.", ge=0, le=1)
    ] = 0.5
    embed_model: Annotated[
        str | None, _doc("Embedding model for routing and semantic caching; none: lexical features only.")
    ] = None
    mode: Annotated[
        Literal["scorers", "llm"],
        _doc(
            "`scorers`: the scorer plugins' ranking picks the model; `llm`: the model `dispatcher_model` picks among "
            "the best-ranked candidates, and the ranking decides when it fails, is slow or answers no candidate."
        ),
    ] = "scorers"
    dispatcher_model: Annotated[
        str | None, _doc("The model that picks in `llm` mode: a small, fast one the gateway serves.")
    ] = None
    dispatcher_timeout: Annotated[
        float, _doc("Seconds the dispatcher model may take before the scorer ranking decides.", gt=0)
    ] = 2.0
    dispatcher_candidates: Annotated[
        int, _doc("How many of the best-ranked candidates the dispatcher model chooses among.", ge=2, le=20)
    ] = 5


class ResponseSettings(_Section):
    signature: Annotated[
        str,
        _doc("Appended to every text answer; `{model}` is the model's name. Empty: no signature."),
    ] = "\n\nModel: {model}"
    list_real_models: Annotated[bool, _doc("`/v1/models` lists every real model after the gateway's own name.")] = True
    hide_embedding_models: Annotated[
        bool,
        _doc(
            "`/v1/models` leaves out models that do not chat (embedding models), which chat UIs would offer; "
            "`/v1/models?type=embedding` lists them, `?type=all` lists every model."
        ),
    ] = True


class DispatchSettings(_Section):
    generation_timeout: Annotated[
        float, _doc("Seconds one generation (streamed or not) may take in all before it is cut off.", gt=0)
    ] = 300.0
    connect_timeout: Annotated[float, _doc("Seconds to open a connection to a backend.", gt=0)] = 5.0
    first_token_timeout: Annotated[
        float, _doc("Seconds until a streamed answer's first chunk; then the next model is tried.", gt=0)
    ] = 120.0
    idle_timeout: Annotated[float, _doc("Seconds a stream may stay silent between chunks.", gt=0)] = 60.0
    breaker_failures: Annotated[int, _doc("Failures in a row that take a backend out of rotation.", ge=1)] = 3
    breaker_cooldown: Annotated[float, _doc("Seconds before a backend out of rotation is probed again.", gt=0)] = 30.0
    request_timeout: Annotated[
        float,
        _doc(
            "Seconds one request may take across all the models it falls back to, until its answer (a whole "
            "non-streamed answer, a stream's first chunk); at most `generation_timeout` counts.",
            gt=0,
        ),
    ] = 300.0
    max_in_flight_per_backend: Annotated[
        int,
        _doc(
            "Requests one backend is sent at once (a stream counts until it ends); more wait in its queue. Its "
            "HTTP connection pool is not capped below this, so no request waits unseen for a connection.",
            ge=1,
        ),
    ] = 256
    max_queued_per_backend: Annotated[
        int,
        _doc(
            "Requests that may wait for one backend beyond `max_in_flight_per_backend`; when the queue is full "
            "the next model is tried, and a request no model has room for is answered 503 with `Retry-After`.",
            ge=0,
        ),
    ] = 512
    queue_timeout: Annotated[
        float,
        _doc(
            "Seconds a request may wait in a backend's queue; then the next model is tried (503 with "
            "`Retry-After` when none has room). Waiting never counts against a backend or its timeouts.",
            gt=0,
        ),
    ] = 30.0
    retry_after: Annotated[
        int, _doc("Seconds the `Retry-After` header of a 503 for a gateway at capacity asks clients to wait.", ge=1)
    ] = 2
    stream_json_requests: Annotated[
        bool,
        _doc(
            "Ask backends for a non-streamed (JSON) answer as a stream and assemble it, so that "
            "`first_token_timeout` (then the next model) and `idle_timeout` apply to JSON requests too; off: a "
            "JSON answer is asked as JSON, and only `generation_timeout` and `request_timeout` bound it. A request for "
            "several choices (`n` > 1) is always asked as JSON."
        ),
    ] = False


class CacheSettings(_Section):
    sampled: Annotated[
        bool,
        _doc(
            "Answer sampled requests (a temperature above 0, or none given, and no seed) from the cache plugins "
            "too; off: such requests bypass the caches."
        ),
    ] = False
    lookup_timeout: Annotated[
        float, _doc("Seconds one cache plugin may take to look a request up; then it counts as a miss.", gt=0)
    ] = 0.5


class SkillSettings(_Section):
    offer: Annotated[
        Literal["request", "always", "never"],
        _doc(
            "Which requests are offered the skill plugins as tools: `request`, those naming them in the "
            "`X-Routerd-Skills` header (names, or `*`); `always`, every request unless that header says `none`; "
            "`never`."
        ),
    ] = "request"
    max_iterations: Annotated[
        int, _doc("Rounds of skill calls in one request; then the model's last answer is returned.", ge=1, le=50)
    ] = 5
    timeout: Annotated[float, _doc("Seconds one skill call may take; then its result is an error.", gt=0)] = 30.0


class BenchmarkSettings(_Section):
    sources: Annotated[
        list[str], _doc("Benchmark providers to sync (for example `hf_leaderboard`); empty: all enabled.")
    ] = []
    aliases: Annotated[
        dict[str, str],
        _doc(
            "Local model name -> the name a benchmark source publishes it under, for pairs the matcher cannot "
            'make (`{"my-finetune:7b" = "Qwen/Qwen2.5-7B-Instruct"}`); other sources match the alias in turn.'
        ),
    ] = {}
    extra_benchmarks: Annotated[
        list[Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,99}$")]],
        _doc("Benchmark names accepted besides the kernel's own (for your own providers); others are refused."),
    ] = []
    sync_interval: Annotated[
        float, _doc("Seconds between two syncs of a benchmark source (daily); the first runs at start.", gt=0)
    ] = 86400.0
    retry_interval: Annotated[float, _doc("Seconds before a failed benchmark source is tried again.", gt=0)] = 3600.0
    fetch_timeout: Annotated[
        float, _doc("Seconds a benchmark provider's fetch may take in all before its sync fails.", gt=0)
    ] = 900.0


class ProfilingSettings(_Section):
    enabled: Annotated[
        bool,
        _doc(
            "Profile models in the background: at start every chat model without a profile for the current suite, "
            "then each new one as discovery finds it, and on `POST /admin/reprofile`. Off: never starts "
            "(`routerd profile` still works)."
        ),
    ] = True
    suite: Annotated[
        str | None,
        _doc("A team's own profiling suite (a TOML or JSON file, as the bundled one); unset: the bundled suite."),
    ] = None
    skip: Annotated[
        list[str],
        _doc(
            "Models the background profiler leaves alone (ids or glob patterns: `openai/*`); naming one "
            "(`routerd profile MODEL`, `POST /admin/reprofile?model=`) still profiles it."
        ),
    ] = []
    max_tokens: Annotated[int, _doc("Most tokens a model may generate for one suite prompt.", ge=1, le=32768)] = 256
    prompt_timeout: Annotated[
        float, _doc("Seconds one suite prompt may take in all (request to last token); then it counts as failed.", gt=0)
    ] = 120.0
    judge_timeout: Annotated[float, _doc("Seconds one judge may take to grade one answer.", gt=0)] = 60.0
    max_consecutive_failures: Annotated[
        int, _doc("Prompts failing in a row after which the rest of a model's suite is skipped.", ge=1)
    ] = 3
    retry_interval: Annotated[
        float, _doc("Seconds before a model whose whole profiling run failed is profiled again.", gt=0)
    ] = 3600.0
    refresh_interval: Annotated[
        float, _doc("Seconds between reloads of the stored profiles (other replicas' runs, imports).", gt=0)
    ] = 300.0
    yield_to_requests: Annotated[
        bool,
        _doc(
            "Background profiling gives way to client requests: it sends a prompt only once no client request has "
            "been in flight for `quiet_seconds`, and a client request that arrives while a prompt is answered "
            "pre-empts it (its stream is closed, so the model stops generating; the prompt is asked again later "
            "and counts as neither a failure nor a timeout). Off: profiling runs beside client requests."
        ),
    ] = True
    quiet_seconds: Annotated[
        float,
        _doc(
            "With `yield_to_requests`: seconds without any client request in flight before background profiling "
            "sends its next prompt.",
            ge=0,
        ),
    ] = 5.0


class ModelOverride(_Section):
    """What the operator knows of a model better than its backend and its name: a
    ``[models."<name or glob>"]`` table. Unset keys leave the model as the catalog found it."""

    chat: Annotated[bool | None, _doc("The model answers chat requests.")] = None
    vision: Annotated[bool | None, _doc("The model reads images.")] = None
    tools: Annotated[bool | None, _doc("The model can call tools.")] = None
    embeddings: Annotated[bool | None, _doc("The model makes embeddings.")] = None
    json_output: Annotated[bool | None, _doc("The model can be held to JSON output.")] = None
    context_window: Annotated[Annotated[int, Meta(ge=1)] | None, _doc("Its context window, in tokens.")] = None
    parameters: Annotated[
        Annotated[int, Meta(ge=1)] | None, _doc("Its parameter count (`7_600_000_000`), which routing weighs.")
    ] = None


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "routerd")


class Settings(_Section):
    """The whole configuration. ``[plugins.<name>]`` tables are validated by `routerd.plugins`
    into each plugin's own Struct; the reserved key ``enabled`` switches a plugin on or off."""

    data_dir: Annotated[str, _doc("Folder for the SQLite database, downloaded models and plugin data.")] = (
        msgspec.field(default_factory=_default_data_dir)
    )
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    audit: AuditSettings = msgspec.field(default_factory=AuditSettings)
    backends: BackendSettings = msgspec.field(default_factory=BackendSettings)
    routing: RoutingSettings = msgspec.field(default_factory=RoutingSettings)
    dispatch: DispatchSettings = msgspec.field(default_factory=DispatchSettings)
    response: ResponseSettings = msgspec.field(default_factory=ResponseSettings)
    cache: CacheSettings = msgspec.field(default_factory=CacheSettings)
    skills: SkillSettings = msgspec.field(default_factory=SkillSettings)
    benchmarks: BenchmarkSettings = msgspec.field(default_factory=BenchmarkSettings)
    models: Annotated[
        dict[Annotated[str, Meta(min_length=1, max_length=256)], ModelOverride],
        _doc(
            'Per model (a catalog name, or a glob such as `"qwen2.5:7b*"`), capabilities, context window and '
            "size that win over the backend's metadata and the name; exact names apply after globs."
        ),
    ] = {}
    profiling: ProfilingSettings = msgspec.field(default_factory=ProfilingSettings)
    plugins: dict[str, dict[str, Any]] = {}
    # Where each overridden key came from (``{"server.port": "ROUTER_... environment variable"}``),
    # so errors found later (in a plugin's table) can say so too.
    sources: dict[str, str] = {}

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{Path(self.data_dir) / 'routerd.db'}"


# The variables of the system routerd replaces, and the key each sets. Keys under ``plugins.``
# belong to builtin plugins and are ignored, with a warning, when that plugin is not enabled.
LEGACY_ENVIRONMENT: dict[str, str] = {
    "ROUTER_PROVIDER": "backends.provider",
    "ROUTER_OLLAMA_URL": "plugins.ollama.url",
    "ROUTER_LLAMA_CPP_URL": "plugins.llamacpp.url",
    "ROUTER_OPENAI_BASE_URL": "plugins.openai.base_url",
    "ROUTER_OPENAI_API_KEY": "plugins.openai.api_key",
    "ROUTER_MODEL_PREFIX": "plugins.openai.model_prefix",
    "ROUTER_PINNED_MODEL": "routing.pinned_model",
    "ROUTER_GENERATION_TIMEOUT": "dispatch.generation_timeout",
    "ROUTER_EXTERNAL_MODEL_NAME": "routing.external_model_name",
    "ROUTER_ADMIN_API_KEY": "plugins.apikey_auth.admin_api_key",
    "ROUTER_QUALITY_PREFERENCE": "routing.quality_preference",
    "ROUTER_JUDGE_ENABLED": "plugins.judge.enabled",
    "ROUTER_JUDGE_MODEL": "plugins.judge.model",
    "ROUTER_JUDGE_BASE_URL": "plugins.judge.base_url",
    "ROUTER_JUDGE_API_KEY": "plugins.judge.api_key",
    "ROUTER_EMBED_MODEL": "routing.embed_model",
    "ROUTER_BENCHMARK_SOURCES": "benchmarks.sources",
    "ROUTER_DATABASE_URL": "database.url",
}

# Variables of the system routerd replaces that routerd has no setting for (yet): set, they are ignored with a
# warning rather than silently.
UNSUPPORTED_ENVIRONMENT: dict[str, str] = {
    "ROUTER_CACHE_RESPONSE_MAX_SIZE": "no builtin response cache yet; a cache plugin has its own size setting",
    "ROUTER_RATE_LIMIT_ENABLED": "no rate limits yet",
}

# Legacy spellings of backend names in ROUTER_PROVIDER.
PROVIDER_ALIASES = {"llama_cpp": "llamacpp", "llama-cpp": "llamacpp", "llama.cpp": "llamacpp"}

_LIST_KEYS = {"backends.provider", "benchmarks.sources"}
_SECRET_KEY = re.compile(r"(api_key|apikey|password|secret|token)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@]+):([^@]+)@")


def _set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(path, f"{part!r} is a value, not a table")
        node = child
    node[leaf] = value


def _env_value(path: str, raw: str) -> Any:
    if path in _LIST_KEYS:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if path == "backends.provider":
            items = [PROVIDER_ALIASES.get(item, item) for item in items]
        return items
    if raw.startswith("[") or raw.startswith("{"):
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return raw
    return raw


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None


def gather(config_file: Path | None, environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The raw settings tree and, for each overridden key, where its value came from."""
    tree: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = config_file or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    if path is not None:
        tree = read_toml(path)
        for key in _leaf_paths(tree):
            sources[key] = str(path)
    for name in sorted(environ):
        if name.startswith(NESTED_ENV_PREFIX):
            key = ".".join(part.lower() for part in name[len(NESTED_ENV_PREFIX) :].split("__"))
            _set_path(tree, key, _env_value(key, environ[name]))
            sources[key] = f"environment variable {name}"
    for name, key in LEGACY_ENVIRONMENT.items():
        if name in environ:
            _set_path(tree, key, _env_value(key, environ[name]))
            sources[key] = f"environment variable {name}"
    return tree, sources


def _leaf_paths(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            paths.extend(_leaf_paths(value, path + "."))
        else:
            paths.append(path)
    return paths


_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")


def explain_validation_error(exc: msgspec.ValidationError, prefix: str = "") -> tuple[str, str]:
    """Turn msgspec's ``"Expected `int`, got `str` - at `$.server.port`"`` into
    ``("server.port", "expected `int`, got `str`")``; unknown fields name the field itself."""
    match = _AT.match(str(exc))
    assert match is not None
    reason, path = match["reason"], (match["path"] or "")
    path = re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")
    path = re.sub(r"\[\"?'?([^\]\"']+)\"?'?\]", r".\1", path).lstrip(".")
    unknown = _UNKNOWN.match(reason)
    if unknown:
        path = f"{path}.{unknown['field']}" if path else unknown["field"]
        reason = "unknown key"
    key = ".".join(part for part in (prefix, path) if part)
    return key, reason[:1].lower() + reason[1:]


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate the configuration; raise `ConfigError` naming the bad key."""
    environ = os.environ if environ is None else environ
    for name, why in UNSUPPORTED_ENVIRONMENT.items():
        if name in environ:
            log.warning("%s is set but ignored: %s", name, why)
    tree, sources = gather(config_file, environ)
    if "sources" in tree:
        raise ConfigError("sources", "unknown key")
    plugins = tree.get("plugins", {})
    if not isinstance(plugins, dict) or any(not isinstance(v, dict) for v in plugins.values()):
        raise ConfigError("plugins", "each plugin's settings must be a table: [plugins.<name>]")
    _check_model_overrides(tree.get("models"), sources)
    try:
        settings = msgspec.convert({**tree, "sources": sources}, Settings, strict=False)
    except msgspec.ValidationError as exc:
        key, reason = explain_validation_error(exc)
        choices = _choices(Settings, key.split("."))
        if choices and reason.startswith("invalid enum value"):
            reason += f" (expected one of: {', '.join(map(str, choices))})"
        raise ConfigError(_with_source(key, sources), reason) from None
    return settings


def _choices(struct: Any, path: list[str]) -> tuple[Any, ...]:
    """The values a ``Literal`` setting at `path` allows (empty for other settings)."""
    import typing

    hints = typing.get_type_hints(struct, include_extras=True) if isinstance(struct, type) else {}
    hint = hints.get(path[0]) if path else None
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if len(path) > 1:
        return _choices(hint, path[1:])
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def _check_model_overrides(models: Any, sources: Mapping[str, str]) -> None:
    """Validate each ``[models."<name>"]`` table on its own, so that an error names the model
    (msgspec's own message says only ``models[...]``)."""
    if not isinstance(models, dict):
        return  # the conversion of the whole tree reports it
    for pattern, table in models.items():
        if not 1 <= len(str(pattern)) <= 256:
            raise ConfigError(_with_source("models", sources), "a model name or glob has 1 to 256 characters")
        try:
            msgspec.convert(table, ModelOverride, strict=False)
        except msgspec.ValidationError as exc:
            key, reason = explain_validation_error(exc)
            source = sources.get(".".join(part for part in ("models", str(pattern), key) if part))
            where = f'models."{pattern}"' + (f".{key}" if key else "")
            raise ConfigError(f"{where} (from {source})" if source else where, reason) from None


def _with_source(key: str, sources: Mapping[str, str]) -> str:
    return f"{key} (from {sources[key]})" if key in sources else key


def describe_key(settings: Settings, key: str) -> str:
    """`key` with where its value came from, for error messages."""
    return _with_source(key, settings.sources)


def mask_secrets(value: Any, key: str = "") -> Any:
    """A copy of `value` with secrets replaced: keys that name keys, passwords or tokens, and
    passwords inside URLs."""
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, key) for v in value]
    if isinstance(value, str):
        if value and _SECRET_KEY.search(key):
            return "***"
        return _URL_PASSWORD.sub(r"\1:***@", value)
    return value


def effective(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked (``routerd config show``)."""
    data = msgspec.to_builtins(settings)
    data.pop("sources", None)
    data["database"]["url"] = settings.database_url
    return mask_secrets(data)

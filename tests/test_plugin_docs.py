"""docs/plugins.md is the reference for plugin authors; these tests keep it true.

Every hook in `routerd.hookspecs` needs a section headed ``### <hook>(<its arguments>)`` holding a
complete plugin module in a ```python block. Each example is then loaded the way a real plugin is
(through an entry point of the ``routerd`` group), started in an app, and exercised for real. The
claims of the general sections (disabled plugins, settings, extras, start-up checks, lifecycle, the
pytest plugin's fixtures) are checked too.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import sys
import textwrap
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import msgspec
import pluggy
import pytest
from litestar import Litestar
from litestar.testing import TestClient

import routerd
from routerd import hookspecs
from routerd.errors import ConfigError, MissingExtra, PluginError
from routerd.testing import build_app

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
_HEADING = re.compile(r"(#{1,6}) (.+?)\s*$")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_EXAMPLE_FILE = re.compile(r"# (routerd_(\w+))\.py\n")


# -- reading the documentation ---------------------------------------------------------------


@dataclass
class Section:
    level: int
    title: str
    body: str  # up to the next heading of the same or a higher level

    def blocks(self, language: str) -> list[str]:
        return [code for lang, code in _FENCE.findall(self.body) if lang == language]


def read_sections(text: str) -> list[Section]:
    lines = text.splitlines(keepends=True)
    headings: list[tuple[int, int, str]] = []
    fenced = False
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            headings.append((number, len(match[1]), match[2]))
    sections = []
    for i, (number, level, title) in enumerate(headings):
        end = next((n for n, lv, _ in headings[i + 1 :] if lv <= level), len(lines))
        sections.append(Section(level, title, "".join(lines[number + 1 : end])))
    return sections


def doc_sections() -> list[Section]:
    return read_sections(DOC.read_text(encoding="utf-8"))


def hook_specs() -> dict[str, Callable[..., Any]]:
    """Every function of `routerd.hookspecs` carrying the ``routerd_spec`` pluggy marker."""
    marker = f"{hookspecs.PROJECT}_spec"
    return {
        name: function
        for name, function in vars(hookspecs).items()
        if inspect.isfunction(function) and hasattr(function, marker)
    }


HOOKS = sorted(hook_specs())


def expected_heading(hook: str) -> str:
    arguments = inspect.signature(hook_specs()[hook]).parameters
    return f"{hook}({', '.join(arguments)})"


def hook_section(hook: str) -> Section:
    found = [s for s in doc_sections() if s.level == 3 and s.title == expected_heading(hook)]
    assert found, f"docs/plugins.md has no section headed '### {expected_heading(hook)}'"
    assert len(found) == 1, f"docs/plugins.md documents {hook} {len(found)} times"
    return found[0]


def merge(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


@dataclass
class Example:
    """A hook section's example plugin: its module, plugin name, code and TOML configuration."""

    module: str
    plugin: str
    code: str
    config: dict[str, Any] = field(default_factory=dict)


def hook_example(hook: str) -> Example:
    section = hook_section(hook)
    examples = section.blocks("python")
    assert examples, f"the {hook} section has no ```python example"
    code = examples[0]
    match = _EXAMPLE_FILE.match(code)
    assert match, f"the {hook} example must start with its file name: '# routerd_<name>.py'"
    config: dict[str, Any] = {}
    for block in section.blocks("toml"):
        merge(config, tomllib.loads(block))
    return Example(module=match[1], plugin=match[2], code=code, config=config)


# -- (a) every hook is documented, with an example --------------------------------------------


def test_hookspecs_are_found() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    assert HOOKS
    assert sorted(vars(pm.hook)) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_section_with_a_python_example(hook: str) -> None:
    section = hook_section(hook)
    assert section.blocks("python"), f"the {hook} section has no ```python example"
    assert "@routerd.hookimpl" in section.blocks("python")[0]


def test_no_section_documents_a_hook_that_does_not_exist() -> None:
    documented = [s.title for s in doc_sections() if s.level == 3 and re.match(r"\w+\(", s.title)]
    expected = {expected_heading(hook) for hook in HOOKS}
    assert [title for title in documented if title not in expected] == []


# -- (b) every example runs -------------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for plugin modules; what was imported from it is forgotten after."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(folder)):
            del sys.modules[name]


def add_plugin(folder: Path, module: str, code: str, name: str | None = None) -> EntryPoint:
    assert module not in sys.modules, f"a module named {module} is already imported"
    (folder / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return EntryPoint(name=name or module, value=module, group="routerd")


@dataclass
class Run:
    """A started app with an example plugin in it, and the object the example registered."""

    client: TestClient
    obj: Any
    example: Example
    settings: Any

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Await `function(*args)` on the app's own event loop."""
        return self.client.blocking_portal.call(function, *args)


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


def exercise_backend(run: Run) -> None:
    backend = run.obj
    models = run.call(backend.list_models)
    assert models
    assert all(isinstance(m, routerd.ModelInfo) and m.backend == backend.name for m in models)
    model = models[0].name
    request = routerd.ChatRequest(
        messages=[
            routerd.Message(role="system", content="Answer briefly."),
            routerd.Message(role="user", content="ping pong"),
        ]
    )
    completion = run.call(backend.chat, model, request)
    assert isinstance(completion, routerd.ChatCompletion)
    msgspec.json.encode(completion)  # it is valid on the wire
    answer = completion.choices[0].message.content
    assert isinstance(answer, str) and answer.endswith("ping pong")
    chunks = run.call(collect, backend.stream(model, request))
    assert all(isinstance(chunk, routerd.ChatCompletionChunk) for chunk in chunks)
    pieces = [chunk.choices[0].delta.content for chunk in chunks]
    streamed = "".join(piece for piece in pieces if isinstance(piece, str))
    assert streamed == answer
    assert chunks[-1].choices[0].finish_reason == "stop"
    embeddings = run.call(backend.embed, model, ["first text", "second text", ""])
    assert isinstance(embeddings, routerd.EmbeddingResponse)
    assert [e.index for e in embeddings.data] == [0, 1, 2]
    assert embeddings.data[0].embedding != embeddings.data[1].embedding
    assert run.call(backend.unload, model) is None
    with pytest.raises(routerd.BackendError):
        run.call(backend.chat, "no-such-model", request)


def exercise_benchmark_provider(run: Run) -> None:
    provider = run.obj
    records = run.call(provider.fetch)
    assert records
    assert all(isinstance(r, routerd.BenchmarkRecord) and r.source == provider.name for r in records)
    configured = run.example.config["plugins"][run.example.plugin]["scores"]
    expected = {(m, b, v) for m, figures in configured.items() for b, v in figures.items()}
    assert {(r.model, r.benchmark, r.value) for r in records} == expected


def exercise_scorer(run: Run) -> None:
    scorer = run.obj
    small = routerd.ModelInfo(name="small", backend="fake", parameters=1_000_000_000)
    large = routerd.ModelInfo(name="large", backend="fake", parameters=70_000_000_000)
    unknown = routerd.ModelInfo(name="mystery", backend="fake")
    short = routerd.PromptFeatures(text="hi", prompt_tokens=1)
    long = routerd.PromptFeatures(text="word " * 5000, prompt_tokens=5000)
    ranked = {}
    for label, features in (("short", short), ("long", long)):
        contributions = run.call(scorer.score, features, [small, large, unknown])
        assert set(contributions) <= {"small", "large", "mystery"}
        for contribution in contributions.values():
            assert isinstance(contribution, routerd.Contribution)
            assert 0 <= contribution.score <= 1 and contribution.weight >= 0 and contribution.reason
        ranked[label] = contributions
    assert ranked["short"]["small"].score > ranked["short"]["large"].score
    assert ranked["long"]["large"].score > ranked["long"]["small"].score
    empty = run.call(scorer.judge, short, "small", "  ")
    assert isinstance(empty, routerd.Judgement) and empty.score == 0
    assert run.call(scorer.judge, short, "small", "Hello!") is None


def exercise_skill(run: Run) -> None:
    skill = run.obj
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", skill.name)
    assert skill.description
    assert skill.parameters["type"] == "object"
    json.dumps(skill.parameters)
    result = run.call(skill.run, {"text": "one two three\nfour"})
    assert isinstance(result, str)
    assert json.loads(result) == {"words": 4, "lines": 2, "characters": 18}
    with pytest.raises(ValueError):
        run.call(skill.run, {})


def exercise_cache(run: Run) -> Callable[[], None]:
    cache = run.obj
    assert run.call(cache.lookup, "tenant-a", "key-1", "hello") is None
    run.call(cache.store, "tenant-a", "key-1", "hello", b'{"answer": 1}')
    assert run.call(cache.lookup, "tenant-a", "key-1", "hello") == b'{"answer": 1}'
    assert run.call(cache.lookup, "tenant-b", "key-1", "hello") is None  # partitions are never crossed
    # The least recently used entry goes first.
    small = type(cache)("lru_check", 2)
    for key in ("a", "b"):
        run.call(small.store, "p", key, key, key.encode())
    assert run.call(small.lookup, "p", "a", "a") == b"a"
    run.call(small.store, "p", "c", "c", b"c")
    assert [run.call(small.lookup, "p", k, k) for k in "abc"] == [b"a", None, b"c"]

    def after_close() -> None:
        assert asyncio.run(cache.lookup("tenant-a", "key-1", "hello")) is None

    return after_close


def exercise_authenticator(run: Run) -> None:
    client, header = run.client, run.settings.header
    members = run.example.config["plugins"][run.example.plugin]["members"]
    admin = next(m for m in members if m.get("admin"))
    other = next(m for m in members if not m.get("admin"))
    assert client.get("/admin/plugins").status_code == 401
    response = client.get("/admin/plugins", headers={header: admin["token"]})
    assert response.status_code == 200, response.text
    listed = {plugin["name"]: plugin for plugin in response.json()}
    assert listed[run.example.plugin]["registered"] == {"authenticators": [run.obj.name]}
    assert client.get("/admin/plugins", headers={header: other["token"]}).status_code == 403
    refused = client.get("/admin/plugins", headers={header: "not-a-member"})
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    request = routerd.AuthRequest(method="GET", path="/v1/models", headers={header.lower(): other["token"]})
    principal = run.call(run.obj.authenticate, request)
    assert principal == routerd.Principal(
        kind="api_key", subject=other["subject"], tenant=other.get("tenant", "default"), is_admin=False
    )
    assert run.call(run.obj.authenticate, routerd.AuthRequest("GET", "/v1/models", {})) is None


EXERCISES: dict[str, Callable[[Run], Callable[[], None] | None]] = {
    "register_backends": exercise_backend,
    "register_benchmark_providers": exercise_benchmark_provider,
    "register_scorers": exercise_scorer,
    "register_skills": exercise_skill,
    "register_caches": exercise_cache,
    "register_authenticators": exercise_authenticator,
}


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_example_runs(hook: str, plugin_dir: Path, tmp_path: Path) -> None:
    assert hook in EXERCISES, f"add an exercise of the {hook} example to EXERCISES"
    example = hook_example(hook)
    entry_point = add_plugin(plugin_dir, example.module, example.code, name=example.plugin)
    app: Litestar = build_app(tmp_path / "data", example.config, [entry_point])
    host = app.state.gateway.plugins
    record = host.records[example.plugin]
    assert record.enabled
    assert record.hooks == [hook], "an example implements the hook of its section, and only that"
    family = hook.removeprefix("register_")
    names = record.registered.get(family)
    assert names, f"the {hook} example registered nothing"
    registry = getattr(host.registry, family)
    objects = [registry[name] for name in names]
    assert all(isinstance(obj, hookspecs.FAMILIES[hook]) for obj in objects)
    assert all(host.registry.owner[(hook, name)] == example.plugin for name in names)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        after_close = EXERCISES[hook](Run(client, objects[0], example, record.settings))
    if after_close is not None:
        after_close()


def install_example(site: Path, example: Example, version: str = "0.1.0") -> None:
    """Install `example` into `site` as a distribution with an entry point, as pip would."""
    (site / f"{example.module}.py").write_text(example.code, encoding="utf-8")
    dist_info = site / f"{example.module}-{version}.dist-info"
    dist_info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {example.module.replace('_', '-')}\nVersion: {version}\n"
    (dist_info / "METADATA").write_text(metadata, encoding="utf-8")
    entry_points = f"[routerd]\n{example.plugin} = {example.module}\n"
    (dist_info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


def test_testing_example_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests shown in "Testing a plugin" pass against the echo plugin, installed for real."""
    (section,) = [s for s in doc_sections() if s.level == 2 and s.title == "Testing a plugin"]
    (tests,) = section.blocks("python")
    site = pytester.mkdir("site")
    install_example(site, hook_example("register_backends"))
    pytester.makepyfile(test_echo=tests)
    monkeypatch.setenv("PYTHONPATH", str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=len(re.findall(r"^def test_", tests, re.MULTILINE)))


# -- (c) the public API -------------------------------------------------------------------------


def test_everything_in_all_is_importable() -> None:
    assert len(set(routerd.__all__)) == len(routerd.__all__), "a name is listed twice in routerd.__all__"
    namespace: dict[str, Any] = {}
    exec("from routerd import *", namespace)
    assert [name for name in routerd.__all__ if name not in namespace] == []


def test_every_protocol_is_exported() -> None:
    assert set(hookspecs.FAMILIES) <= set(HOOKS)
    for hook, protocol in hookspecs.FAMILIES.items():
        assert protocol.__name__ in routerd.__all__, f"{protocol.__name__} ({hook}) is not in routerd.__all__"
        assert getattr(routerd, protocol.__name__) is protocol
    assert routerd.hookimpl is hookspecs.hookimpl


# -- the claims of the general sections ---------------------------------------------------------


def make_app(tmp_path: Path, config: dict[str, Any], *entry_points: EntryPoint) -> Litestar:
    return build_app(tmp_path / "data", config, entry_points)


def test_disabled_plugin_is_never_imported(plugin_dir: Path, tmp_path: Path) -> None:
    ep = add_plugin(plugin_dir, "doc_disabled", "raise RuntimeError('imported')\n")
    app = make_app(tmp_path, {"plugins": {"doc_disabled": {"enabled": False}}}, ep)
    assert "doc_disabled" not in sys.modules
    record = app.state.gateway.plugins.records["doc_disabled"]
    assert not record.enabled and record.hooks == []


SETTINGS_PLUGIN = """
    import msgspec
    import routerd

    class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        timeout: float = 30.0

    @routerd.hookimpl
    def register_skills(register, context):
        pass
"""


def test_settings_are_validated_and_unknown_keys_named(plugin_dir: Path, tmp_path: Path) -> None:
    ep = add_plugin(plugin_dir, "doc_settings", SETTINGS_PLUGIN)
    app = make_app(tmp_path, {"plugins": {"doc_settings": {"timeout": "60"}}}, ep)
    assert app.state.gateway.plugins.records["doc_settings"].settings.timeout == 60.0
    with pytest.raises(ConfigError, match=r"plugins\.doc_settings\.timeuot: unknown key"):
        make_app(tmp_path, {"plugins": {"doc_settings": {"timeuot": 60}}}, ep)


def test_plugin_without_settings_refuses_keys(plugin_dir: Path, tmp_path: Path) -> None:
    ep = add_plugin(plugin_dir, "doc_no_settings", "import routerd\n")
    app = make_app(tmp_path, {"plugins": {"doc_no_settings": {"enabled": True}}}, ep)
    assert app.state.gateway.plugins.records["doc_no_settings"].settings is None
    with pytest.raises(ConfigError, match=r"plugins\.doc_no_settings\.colour: unknown key"):
        make_app(tmp_path, {"plugins": {"doc_no_settings": {"colour": "blue"}}}, ep)


def test_missing_optional_dependency_names_the_extra(plugin_dir: Path, tmp_path: Path) -> None:
    code = """
        import routerd
        routerd.require_modules("fast", "routerd_surely_not_installed", distribution="routerd-demo")
    """
    ep = add_plugin(plugin_dir, "doc_extra", code)
    with pytest.raises(MissingExtra, match=re.escape("pip install 'routerd-demo[fast]'")) as caught:
        make_app(tmp_path, {}, ep)
    assert caught.value.plugin == "doc_extra"
    assert caught.value.modules == ["routerd_surely_not_installed"]


def test_misspelled_hook_stops_start_up(plugin_dir: Path, tmp_path: Path) -> None:
    code = """
        import routerd

        @routerd.hookimpl
        def register_backend(register, context):
            pass
    """
    ep = add_plugin(plugin_dir, "doc_misspelled", code)
    with pytest.raises(PluginError, match="register_backend") as caught:
        make_app(tmp_path, {}, ep)
    assert caught.value.plugin == "doc_misspelled"


def test_unknown_hook_argument_stops_start_up(plugin_dir: Path, tmp_path: Path) -> None:
    code = """
        import routerd

        @routerd.hookimpl
        def register_backends(register, ctx):
            pass
    """
    ep = add_plugin(plugin_dir, "doc_bad_argument", code)
    with pytest.raises(PluginError, match="ctx") as caught:
        make_app(tmp_path, {}, ep)
    assert caught.value.plugin == "doc_bad_argument"


LIFECYCLE_PLUGIN = """
    import routerd

    EVENTS = []


    class Recorder:
        def __init__(self, name):
            self.name = name

        async def start(self):
            EVENTS.append(f"start {self.name}")

        async def close(self):
            EVENTS.append(f"close {self.name}")

        async def lookup(self, partition, key, text):
            return None

        async def store(self, partition, key, text, response):
            pass


    @routerd.hookimpl
    def register_caches(register):
        register(Recorder("first"))
        register(Recorder("second"))
"""


def test_objects_start_in_registration_order_and_close_in_reverse(plugin_dir: Path, tmp_path: Path) -> None:
    ep = add_plugin(plugin_dir, "doc_lifecycle", LIFECYCLE_PLUGIN)
    app = make_app(tmp_path, {}, ep)
    events = sys.modules["doc_lifecycle"].EVENTS
    assert events == [], "hooks only register; start() waits for the app"
    with TestClient(app) as client:
        assert events == ["start first", "start second"]
        assert client.get("/readyz").status_code == 200
    assert events == ["start first", "start second", "close second", "close first"]

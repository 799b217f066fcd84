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
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable, Iterator
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
from routerd.testing import FAKE_PLUGIN, TEST_ADMIN_KEY, build_app

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
    """A started app with an example plugin in it (and the fake backend), and the object the example registered."""

    client: TestClient
    obj: Any
    example: Example
    settings: Any
    app: Litestar
    tmp_path: Path

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Await `function(*args)` on the app's own event loop."""
        return self.client.blocking_portal.call(function, *args)

    def chat(self, text: str, *, headers: dict[str, str] | None = None, **body: Any) -> Any:
        payload = {"messages": [{"role": "user", "content": text}], **body}
        return self.client.post("/v1/chat/completions", json=payload, headers=headers or {})

    @property
    def fake(self) -> Any:
        return self.app.state.gateway.plugins.registry.backends["fake"]


ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
# The builtin scorers, switched off where an example's scorer must decide alone.
OTHER_SCORERS = ("size_fit", "speed", "cost", "diversity", "feedback", "profiles", "benchmarks", "learned", "example")
SUITE = Path(__file__).resolve().parent / "data" / "short_suite.toml"


def sse_text(body: str) -> str:
    """The content of an SSE stream of chat chunks, joined."""
    text = []
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:]).get("choices", []):
                text.append(choice["delta"].get("content") or "")
    return "".join(text)


def exercise_backend(run: Run) -> None:
    backend = run.obj
    client = run.client
    listed = {card["id"] for card in client.get("/v1/models").json()["data"]}
    assert {"echo-1", "echo-2"} <= listed
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "ping pong"}]
    answer = client.post("/v1/chat/completions?model=echo-1", json={"messages": messages})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-routerd-model"] == "echo-1"
    text = answer.json()["choices"][0]["message"]["content"]
    assert text.startswith("You said: ping pong")  # then the signature
    streamed = client.post("/v1/chat/completions?model=echo-1", json={"messages": messages, "stream": True})
    assert streamed.status_code == 200 and sse_text(streamed.text) == text
    embeddings = client.post("/v1/embeddings", json={"model": "echo-2", "input": ["first text", "second text"]})
    vectors = [item["embedding"] for item in embeddings.json()["data"]]
    assert len(vectors) == 2 and vectors[0] != vectors[1]
    assert run.call(backend.unload, "echo-1") is None
    with pytest.raises(routerd.BackendError):
        run.call(backend.chat, "no-such-model", routerd.ChatRequest(messages=[routerd.Message(role="user")]))


def exercise_benchmark_provider(run: Run) -> None:
    provider = run.obj
    deadline = time.monotonic() + 10
    while True:
        statuses = run.client.get("/admin/benchmarks/status", headers=ADMIN).json()["sources"]
        mine = next((status for status in statuses if status["source"] == provider.name), {})
        if mine.get("ok"):
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)
    configured = run.example.config["plugins"][run.example.plugin]["scores"]
    assert mine["stored"] == sum(len(figures) for figures in configured.values())
    for model, figures in configured.items():
        merged = run.client.get("/admin/benchmarks", params={"model": model}, headers=ADMIN).json()["models"][0]
        assert {name: found["value"] for name, found in merged["benchmarks"].items()} == figures


def exercise_scorer(run: Run) -> None:
    short = run.chat("hi")
    long = run.chat("word " * 1800)
    assert short.headers["x-routerd-model"] == "fake-small"
    assert long.headers["x-routerd-model"] == "fake-large"
    decision = run.client.get(f"/admin/decisions/{long.headers['x-routerd-decision-id']}", headers=ADMIN).json()
    reason = decision["candidates"][0]["contributions"][run.obj.name]["reason"]
    assert reason.startswith("long prompt (2250 tokens), 70.0B-parameter model")


def exercise_judge(run: Run) -> None:
    started = run.client.post("/admin/reprofile", params={"model": "fake-small"}, headers=ADMIN)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 30
    while (found := run.client.get("/admin/profiles/fake-small", headers=ADMIN)).status_code != 200:
        assert time.monotonic() < deadline, found.text
        time.sleep(0.05)
    prompts = {p["id"]: p for c in found.json()["latest"]["categories"].values() for p in c["prompts"]}
    judged = [p for p in prompts.values() if p["method"] == "judge"]
    assert judged and {p["judge"] for p in judged} == {run.obj.name}
    assert all(p["reason"].endswith("key words") for p in judged)
    assert prompts["math-sum"]["method"] == "exact"  # an exact expectation needs no judge


def exercise_learner(run: Run) -> None:
    answer = run.chat("Write a haiku about rain")
    decision = answer.headers["x-routerd-decision-id"]
    assert run.client.post("/v1/feedback", json={"decision_id": decision, "rating": -1}).status_code == 201
    path = run.obj.path
    deadline = time.monotonic() + 5
    while not path.exists() or len(lines := path.read_text().splitlines()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    entries = [json.loads(line) for line in lines]
    assert entries[0]["decision"] == decision and entries[0]["ok"] and entries[0]["rating"] is None
    assert entries[0]["model"] == answer.headers["x-routerd-model"]
    assert entries[0]["category"] == "creativity" and entries[0]["completion_tokens"] > 0
    assert entries[1]["decision"] == decision and entries[1]["rating"] == 0.0


def exercise_skill(run: Run) -> None:
    skill = run.obj
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", skill.name)
    json.dumps(skill.parameters)
    answer = run.chat("How many words?", headers={"X-Routerd-Skills": skill.name})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-routerd-model"] == "fake-large"  # the model that calls tools
    content = answer.json()["choices"][0]["message"]["content"]
    assert '{"words": 4, "lines": 2, "characters": 18}' in content
    calls = run.client.get(f"/admin/decisions/{answer.headers['x-routerd-decision-id']}", headers=ADMIN).json()
    assert [call["skill"] for call in calls["skill_calls"]] == [skill.name]
    without = run.chat("How many words?")
    assert "words" not in without.json()["choices"][0]["message"]["content"]  # not offered: not called
    with pytest.raises(ValueError):
        run.call(skill.run, {})


def exercise_cache(run: Run) -> Callable[[], None]:
    first = run.chat("What is the capital of France?", temperature=0)
    deadline = time.monotonic() + 5
    while not run.obj._entries:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = run.chat("What is the capital of France?", temperature=0)
    sampled = run.chat("What is the capital of France?")
    assert (first.headers["x-routerd-cache"], second.headers["x-routerd-cache"]) == ("miss", "hit")
    assert sampled.headers["x-routerd-cache"] == "bypass"  # no temperature: OpenAI's default samples
    assert second.json()["choices"] == first.json()["choices"]
    assert len([call for call in run.fake.calls if call[0] == "chat"]) == 2  # the hit called no model

    def after_close() -> None:
        assert run.obj._entries == {}

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
    assert client.get("/v1/models", headers={header: other["token"]}).status_code == 200


def exercise_job(run: Run) -> None:
    deadline = time.monotonic() + 5
    while run.fake.calls.count(("chat", "fake-small")) < 2:
        assert time.monotonic() < deadline, run.fake.calls
        time.sleep(0.02)


def exercise_routes(run: Run) -> None:
    listed = run.client.get("/status/models")
    assert listed.status_code == 200
    assert {"id": "fake-large", "vision": False, "tools": True} in listed.json()["models"]
    assert run.client.get("/admin/status/models").status_code == 401
    details = run.client.get("/admin/status/models", headers=ADMIN).json()["models"]
    assert {"id": "fake-small", "parameters": 1_000_000_000, "context": 8192} in details


def exercise_commands(run: Run) -> None:
    site = run.tmp_path / "site"
    site.mkdir()
    install_example(site, run.example)
    fake = site / "routerd_fake_entry-0.1.0.dist-info"
    fake.mkdir()
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: routerd-fake-entry\nVersion: 0.1.0\n")
    (fake / "entry_points.txt").write_text("[routerd]\nfake = routerd.testing.fake_backend\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "ROUTERD__DATA_DIR": str(run.tmp_path / "cli-data"),
        "ROUTERD__PLUGINS__LOCAL__ENABLED": "false",
        "ROUTERD__PROFILING__ENABLED": "false",
    }
    routerd_command = str(Path(sys.executable).parent / "routerd")
    listed = subprocess.run([routerd_command, "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert run.obj.name in listed.stdout, listed.stdout + listed.stderr
    asked = subprocess.run(
        [routerd_command, run.obj.name, "fake-small", "ping"], env=env, capture_output=True, text=True, timeout=120
    )
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip() == "Hello from the fake backend."
    unknown = subprocess.run(
        [routerd_command, run.obj.name, "no-such-model", "ping"], env=env, capture_output=True, text=True, timeout=120
    )
    assert unknown.returncode == 1 and "no-such-model" in unknown.stderr


EXERCISES: dict[str, Callable[[Run], Callable[[], None] | None]] = {
    "register_backends": exercise_backend,
    "register_benchmark_providers": exercise_benchmark_provider,
    "register_scorers": exercise_scorer,
    "register_judges": exercise_judge,
    "register_learners": exercise_learner,
    "register_skills": exercise_skill,
    "register_caches": exercise_cache,
    "register_authenticators": exercise_authenticator,
    "register_jobs": exercise_job,
    "register_routes": exercise_routes,
    "register_commands": exercise_commands,
}

# What each exercise needs of the app besides the example's own configuration.
EXTRA_CONFIG: dict[str, dict[str, Any]] = {
    "register_scorers": {"plugins": {name: {"enabled": False} for name in OTHER_SCORERS}},
    "register_judges": {"profiling": {"enabled": True, "suite": str(SUITE)}},
    "register_skills": {
        "plugins": {"fake": {"calls_tool": "word_count", "tool_arguments": {"text": "one two three\nfour"}}}
    },
    "register_jobs": {"plugins": {"keep_warm": {"models": ["fake-small"], "interval": 0.05}}},
}


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_example_runs(hook: str, plugin_dir: Path, tmp_path: Path) -> None:
    assert hook in EXERCISES, f"add an exercise of the {hook} example to EXERCISES"
    example = hook_example(hook)
    entry_point = add_plugin(plugin_dir, example.module, example.code, name=example.plugin)
    config = merge(json.loads(json.dumps(example.config)), EXTRA_CONFIG.get(hook, {}))
    app: Litestar = build_app(tmp_path / "data", config, [entry_point, FAKE_PLUGIN])
    host = app.state.gateway.plugins
    record = host.records[example.plugin]
    assert record.enabled
    assert record.hooks == [hook], "an example implements the hook of its section, and only that"
    family = hook.removeprefix("register_")
    names = record.registered.get(family)
    assert names, f"the {hook} example registered nothing"
    registry = getattr(host.registry, family)
    objects = [registry[name] for name in names]
    protocol = hookspecs.FAMILIES[hook]
    assert protocol is None or all(isinstance(obj, protocol) for obj in objects)
    assert all(host.registry.owner[(hook, name)] == example.plugin for name in names)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        run = Run(client, objects[0], example, record.settings, app, tmp_path)
        after_close = EXERCISES[hook](run)
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
        if protocol is None:  # routes and commands: Litestar handlers and click commands
            continue
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

        async def lookup(self, query):
            return None

        async def store(self, query, answer):
            pass


    @routerd.hookimpl
    def register_caches(register):
        register(Recorder("first"))
        register(Recorder("second"))
"""


def test_objects_start_in_registration_order_and_close_in_reverse(plugin_dir: Path, tmp_path: Path) -> None:
    ep = add_plugin(plugin_dir, "doc_lifecycle", LIFECYCLE_PLUGIN)
    # no backend serves a chat model here: readiness is about the database and the plugins
    app = make_app(tmp_path, {"server": {"require_chat_model": False}}, ep)
    events = sys.modules["doc_lifecycle"].EVENTS
    assert events == [], "hooks only register; start() waits for the app"
    with TestClient(app) as client:
        assert events == ["start first", "start second"]
        assert client.get("/readyz").status_code == 200
    assert events == ["start first", "start second", "close second", "close first"]


def tables_example() -> tuple[Example, str, str]:
    """The "Plugin-owned tables" section's plugin, and its revision's file name and code."""
    (section,) = [s for s in doc_sections() if s.level == 2 and s.title == "Plugin-owned tables"]
    module_code, revision_code = section.blocks("python")
    match = _EXAMPLE_FILE.match(module_code)
    assert match
    revision = re.match(r"# (\S+\.py)\n", revision_code)
    assert revision
    return Example(module=match[1], plugin=match[2], code=module_code), revision[1], revision_code


def test_plugin_owned_tables_example_is_shared_by_replicas(plugin_dir: Path, tmp_path: Path, database_url: str) -> None:
    """The shared cache's own table is made by its own revision; an answer one replica stored is a hit on another
    (a fresh app on the same database); `routerd db current` shows the plugin's revision and `routerd db downgrade
    base --plugin` removes its table, leaving the kernel's."""
    example, revision_file, revision_code = tables_example()
    entry_point = add_plugin(plugin_dir, example.module, example.code, name=example.plugin)
    (plugin_dir / revision_file).parent.mkdir()
    (plugin_dir / revision_file).write_text(revision_code, encoding="utf-8")
    config = {"database": {"url": database_url}}
    question = {"messages": [{"role": "user", "content": "What is 6 x 7?"}], "temperature": 0}
    first_app = build_app(tmp_path / "one", config, [entry_point, FAKE_PLUGIN])
    with TestClient(first_app) as client:
        first = client.post("/v1/chat/completions", json=question)
        cache = first_app.state.gateway.plugins.registry.caches["shared"]
        deadline = time.monotonic() + 5
        while client.blocking_portal.call(cache.lookup, _query_of(first_app, question)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    second_app = build_app(tmp_path / "two", config, [entry_point, FAKE_PLUGIN])
    with TestClient(second_app) as client:
        second = client.post("/v1/chat/completions", json=question)
    assert first.headers["x-routerd-cache"] == "miss"
    assert second.headers["x-routerd-cache"] == "hit"
    assert second.json()["choices"] == first.json()["choices"]
    assert second_app.state.gateway.plugins.registry.backends["fake"].calls == []

    site = tmp_path / "site"
    site.mkdir()
    install_example(site, example)
    (site / revision_file).parent.mkdir()
    (site / revision_file).write_text(revision_code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(site), "ROUTER_DATABASE_URL": database_url}
    env["ROUTERD__DATA_DIR"] = str(tmp_path / "cli")
    routerd_command = str(Path(sys.executable).parent / "routerd")
    current = subprocess.run([routerd_command, "db", "current"], env=env, capture_output=True, text=True, timeout=120)
    assert current.returncode == 0, current.stderr
    assert f"plugin {example.plugin}: current 0001, head 0001" in current.stdout
    assert "up to date" in current.stdout
    down = subprocess.run(
        [routerd_command, "db", "downgrade", "base", "--plugin", example.plugin],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert down.returncode == 0, down.stderr
    tables = asyncio.run(_tables(database_url))
    assert "shared_cache_entries" not in tables and "routing_decisions" in tables


def _query_of(app: Litestar, body: dict[str, Any]) -> routerd.CacheQuery:
    from routerd.pipeline.caching import cache_query

    chat = msgspec.convert(body, routerd.ChatRequest)
    preference = app.state.gateway.settings.routing.quality_preference
    return cache_query(chat, routerd.ANONYMOUS, pinned=None, preference=preference, max_age=None)


async def _tables(url: str) -> set[str]:
    from sqlalchemy import inspect

    from routerd.db.engine import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()

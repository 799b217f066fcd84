"""The kernel's boundaries: builtin plugins use only the public toolkit, the kernel imports no plugin and none of
the numerical libraries, and every documented setting is read somewhere."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import routerd
import routerd.toolkit
from routerd.config import Settings
from routerd.config_docs import _fields, builtin_plugin_settings

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "kernel" / "routerd"
PLUGINS = ROOT / "plugins"
PUBLIC = {"routerd": set(routerd.__all__), "routerd.toolkit": set(routerd.toolkit.__all__)}
NUMERICAL = ("numpy", "scipy", "faiss", "numba")


def python_files(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from sorted(folder.rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in `path`, relative imports resolved to nothing."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def test_builtin_plugins_and_the_template_import_only_public_names() -> None:
    found = []
    for path in python_files(PLUGINS, ROOT / "plugin-template" / "src"):
        for line, module, names in imports(path):
            if module != "routerd" and not module.startswith("routerd."):
                continue
            if module not in PUBLIC:
                found.append(f"{path.relative_to(ROOT)}:{line}: {module} is not public")
                continue
            private = [name for name in names if name not in PUBLIC[module]]
            if private:
                found.append(f"{path.relative_to(ROOT)}:{line}: {module}.{', '.join(private)} is not public")
    assert not found, "\n".join(found)


def test_every_public_name_is_importable() -> None:
    for module, names in PUBLIC.items():
        loaded = __import__(module, fromlist=["*"])
        for name in names:
            assert getattr(loaded, name) is not None, f"{module}.{name}"


def test_the_kernel_imports_no_plugin() -> None:
    plugins = {ep.value.split(".")[0].split(":")[0] for ep in entry_points(group="routerd")}
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in python_files(KERNEL)
        for line, module, _ in imports(path)
        if module.split(".")[0] in plugins
    ]
    assert not found, "\n".join(found)


def test_the_core_never_imports_the_toolkit() -> None:
    """The toolkit is for plugins: outside it, only the package's public front door names it (lazily)."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in python_files(KERNEL)
        if "toolkit" not in path.relative_to(KERNEL).parts and path.name != "__init__.py"
        for line, module, _ in imports(path)
        if module.startswith("routerd.toolkit")
    ]
    assert not found, "\n".join(found)


PIPELINE = """
import sys
from pathlib import Path
from litestar.testing import TestClient
from routerd.testing import FAKE_PLUGIN, build_app

OFF = ["learned", "openai", "llamacpp", "ollama", "judge", "example"]  # the learned plugin needs numpy
config = {"plugins": {name: {"enabled": False} for name in OFF}}
app = build_app(Path(sys.argv[1]), config, [FAKE_PLUGIN])
with TestClient(app) as client:
    answer = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hello there"}]})
    streamed = client.post(
        "/v1/chat/completions", json={"stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    )
    models = client.get("/v1/models")
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"numpy", "scipy", "faiss", "numba"})
toolkit = "routerd.toolkit" in sys.modules
print(json.dumps({"status": [answer.status_code, streamed.status_code, models.status_code], "loaded": loaded,
                  "toolkit": toolkit}))
"""


def test_import_routerd_loads_none_of_the_numerical_libraries() -> None:
    loaded = f"sorted(set(m.split('.')[0] for m in sys.modules) & {set(NUMERICAL)!r})"
    code = f"import json, sys, routerd; print(json.dumps({loaded}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == []


def test_the_request_pipeline_loads_none_of_the_numerical_libraries(tmp_path) -> None:
    """A gateway without the plugins that need them serves chat, streams and models without numpy, scipy, faiss
    or numba in the process, and without the plugin toolkit."""
    code = "import json\n" + textwrap.dedent(PIPELINE)
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"status": [200, 200, 200], "loaded": [], "toolkit": False}


# -- the settings census -------------------------------------------------------------------------------------


def attribute_reads(paths: list[Path]) -> dict[Path, set[str]]:
    """Per module, every attribute name read in it (``x.name``), every variable read, and every name read with
    getattr(x, "name")."""
    found: dict[Path, set[str]] = {}
    for path in paths:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)  # a section passed on as a variable: `routing.mode`
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                names.add(str(node.args[1].value))
        found[path] = names
    return found


def kernel_settings() -> list[str]:
    return [key for key, _, _ in _fields(Settings, "") if '"<name>"' not in key]


CODE = [path for path in python_files(KERNEL, PLUGINS) if path.name != "config_docs.py" and "testing" not in path.parts]
READS = attribute_reads(CODE)


def package_of(path: Path) -> Path:
    """The plugin package of a module, or the kernel's folder the module is in."""
    return path.parent if KERNEL in path.parents else PLUGINS / path.relative_to(PLUGINS).parts[0]


@pytest.mark.parametrize("key", kernel_settings())
def test_every_kernel_setting_is_read(key: str) -> None:
    """A setting is read where its section is: the field is read in a package (a kernel folder or a plugin) that
    also reads the section (or names the section's Settings class)."""
    *section, field = key.split(".")
    holders = [path for path, names in READS.items() if field in names]
    assert holders, f"{key}: nothing reads .{field}"
    if section:
        struct = type(getattr(Settings(), section[0])).__name__
        packages = {package_of(path) for path in holders}
        assert any(
            section[-1] in READS[path] or struct in path.read_text() for path in READS if package_of(path) in packages
        ), f"{key}: .{field} is read, but never where the {section[-1]} section is"


def plugin_settings() -> list[tuple[str, str]]:
    found = []
    for name, struct in builtin_plugin_settings().items():
        if struct is None:
            continue
        for key, _, _ in _fields(struct, ""):
            found.append((name, key))
    return found


@pytest.mark.parametrize(("plugin", "key"), plugin_settings())
def test_every_builtin_plugin_setting_is_read_by_its_plugin(plugin: str, key: str) -> None:
    module = next(ep.module for ep in entry_points(group="routerd") if ep.name == plugin).split(".")[0]
    package = PLUGINS / module
    field = key.split(".")[-1]
    assert any(field in names for path, names in READS.items() if package in path.parents), (
        f"plugins.{plugin}.{key}: nothing in {module} reads .{field}"
    )

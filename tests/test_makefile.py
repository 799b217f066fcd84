"""The Makefile and .ci/run, checked with make itself (a dry run: nothing is installed or built).

- `make run` uses .venv, and nothing it runs installs the plugin template, whose demo plugin
  `example` would be on in every user's gateway; the .venv this checkout has is such too;
- `make test` installs the template and the TEST_EXTRAS into .venv-test, runs both test suites with
  .venv-test's Python, and installs nothing into .venv that `make run` would not;
- each environment is reinstalled when the files it is installed from change;
- CI runs `make test TEST_EXTRAS=embeddings` and installs nothing itself.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from deploy_files import ROOT, make, make_variable

TEMPLATE_DISTRIBUTION = "routerd-example-plugin"


def dry_run(*goals: str) -> list[str]:
    """The commands `make --always-make GOALS` would run, continuation lines joined."""
    result = make("--dry-run", "--always-make", *goals)
    assert result.returncode == 0, result.stderr
    return result.stdout.replace("\\\n", " ").splitlines()


def pip_installs(commands: list[str]) -> list[str]:
    return [c for c in commands if re.search(r"\bpip install\b", c)]


def prerequisites(target: str) -> set[str]:
    """The target's prerequisites in make's database (`make --print-data-base`; nothing runs)."""
    database = make("--print-data-base", "--question", "--no-builtin-rules", "venv").stdout
    found: set[str] = set()
    for line in database.splitlines():
        if line.startswith(f"{target}:") and not line.startswith(f"{target}:="):
            found |= set(line.partition(":")[2].split())
    return found


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    return {name: make_variable(name) for name in ("BIN", "STAMP", "TEST_BIN", "TEST_STAMP")}


def test_make_run_uses_the_venv_without_the_plugin_template(names):
    commands = dry_run("run")
    assert commands[-1] == f"{names['BIN']}/routerd serve"
    installs = pip_installs(commands)
    assert any(".[dev,local]" in c for c in installs), installs
    assert not [c for c in installs if "plugin-template" in c], "make run installs the plugin template"
    assert not [c for c in commands if names["TEST_BIN"] in c], "make run touches the test environment"


def test_make_test_installs_what_only_tests_need_into_the_test_environment(names):
    bin_, test_bin = names["BIN"], names["TEST_BIN"]
    commands = dry_run("test", "TEST_EXTRAS=embeddings")
    installs = pip_installs(commands)
    template = [c for c in installs if "plugin-template" in c]
    assert template and all(c.startswith(f"{test_bin}/python -m pip install") for c in template), template
    extra = [c for c in installs if "[embeddings]" in c or "torch" in c]
    assert extra and all(c.startswith(f"{test_bin}/python") for c in extra), extra
    # what `make test` installs into .venv is what `make run` installs there: users run the same
    into_venv = {c for c in installs if c.startswith(f"{bin_}/")}
    assert into_venv <= set(pip_installs(dry_run("run"))), into_venv
    # .venv-test sees .venv's packages, .pth files included (routerd's editable install is one)
    assert any("site.addsitedir" in c and ".pth" in c for c in commands), commands
    assert f"ROUTERD_TEST_EXTRAS='embeddings' {test_bin}/python -m pytest tests" in commands
    assert f"cd plugin-template && ../{test_bin}/python -m pytest tests" in commands


def test_each_environment_is_reinstalled_when_what_it_is_installed_from_changes(names):
    assert "pyproject.toml" in prerequisites(names["STAMP"])
    assert "plugin-template/pyproject.toml" not in prerequisites(names["STAMP"])
    assert {names["STAMP"], "pyproject.toml", "plugin-template/pyproject.toml"} <= prerequisites(names["TEST_STAMP"])
    assert names["STAMP"] in prerequisites("run")
    assert names["TEST_STAMP"] in prerequisites("test")


def test_make_clean_removes_both_environments():
    (command,) = dry_run("clean")
    removed = command.split()
    assert removed[:2] == ["rm", "-rf"]
    assert {make_variable("VENV"), make_variable("TEST_VENV")} <= set(removed)
    ignored = (ROOT / ".gitignore").read_text().split()
    assert f"{make_variable('TEST_VENV')}/" in ignored


def test_the_environment_make_run_uses_has_no_template_plugin(names):
    """The checkout's own .venv, when there is one (`make test` has made it): no `example` plugin."""
    python = ROOT / names["BIN"] / "python"
    if not python.exists():
        pytest.skip(f"no {python}")
    code = "import importlib.metadata as m, json; print(json.dumps([e.name for e in m.entry_points(group='routerd')]))"
    listed = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=True)
    plugins = json.loads(listed.stdout)
    assert "example" not in plugins, f"remove the plugin template from {python.parent.parent}: " + (
        f"{names['BIN']}/pip uninstall {TEMPLATE_DISTRIBUTION} (make test installs it in .venv-test)"
    )


def test_ci_runs_make_test_with_the_embeddings_extra_and_installs_nothing_itself():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert commands[-1] == "make test TEST_EXTRAS=embeddings"
    assert not [c for c in commands if re.search(r"\bpip\b|\bvenv\b", c)], "make installs everything"

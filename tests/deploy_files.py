"""Readers for the deployment files and the Makefile, as the tools that use them read them: a
Dockerfile parser (instructions, stages, the commands of RUN lines), Compose's `${VAR...}`
interpolation, and make's own view of the Makefile (its variables, dry runs).

Used by test_deploy_files.py and test_makefile.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_one(path: Path) -> dict[str, Any]:
    docs = load_yaml(path)
    assert len(docs) == 1, f"{path.name}: expected one document, found {len(docs)}"
    return docs[0]


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and parser directives dropped."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    stage = -1
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # a comment or empty line, also inside a continuation (as Docker does)
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, args = " ".join(parts).partition(" ")
        parts = []
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage, start))
    assert not parts, "the Dockerfile ends inside a continuation line"
    return instructions


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), f"not exec form: {args}"
    return value


def shell_commands(instructions: list[Instruction]) -> list[list[str]]:
    """The words of each command of each RUN (split at `&&`, `||` and `;`)."""
    commands = []
    for ins in instructions:
        if ins.keyword == "RUN":
            commands += [shlex.split(part) for part in re.split(r"&&|\|\||;", ins.args) if part.strip()]
    return commands


def pip_install_targets(instructions: list[Instruction]) -> list[str]:
    """What each `pip install` installs (its arguments that are not options)."""
    targets = []
    for words in shell_commands(instructions):
        for i, word in enumerate(words[:-1]):
            if PurePosixPath(word).name in ("pip", "pip3") and words[i + 1] == "install":
                targets += [w for w in words[i + 2 :] if not w.startswith("-")]
    return targets


def apt_packages(instructions: list[Instruction]) -> set[str]:
    packages: set[str] = set()
    for words in shell_commands(instructions):
        if words[:1] == ["apt-get"] and "install" in words:
            packages |= {w for w in words[words.index("install") + 1 :] if not w.startswith("-")}
    return packages


def make(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in the checkout as a newcomer's shell runs it: no MAKEFLAGS from a `make test` that
    runs these tests, nor variables of the Makefile's (VENV, CMAKE_ARGS, ...) from this environment."""
    command = shutil.which("make")
    assert command, "make is not installed (the README's first line: Python 3.11+, pip and make)"
    return subprocess.run(
        [command, "--no-print-directory", *args],
        input=stdin,
        env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_variable(name: str) -> str:
    """A variable of the Makefile as make itself expands it."""
    result = make("-f", "Makefile", "-f", "-", "print-variable", stdin=f"print-variable:\n\t@echo '$({name})'\n")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def dockerfile_env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for item in shlex.split(ins.args):
                key, sep, value = item.partition("=")
                assert sep, f"line {ins.line}: use ENV KEY=VALUE, not the legacy `ENV KEY VALUE`"
                env[key] = value
    return env


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in instructions if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def healthcheck_cmd(instructions: list[Instruction]) -> list[str]:
    match = re.fullmatch(r"((?:--[\w-]+=\S+\s+)*)CMD\s+(\[.*\])", only(instructions, "HEALTHCHECK").args)
    assert match, "HEALTHCHECK must be `HEALTHCHECK [--option=value ...] CMD [exec form]`"
    return exec_form(match[2])


INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`."""

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        missing = not current if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if missing else str(current)
        if op in (":?", "?"):
            if missing:
                raise ValueError(f"{name}: {arg}")
            return str(current)
        return current or ""

    return INTERPOLATION.sub(substitute, value)


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}

"""The profiling suite: prompts with reference answers or grading notes, and exact expectations where an answer
can be checked deterministically.

A suite is a TOML or JSON file (the bundled one is ``suite.toml`` next to this module; a team's own goes in
``profiling.suite``), validated into the Structs below. Its `Suite.suite_version` is the human `version` plus a
hash of the content, so editing a prompt, a reference or an expectation changes it, and the profiler then
profiles every model again.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from routerd import PROMPT_CATEGORIES as CATEGORIES
from routerd import ConfigError, explain_validation_error

BUNDLED_SUITE = Path(__file__).with_name("suite.toml")
CHOICE_LETTERS = "ABCDEFGHIJ"

PromptId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$")]
Letter = Annotated[str, Meta(pattern=r"^[A-J]$")]


class Expectation(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """How an answer is checked exactly; exactly one of `number`, `choice` and `contains` is set.

    - `number`: the answer's final number (``80``, ``$66.00``, ``1,250 km``) equals it, within `tolerance`;
    - `choice`: the answer picks this letter (``B``, ``(B)``, ``Answer: B``); `options` (letter -> text) also
      recognises an answer that quotes an option instead of naming its letter;
    - `contains`: the answer contains one of these words or phrases (whole words, any case or accents).
    """

    number: float | None = None
    tolerance: Annotated[float, Meta(ge=0)] = 0.0
    choice: Letter | None = None
    options: dict[Letter, Annotated[str, Meta(min_length=1)]] = {}
    contains: list[Annotated[str, Meta(min_length=1, max_length=200)]] = []

    def __post_init__(self) -> None:
        kinds = [name for name in ("number", "choice", "contains") if getattr(self, name) not in (None, [])]
        if len(kinds) != 1:
            raise ValueError(f"set exactly one of number, choice, contains (found: {', '.join(kinds) or 'none'})")
        if self.options and self.choice is None:
            raise ValueError("options are for a choice expectation")
        if self.options and self.choice not in self.options:
            raise ValueError(f"the expected choice {self.choice} is not among the options")

    @property
    def kind(self) -> str:
        return "number" if self.number is not None else "choice" if self.choice is not None else "contains"


class SuitePrompt(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One prompt of the suite. `reference` is a reference answer or grading notes, given to judges; `system` an
    optional system message; `max_tokens` lowers ``profiling.max_tokens`` for this prompt."""

    id: PromptId
    category: str
    prompt: Annotated[str, Meta(min_length=1, max_length=20_000)]
    reference: Annotated[str, Meta(min_length=1, max_length=20_000)]
    system: Annotated[str, Meta(min_length=1, max_length=20_000)] | None = None
    expect: Expectation | None = None
    max_tokens: Annotated[int, Meta(ge=1)] | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} is not a routing category ({', '.join(CATEGORIES)})")


class Suite(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: Annotated[str, Meta(min_length=1, max_length=60)]
    version: Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$")]
    prompts: Annotated[list[SuitePrompt], Meta(min_length=1, max_length=1000)]
    description: str = ""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for prompt in self.prompts:
            if prompt.id in seen:
                raise ValueError(f"two prompts have the id {prompt.id!r}")
            seen.add(prompt.id)

    @property
    def suite_version(self) -> str:
        """``<version>+<hash of the content>``: what profiles are stored under (at most 31 characters)."""
        content = msgspec.json.encode([self.name, self.prompts])
        return f"{self.version}+{hashlib.sha256(content).hexdigest()[:10]}"

    @property
    def categories(self) -> list[str]:
        """The suite's categories, in the order they first appear."""
        return list(dict.fromkeys(p.category for p in self.prompts))

    def by_category(self) -> dict[str, list[SuitePrompt]]:
        grouped: dict[str, list[SuitePrompt]] = {}
        for prompt in self.prompts:
            grouped.setdefault(prompt.category, []).append(prompt)
        return grouped


_PROMPT_INDEX = re.compile(r"^prompts\.(\d+)(.*)$")


def _where(key: str, raw: Any) -> str:
    """``prompts.3.expect`` -> ``prompt 'math-pencils' (prompts[3]).expect``: name the prompt, not just its place."""
    match = _PROMPT_INDEX.match(key)
    if not match:
        return key or "the suite"
    index, rest = int(match[1]), match[2]
    prompt = raw.get("prompts", [])[index] if isinstance(raw, dict) else None
    ident = prompt.get("id") if isinstance(prompt, dict) else None
    named = f"prompt {ident!r} (prompts[{index}])" if isinstance(ident, str) else f"prompts[{index}]"
    return named + rest


def parse_suite(data: bytes, *, source: str, toml: bool) -> Suite:
    """Validate a suite file's content; a `ConfigError` names `source`, the prompt and the field."""
    try:
        raw = tomllib.loads(data.decode()) if toml else json.loads(data)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(source, f"not valid {'TOML' if toml else 'JSON'}: {exc}") from None
    try:
        return msgspec.convert(raw, Suite)
    except msgspec.ValidationError as exc:
        key, reason = explain_validation_error(exc)
        raise ConfigError(f"{source}: {_where(key, raw)}", reason) from None


def load_suite(path: str | Path | None = None) -> Suite:
    """The suite at `path` (TOML unless it ends in ``.json``), or the bundled one."""
    target = Path(path).expanduser() if path else BUNDLED_SUITE
    source = f"profiling.suite ({target})" if path else str(target)
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ConfigError(source, f"cannot read the suite: {exc.strerror or exc}") from None
    return parse_suite(data, source=source, toml=target.suffix.lower() != ".json")

"""Pairing the catalog's model names with the names benchmark sources publish.

A local name (``qwen2.5:7b-instruct-q4_K_M``, ``llama3.1:8b``, ``gemma-3-270m-q4_k_m``) and a leaderboard
name (``Qwen/Qwen2.5-7B-Instruct``, ``Meta-Llama-3.1-8B-Instruct``) are both reduced to a `ModelKey`:
family, version, size, instruction tuning, revision, and every other identifying word (``coder``, ``mini``,
``nemotron``, a date), with the organisation, quantisation and file-format words dropped. Two names pair when
their keys agree. When several published names fit equally well and cannot be told apart (no official
organisation among them), the matcher answers None rather than guess; `benchmarks.aliases` covers the rest.

Conventions used: an Ollama name (``name:tag``) without a variant word is the instruction-tuned model (Ollama's
library tags base models ``-text``); any other name says what it is or is taken as not saying.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_QUANT = re.compile(
    r"(?<![a-z0-9])(?:i?q\d(?:_[a-z0-9]{1,2}){0,3}|f16|f32|fp16|fp32|bf16|fp8|int4|int8|awq|gptq|gguf|ggml|mlx"
    r"|exl2|\d+bit|\d+(?:\.\d+)?bpw|hf|latest)(?![a-z0-9])"
)
_SPLIT = re.compile(r"[-_\s:]+")
_GLUED = re.compile(r"^([a-z]{2,})(\d+(?:\.\d+)*)$")  # qwen2.5, llama3, gemma3, phi3
_VERSION = re.compile(r"^\d+(?:\.\d+)*$")
_REVISION = re.compile(r"^v(\d+(?:\.\d+)*)$")
_SIZE = re.compile(r"^(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])$")  # 7b, 0.5b, 270m, 8x7b
_INSTRUCT = {"instruct", "it", "chat"}
_BASE = {"base", "text", "pretrained"}

# Organisations that publish each family's own weights: preferred over re-uploads of the same name.
OFFICIAL_ORGS: dict[str, frozenset[str]] = {
    family: frozenset(orgs)
    for family, orgs in {
        "qwen": {"qwen"},
        "qwq": {"qwen"},
        "llama": {"meta-llama"},
        "codellama": {"meta-llama", "codellama"},
        "gemma": {"google"},
        "codegemma": {"google"},
        "mistral": {"mistralai"},
        "mixtral": {"mistralai"},
        "ministral": {"mistralai"},
        "phi": {"microsoft"},
        "deepseek": {"deepseek-ai"},
        "yi": {"01-ai"},
        "falcon": {"tiiuae"},
        "smollm": {"huggingfacetb"},
        "granite": {"ibm-granite"},
        "olmo": {"allenai"},
        "internlm": {"internlm"},
        "glm": {"thudm"},
        "starcoder": {"bigcode"},
        "stablelm": {"stabilityai"},
        "aya": {"cohereforai"},
        "command": {"cohereforai"},
    }.items()
}


@dataclass(frozen=True)
class ModelKey:
    """What a model name says about the model. Empty strings and None mean: the name does not say."""

    family: str
    version: str = ""
    size: str = ""
    instruct: bool | None = None
    revision: str = ""
    extras: frozenset[str] = frozenset()
    org: str = ""


def _normal_size(token: str) -> str:
    match = _SIZE.match(token)
    assert match
    experts, number, unit = match.groups()
    number = number.rstrip("0").rstrip(".") if "." in number else number
    return f"{experts}x{number}{unit}" if experts else f"{number}{unit}"


def size_in_parameters(size: str) -> float | None:
    """``7b`` -> 7e9, ``270m`` -> 2.7e8; None for mixtures of experts (``8x7b``) and unknown sizes."""
    match = _SIZE.match(size)
    if not match or match.group(1):
        return None
    return float(match.group(2)) * (1e9 if match.group(3) == "b" else 1e6)


def parse(name: str) -> ModelKey | None:
    """The `ModelKey` of a model name, or None when the name has no family word."""
    text = name.strip().lower()
    org = ""
    if "/" in text:
        parts = [p for p in text.split("/") if p]
        if not parts:
            return None
        org, text = (parts[-2] if len(parts) > 1 else ""), parts[-1]
    ollama = ":" in text
    text = text.removesuffix(".gguf")
    text = _QUANT.sub(" ", text)
    text = re.sub(r"(?<=\d)_(?=\d)", ".", text)  # llama-3_1 -> llama-3.1
    tokens: list[str] = []
    for token in _SPLIT.split(text):
        token = token.strip(".")  # mistral-7b-instruct-v0.2.Q5_K_M: the quantisation went, its dot stayed
        glued = _GLUED.match(token)
        tokens.extend(glued.groups() if glued else [token] if token else [])
    if len(tokens) > 1 and tokens[0] == "meta" and tokens[1] == "llama":
        tokens = tokens[1:]
    family = ""
    version = size = revision = ""
    instruct: bool | None = True if ollama else None
    extras: set[str] = set()
    for position, token in enumerate(tokens):
        if not family:
            if token.isalpha():
                family = token
            continue
        if not version and position > 0 and tokens[position - 1] == family and _VERSION.match(token):
            version = token
        elif match := _REVISION.match(token):
            revision = revision or match.group(1)
        elif not size and _SIZE.match(token):
            size = _normal_size(token)
        elif token in _INSTRUCT:
            instruct = True
        elif token in _BASE:
            instruct = False
        else:
            extras.add(token)
    if not family:
        return None
    return ModelKey(family, version, size, instruct, revision, frozenset(extras), org)


@dataclass(frozen=True)
class _Candidate:
    name: str
    key: ModelKey


class ModelMatcher:
    """Finds, among the model names one source publishes, the one a local model name means."""

    def __init__(self, names: Iterable[str]) -> None:
        self._by_family: dict[str, list[_Candidate]] = {}
        self._exact: dict[str, str] = {}
        for name in names:
            self._exact.setdefault(name.lower(), name)
            key = parse(name)
            if key is not None:
                self._by_family.setdefault(key.family, []).append(_Candidate(name, key))

    def exact(self, name: str) -> str | None:
        """The published name equal to `name` (ignoring case), if any."""
        return self._exact.get(name.strip().lower())

    def match(self, name: str, parameters: int | None = None) -> str | None:
        """The published name `name` means, or None when none fits or several fit equally well.
        `parameters` (the catalog's parameter count) stands in for a size the name does not give."""
        found = self.exact(name)
        if found is not None:
            return found
        local = parse(name)
        if local is None:
            return None
        group = [
            c
            for c in self._by_family.get(local.family, [])
            if c.key.version == local.version and c.key.extras == local.extras
        ]
        scored = [(fit, c) for c in group if (fit := _fit(local, c.key, group, parameters)) is not None]
        if not scored:
            return None
        best = max(fit[0] for fit, _ in scored)
        return _pick(local.family, [(fit[1], c) for fit, c in scored if fit[0] == best])


def _fit(
    local: ModelKey, key: ModelKey, group: list[_Candidate], parameters: int | None
) -> tuple[float, bool | None] | None:
    """How well a published key fits the local one (higher is better) and whether the published model is
    instruction-tuned, as far as can be told; None when it does not fit."""
    score = 0.0
    if local.size:
        if key.size == local.size:
            score += 2
        elif key.size:
            return None
        else:
            score += 1  # the published name gives no size (microsoft/phi-4)
    elif key.size:
        published = size_in_parameters(key.size)
        if parameters is None or published is None or abs(parameters - published) > 0.2 * published:
            return None
        score += 2 - abs(parameters - published) / published
    if local.revision:
        if key.revision != local.revision:
            return None
        score += 2
    else:
        score += 1 if key.revision else 2  # no revision locally: fine when only one fits
    instruct = key.instruct
    if instruct is None and any(
        c.key.instruct and c.key.size == key.size and c.key.revision == key.revision for c in group
    ):
        instruct = False  # Qwen/Qwen2.5-7B beside Qwen/Qwen2.5-7B-Instruct is the base model
    if local.instruct is not None and instruct is not None:
        if local.instruct != instruct:
            return None
        score += 2
    else:
        score += 1
    return score, instruct


def _pick(family: str, best: list[tuple[bool | None, _Candidate]]) -> str | None:
    """One name among equally good ones: the official organisation's; else, when they all come from
    one organisation (renamed or re-listed entries of one model), the first; else None."""
    official = [(i, c) for i, c in best if c.key.org in OFFICIAL_ORGS.get(family, frozenset())]
    if official:
        best = official
    if len({(c.key.revision, c.key.size, instruct) for instruct, c in best}) > 1:
        return None  # different models the local name does not tell apart (mistral v0.1, v0.2, v0.3)
    if len({c.key.org for _, c in best}) > 1:
        return None
    return min(c.name for _, c in best)


def match_model(
    name: str,
    candidates: ModelMatcher,
    *,
    aliases: Mapping[str, str] | None = None,
    parameters: int | None = None,
) -> str | None:
    """The published name for local model `name`: the alias table first (its value itself matched
    against the candidates, so one alias serves every source), then the matcher."""
    target = (aliases or {}).get(name)
    if target is not None:
        return candidates.exact(target) or candidates.match(target)
    return candidates.match(name, parameters)

"""What a model's name says about it, when its backend's metadata does not: parameter count
(``qwen2.5:7b`` -> 7e9, ``gemma-3-270m`` -> 2.7e8) and capabilities (vision, embeddings)."""

from __future__ import annotations

import re

from routerd.schemas.catalog import Capabilities

_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([mb])(?![a-z])", re.IGNORECASE)
_MOE = re.compile(r"(\d+)x(\d+(?:\.\d+)?)b", re.IGNORECASE)
_VISION = re.compile(
    r"(vision|llava|[-_.]vl\b|[-_]vl[-_:]|bakllava|moondream|gpt-4o|gpt-4\.1|pixtral|gemma-?3(?!-?270m|-?1b))", re.I
)
_EMBED = re.compile(r"(embed|bge-|e5-|minilm|gte-|nomic-embed)", re.IGNORECASE)


def parameters_from_name(name: str) -> int | None:
    """The parameter count a model's name states, or None."""
    base = name.rsplit("/", 1)[-1]
    moe = _MOE.search(base)
    if moe:
        return int(int(moe[1]) * float(moe[2]) * 1e9)
    sizes = [float(n) * (1e9 if unit.lower() == "b" else 1e6) for n, unit in _SIZE.findall(base.replace("_", "-"))]
    return int(max(sizes)) if sizes else None


def capabilities_from_name(name: str, *, tools: bool = True) -> Capabilities:
    embeddings = bool(_EMBED.search(name))
    return Capabilities(
        chat=not embeddings,
        vision=bool(_VISION.search(name)) and not embeddings,
        tools=tools and not embeddings,
        embeddings=embeddings,
        json_output=not embeddings,
    )


def parse_size(text: str | None) -> int | None:
    """``"7.6B"`` -> 7_600_000_000, ``"270M"`` -> 270_000_000 (Ollama's parameter_size)."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMBT])\s*", text, re.IGNORECASE)
    if not match:
        return None
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[match[2].upper()]
    return int(float(match[1]) * scale)

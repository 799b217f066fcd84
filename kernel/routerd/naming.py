"""What a model's name says about it, when its backend's metadata does not: parameter count
(``qwen2.5:7b`` -> 7e9, ``gemma-3-270m`` -> 2.7e8), context window (``gpt-4-32k`` -> 32768) and
capabilities (vision, embeddings, and models that do not chat at all, such as ``whisper-1``).

These are the second of three sources the catalog uses (`routerd.capabilities`): a backend's own
metadata wins over them, and the configuration's ``[models."<name>"]`` overrides win over both."""

from __future__ import annotations

import re

from routerd.schemas.catalog import Capabilities

_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([mb])(?![a-z])", re.IGNORECASE)
_MOE = re.compile(r"(\d+)x(\d+(?:\.\d+)?)b", re.IGNORECASE)
_VISION = re.compile(
    r"(vision|llava|[-_.]vl\b|[-_]vl[-_:]|bakllava|moondream|gpt-4o|gpt-4\.1|pixtral|gemma-?3(?!-?270m|-?1b))", re.I
)
_EMBED = re.compile(r"(embed|bge-|e5-|minilm|gte-|nomic-embed)", re.IGNORECASE)
# Models behind OpenAI-compatible APIs that answer no chat: speech, images, moderation, rerankers.
_NOT_CHAT = re.compile(
    r"(whisper|(?<![a-z])tts(?![a-z])|dall-e|gpt-image|moderation|rerank|(?<![a-z])(davinci|babbage)-00\d)", re.I
)
_CONTEXT = re.compile(r"(?<![a-z0-9.])(\d{1,4})k(?![a-z0-9])", re.IGNORECASE)


def parameters_from_name(name: str) -> int | None:
    """The parameter count a model's name states, or None."""
    base = name.rsplit("/", 1)[-1]
    moe = _MOE.search(base)
    if moe:
        return int(int(moe[1]) * float(moe[2]) * 1e9)
    sizes = [float(n) * (1e9 if unit.lower() == "b" else 1e6) for n, unit in _SIZE.findall(base.replace("_", "-"))]
    return int(max(sizes)) if sizes else None


def context_window_from_name(name: str) -> int | None:
    """The context window a model's name states (``gpt-4-32k``, ``yarn-mistral-7b-128k``), or None."""
    match = _CONTEXT.search(name.rsplit("/", 1)[-1])
    return int(match[1]) * 1024 if match and 2 <= int(match[1]) <= 10_000 else None


def capabilities_from_name(name: str) -> Capabilities:
    """Every capability, as far as the name tells: embedding models (``nomic-embed-text``) embed and
    do not chat; speech, image and moderation models do neither; vision models are recognised by
    family (``llava``, ``qwen2.5-vl``, ``gpt-4o``, ``gemma3`` from 4B); other chat models are taken
    to call tools and produce JSON (a backend that knows better says so in its metadata)."""
    embeddings = bool(_EMBED.search(name))
    chat = not embeddings and not _NOT_CHAT.search(name)
    return Capabilities(
        chat=chat,
        vision=bool(_VISION.search(name)) and chat,
        tools=chat,
        embeddings=embeddings,
        json_output=chat,
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

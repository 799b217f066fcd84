"""What the catalog knows of an Ollama model, from ``/api/tags`` and ``/api/show``."""

from __future__ import annotations

from typing import Any

from routerd import Capabilities, ModelInfo
from routerd.naming import capabilities_from_name, parameters_from_name, parse_size
from routerd_ollama.schemas import Details, Show, TagEntry


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def capabilities_of(name: str, listed: list[str] | None) -> Capabilities:
    """From the ``capabilities`` of ``/api/show``; servers older than Ollama 0.6.4 list none, and
    then the name decides (without tools, which a template may or may not support: claiming
    them would send tool requests to models that refuse them)."""
    if not listed:
        return capabilities_from_name(name, tools=False)
    chat = "completion" in listed
    return Capabilities(
        chat=chat,
        vision="vision" in listed,
        tools="tools" in listed,
        embeddings="embedding" in listed,
        json_output=chat,
    )


def describe(name: str, backend: str, tag: TagEntry, show: Show | None) -> ModelInfo:
    """`name` is the catalog's name for the model (the backend's prefix and Ollama's name)."""
    info = (show.model_info if show else None) or {}
    details = (show.details if show else None) or tag.details or Details()
    parameters = (
        _int(info.get("general.parameter_count"))
        or parse_size(details.parameter_size)
        or parameters_from_name(tag.name)
    )
    architecture = info.get("general.architecture")
    context_window = _int(info.get(f"{architecture}.context_length")) if isinstance(architecture, str) else None
    metadata = {
        key: value
        for key, value in {
            "digest": tag.digest,
            "family": details.family,
            "format": details.format,
            "quantization": details.quantization_level,
        }.items()
        if value
    }
    return ModelInfo(
        name=name,
        backend=backend,
        parameters=parameters,
        context_window=context_window,
        capabilities=capabilities_of(tag.name, show.capabilities if show else None),
        size_bytes=_int(tag.size),
        metadata=metadata,
    )

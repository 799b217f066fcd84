"""What an Ollama server's own metadata says of a model, from ``/api/tags`` and ``/api/show``;
what it leaves unknown the catalog fills in from the name (`routerd.capabilities`)."""

from __future__ import annotations

from typing import Any

from routerd import Capabilities, ModelInfo
from routerd.toolkit import parse_size
from routerd_ollama.schemas import Details, Show, TagEntry


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def capabilities_of(show: Show | None) -> Capabilities:
    """From the ``capabilities`` of ``/api/show``. Servers older than Ollama 0.6.4 list none; then
    the same signs Ollama itself reads decide: a ``<arch>.pooling_type`` key makes an embedding
    model, a vision projector (``projector_info``, a ``clip`` or ``mllama`` family, a
    ``<arch>.vision.*`` key) a vision model, and a template that uses ``.Tools`` a tool caller.
    What no sign settles is left to the name, except tools: Ollama refuses them (400) to a model
    whose template lacks them, so without a template none are claimed."""
    if show is None:
        return Capabilities(tools=False)
    if show.capabilities:
        listed = show.capabilities
        chat = "completion" in listed
        return Capabilities(
            chat=chat,
            vision="vision" in listed,
            tools="tools" in listed,
            embeddings="embedding" in listed,
            json_output=chat,
        )
    info = show.model_info or {}
    architecture = info.get("general.architecture")
    known = isinstance(architecture, str)
    embeddings = f"{architecture}.pooling_type" in info if known else None
    families = (show.details.families if show.details else None) or []
    vision = bool(show.projector_info) or any(f in ("clip", "mllama") for f in families)
    vision = vision or (known and any(str(key).startswith(f"{architecture}.vision.") for key in info))
    return Capabilities(
        chat=None if embeddings is None else not embeddings,
        vision=True if vision else None,
        tools=".Tools" in show.template if show.template else False,
        embeddings=embeddings,
    )


def describe(name: str, backend: str, tag: TagEntry, show: Show | None) -> ModelInfo:
    """`name` is the catalog's name for the model (the backend's prefix and Ollama's name)."""
    info = (show.model_info if show else None) or {}
    details = (show.details if show else None) or tag.details or Details()
    parameters = _int(info.get("general.parameter_count")) or parse_size(details.parameter_size)
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
        capabilities=capabilities_of(show),
        size_bytes=_int(tag.size),
        metadata=metadata,
    )

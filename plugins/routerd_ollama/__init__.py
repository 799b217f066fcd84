"""Builtin plugin ``ollama``: an Ollama server, through its native REST API (not its OpenAI
layer), so the catalog gets each model's real parameter count, context window, capabilities
and size (``/api/tags`` and ``/api/show``), and loaded models can be unloaded (``/api/ps``,
``keep_alive: 0``).

``ROUTER_OLLAMA_URL`` (or ``url``) names the server; without it the plugin registers nothing.
With ``vram_budget`` or ``max_loaded`` set, least recently used models are unloaded before
another is loaded, never ``routing.pinned_model``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

import routerd
from routerd_ollama.backend import OllamaBackend

__all__ = ["OllamaBackend", "Settings", "register_backends"]


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Annotated[
        str | None,
        msgspec.Meta(description="Base URL of the Ollama server, e.g. `http://localhost:11434`; unset: off."),
    ] = None
    keep_alive: Annotated[
        str | None,
        msgspec.Meta(
            description="How long Ollama keeps a model loaded after a request (`10m`, `1h`; `-1`: for ever), "
            "sent with every request; unset: Ollama's default."
        ),
    ] = None
    vram_budget: Annotated[
        Annotated[int, msgspec.Meta(ge=0)] | None,
        msgspec.Meta(
            description="Bytes of GPU memory the loaded models may take; least recently used ones are unloaded "
            "to make room. Unset: Ollama manages its memory alone."
        ),
    ] = None
    max_loaded: Annotated[
        Annotated[int, msgspec.Meta(ge=1)] | None,
        msgspec.Meta(
            description="Most models loaded at once (least recently used ones are unloaded); unset: no limit."
        ),
    ] = None
    model_prefix: Annotated[
        str, msgspec.Meta(description="Prefix of this server's model names in the catalog, e.g. `ollama/`.")
    ] = ""


@routerd.hookimpl
def register_backends(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    if not settings.url:
        context.log.info("no url (ROUTER_OLLAMA_URL): no Ollama backend")
        return
    if not settings.url.startswith(("http://", "https://")):
        raise context.config_error("url", f"expected an http:// or https:// URL, got {settings.url!r}")
    register(
        OllamaBackend(
            context.name,
            settings.url,
            keep_alive=settings.keep_alive,
            vram_budget=settings.vram_budget,
            max_loaded=settings.max_loaded,
            model_prefix=settings.model_prefix,
            pinned=context.config.routing.pinned_model,
            connect_timeout=context.config.dispatch.connect_timeout,
            log=context.log,
        )
    )

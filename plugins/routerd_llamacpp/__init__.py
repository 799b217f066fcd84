"""Builtin plugin ``llamacpp``: llama.cpp servers (``llama-server``, ``llama_cpp.server``) and
llama-swap in front of them, through their OpenAI-compatible endpoints (no key).

``ROUTER_LLAMA_CPP_URL`` (or ``url``) names one server; ``urls`` adds more, each its own backend
(``llamacpp``, ``llamacpp-2``, ...). ``llama-server`` reports each model's parameter count, size
and training context in ``GET /v1/models`` (``meta``), and recent builds what it reads
(``architecture.input_modalities``: vision); they are used when present, and the catalog fills in
the rest from the model's name.

Requests are rewritten for llama.cpp (`routerd.toolkit.LLAMA_CPP`), which both servers take:
``max_completion_tokens`` is sent as ``max_tokens`` (the smaller of the two when both are given), a ``json_schema``
response format as ``{"type": "json_object", "schema": ...}`` (a grammar constrains the answer), and
``repetition_penalty`` as ``repeat_penalty``; ``n`` > 1 is ``n`` requests, since neither server answers more than
one choice.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

import routerd
from routerd.toolkit import LLAMA_CPP, OpenAICompatibleBackend, raise_for_status, transport_error


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Annotated[str | None, msgspec.Meta(description="Base URL of a llama.cpp server, e.g. `http://host:8080`.")] = (
        None
    )
    urls: Annotated[list[str], msgspec.Meta(description="More llama.cpp servers, one backend each.")] = []
    llama_swap: Annotated[
        bool, msgspec.Meta(description="The servers are llama-swap: unloading calls its `/unload`.")
    ] = False


def describe(info: routerd.ModelInfo, entry: dict[str, Any]) -> routerd.ModelInfo:
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    return msgspec.structs.replace(
        info,
        parameters=meta.get("n_params") or info.parameters,
        size_bytes=meta.get("size") or info.size_bytes,
        context_window=meta.get("n_ctx") or meta.get("n_ctx_train") or info.context_window,
    )


class LlamaCppBackend(OpenAICompatibleBackend):
    def __init__(self, name: str, url: str, *, llama_swap: bool, connect_timeout: float) -> None:
        base = url.rstrip("/")
        super().__init__(
            name,
            base if base.endswith("/v1") else base + "/v1",
            connect_timeout=connect_timeout,
            describe=describe,
            dialect=LLAMA_CPP,
        )
        self.llama_swap = llama_swap

    async def unload(self, model: str) -> None:
        """llama-swap unloads its running models on ``GET /unload``; a plain server cannot."""
        if not self.llama_swap:
            return
        try:
            async with self.session.get("../unload") as response:
                await raise_for_status(self.name, model, response)
        except Exception as exc:
            raise transport_error(self.name, exc) from exc


@routerd.hookimpl
def register_backends(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    urls = [u for u in [settings.url, *settings.urls] if u]
    if not urls:
        context.log.info("no url (ROUTER_LLAMA_CPP_URL): no llama.cpp backend")
    for index, url in enumerate(urls, start=1):
        name = context.name if index == 1 else f"{context.name}-{index}"
        register(
            LlamaCppBackend(
                name, url, llama_swap=settings.llama_swap, connect_timeout=context.config.dispatch.connect_timeout
            )
        )

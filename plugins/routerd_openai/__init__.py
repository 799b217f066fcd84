"""Builtin plugin ``openai``: any OpenAI-compatible API (OpenAI, vLLM, LM Studio, OpenRouter, ...).

Configured by ``[plugins.openai]`` or ``ROUTER_OPENAI_BASE_URL``, ``ROUTER_OPENAI_API_KEY`` and
``ROUTER_MODEL_PREFIX``. Without a base URL it registers nothing.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

import routerd
from routerd.toolkit import OpenAICompatibleBackend


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    base_url: Annotated[
        str | None, msgspec.Meta(description="The API's base URL, e.g. `https://api.openai.com/v1`; unset: off.")
    ] = None
    api_key: Annotated[str | None, msgspec.Meta(description="Bearer key for the API.")] = None
    model_prefix: Annotated[
        str, msgspec.Meta(description="Prefix of this API's model names in the catalog, e.g. `openai/`.")
    ] = ""
    tools: Annotated[
        bool | None,
        msgspec.Meta(
            description="Whether the API's chat models can call tools; unset: as its model list says "
            "(`supported_parameters`), else by name (chat models can)."
        ),
    ] = None


@routerd.hookimpl
def register_backends(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    if not settings.base_url:
        context.log.info("no base_url (ROUTER_OPENAI_BASE_URL): no OpenAI-compatible backend")
        return
    register(
        OpenAICompatibleBackend(
            context.name,
            settings.base_url,
            api_key=settings.api_key,
            model_prefix=settings.model_prefix,
            connect_timeout=context.config.dispatch.connect_timeout,
            tools=settings.tools,
        )
    )

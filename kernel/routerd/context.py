"""What a plugin is given when its hooks are called."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routerd.errors import ConfigError

if TYPE_CHECKING:
    from routerd.config import Settings
    from routerd.db.database import Database
    from routerd.profiling.index import ProfileIndex
    from routerd.routing.embedding import GatewayEmbedder
    from routerd.served_models import ServedModels


@dataclass(frozen=True)
class PluginContext:
    """Passed to every hook of one plugin.

    `settings` is the plugin's ``[plugins.<name>]`` table validated into the plugin's own
    ``Settings`` Struct (None when the plugin declares none); `config` is the gateway's whole
    configuration, read-only; `data_dir` is a folder the plugin may write to; `log` is the
    plugin's logger; `database` is the gateway's database (usable once the gateway has started,
    from the registered objects' ``start`` and request methods); `models` calls the models the
    gateway serves by catalog name, without routing (`routerd.ServedModels`; usable once the
    gateway has started); `profiles` is the gateway's runtime profiles
    (`routerd.profiling.ProfileIndex`): each model's latest profiled quality and speed per
    category, in memory, for scorers to read on the request path; `embedder` embeds prompts
    with the model ``routing.embed_model`` names, through `models`
    (`routerd.routing.embedding.GatewayEmbedder`), None when that setting is empty. Plugins
    never read environment variables themselves.
    """

    name: str
    settings: Any
    config: Settings
    data_dir: Path
    log: logging.Logger
    database: Database
    models: ServedModels | None = None  # always set by the gateway
    profiles: ProfileIndex | None = None  # always set by the gateway
    embedder: GatewayEmbedder | None = None  # set when routing.embed_model names a model

    def config_error(self, key: str, reason: str) -> ConfigError:
        """The error for a bad value of this plugin's setting `key`, found by the plugin itself
        (a check a type cannot express); it names ``plugins.<name>.<key>`` and where the value
        came from, like the kernel's own errors. Raise it from a hook."""
        full = f"plugins.{self.name}.{key}"
        source = self.config.sources.get(full)
        return ConfigError(f"{full} (from {source})" if source else full, reason)

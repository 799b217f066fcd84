"""Where the catalog's facts about a model come from, in one place.

Capabilities (chat, vision, tools, embeddings, JSON output), context window and parameter count
come from three sources, later ones winning:

1. the backend's own metadata: what `Backend.list_models` set (None where it does not know);
2. the model's name (`routerd.naming`), for whatever the metadata left unknown;
3. the configuration's ``[models."<name or glob>"]`` overrides, over both.

Globs (``fnmatch``, case-sensitive) apply in the order the configuration lists them, then an
exact name, so the most specific table has the last word. A pattern matches a model's name or
``<backend>/<name>``. Each value's source is kept in ``metadata["origins"]`` (``"metadata"``,
``"name"`` or ``"config"``), and the patterns that applied in ``metadata["overrides"]``, so
``GET /admin/models`` can show why a model is described as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

import msgspec

from routerd.config import ModelOverride
from routerd.naming import capabilities_from_name, context_window_from_name, parameters_from_name
from routerd.schemas.catalog import Capabilities, ModelInfo

CAPABILITIES = tuple(Capabilities.__struct_fields__)
SIZES = ("parameters", "context_window")
_GLOB = frozenset("*?[")


class ModelFacts:
    """Completes what backends report about their models (see the module's docstring)."""

    def __init__(self, overrides: Mapping[str, ModelOverride] | None = None) -> None:
        overrides = dict(overrides or {})
        self._globs = [(p, o) for p, o in overrides.items() if _GLOB & set(p)]
        self._exact = {p: o for p, o in overrides.items() if not _GLOB & set(p)}

    def overrides_for(self, info: ModelInfo) -> list[tuple[str, ModelOverride]]:
        """The override tables that apply to `info`, in the order they apply."""
        names = (info.name, f"{info.backend}/{info.name}")
        found = [(p, o) for p, o in self._globs if any(fnmatchcase(n, p) for n in names)]
        found += [(n, self._exact[n]) for n in names if n in self._exact]
        return found

    def describe(self, info: ModelInfo) -> ModelInfo:
        """`info` with every capability set and each value's origin recorded."""
        origins: dict[str, str] = {}
        values: dict[str, Any] = {}
        by_name = capabilities_from_name(info.name)
        for field in CAPABILITIES:
            reported = getattr(info.capabilities, field)
            values[field] = reported if reported is not None else getattr(by_name, field)
            origins[field] = "metadata" if reported is not None else "name"
        named = {"parameters": parameters_from_name, "context_window": context_window_from_name}
        for field in SIZES:
            reported = getattr(info, field)
            values[field] = reported if reported is not None else named[field](info.name)
            if values[field] is not None:
                origins[field] = "metadata" if reported is not None else "name"
        applied = self.overrides_for(info)
        for _, override in applied:
            for field in (*CAPABILITIES, *SIZES):
                value = getattr(override, field)
                if value is not None:
                    values[field] = value
                    origins[field] = "config"
        metadata = {**info.metadata, "origins": origins}
        if applied:
            metadata["overrides"] = [pattern for pattern, _ in applied]
        return msgspec.structs.replace(
            info,
            capabilities=Capabilities(**{field: values[field] for field in CAPABILITIES}),
            parameters=values["parameters"],
            context_window=values["context_window"],
            metadata=metadata,
        )

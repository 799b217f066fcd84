"""The kernel's admin endpoints; every route here needs an admin principal. Plugins add their own under ``/admin``
(`register_routes`: ``/admin/profiles`` from ``profiling``, ``/admin/benchmarks`` from ``benchmarks``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, get
from litestar.params import FromPath

from routerd.auth import require_admin
from routerd.errors import NotFound


@get("/plugins")
async def list_plugins(request: Request) -> list[dict[str, Any]]:
    """Each plugin: name, version, enabled or not, hooks implemented, objects registered."""
    return request.app.state.gateway.plugins.describe()


@get("/benchmarks/status")
async def benchmark_status(request: Request) -> dict[str, Any]:
    """Each benchmark source's last sync: when, ok or not, records stored, errors and refusals."""
    return {"sources": await request.app.state.gateway.benchmarks.statuses()}


@get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """Every catalog model with its size, context window and capabilities, and where each value came
    from (``origins``: the backend's metadata, the name, or the configuration's overrides)."""
    catalog = request.app.state.gateway.catalog
    return {"models": [describe_entry(entry) for entry in sorted(catalog, key=lambda e: e.id)]}


def describe_entry(entry: Any) -> dict[str, Any]:
    info = entry.info
    return {
        "id": entry.id,
        "name": info.name,
        "backend": info.backend,
        "parameters": info.parameters,
        "context_window": info.context_window,
        "size_bytes": info.size_bytes,
        "capabilities": msgspec.to_builtins(info.capabilities),
        "origins": info.metadata.get("origins", {}),
        "overrides": info.metadata.get("overrides", []),
    }


@get("/decisions/{decision_id:str}")
async def explain_decision(request: Request, decision_id: FromPath[str]) -> dict[str, Any]:
    """A routing decision: the prompt's features, every candidate with every scorer's contribution
    and reason, the models left out and why, and how the request ended."""
    found = await request.app.state.gateway.decisions.get(decision_id)
    if found is None:
        raise NotFound(f"no routing decision {decision_id!r}", code="decision_not_found")
    return found


router = Router(
    path="/admin",
    route_handlers=[
        list_plugins,
        benchmark_status,
        list_models,
        explain_decision,
    ],
    guards=[require_admin],
)

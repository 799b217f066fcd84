"""Admin endpoints; every route here needs an admin principal."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, get

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


@get("/benchmarks")
async def list_benchmarks(request: Request) -> dict[str, Any]:
    """Merged benchmark figures per catalog model (or for ``?model=``, any name), with the published name each
    source was matched under and the source of every value."""
    gateway = request.app.state.gateway
    index = await gateway.benchmarks.index()
    model = request.query_params.get("model")
    if model is not None:
        entry = gateway.catalog.get(model)
        return {"sources": index.order, "models": [index.lookup(model, entry.info.parameters if entry else None)]}
    models = [index.lookup(entry.id, entry.info.parameters) for entry in sorted(gateway.catalog, key=lambda e: e.id)]
    return {"sources": index.order, "models": models}


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
async def explain_decision(request: Request, decision_id: str) -> dict[str, Any]:
    """A routing decision: the prompt's features, every candidate with every scorer's contribution
    and reason, the models left out and why, and how the request ended."""
    found = await request.app.state.gateway.decisions.get(decision_id)
    if found is None:
        raise NotFound(f"no routing decision {decision_id!r}", code="decision_not_found")
    return found


router = Router(
    path="/admin",
    route_handlers=[list_plugins, benchmark_status, list_benchmarks, list_models, explain_decision],
    guards=[require_admin],
)

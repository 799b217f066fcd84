"""Admin endpoints; every route here needs an admin principal."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, get, post
from litestar.params import FromPath

from routerd.auth import require_admin
from routerd.errors import InvalidRequest, NotFound
from routerd.profiling import report


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
async def explain_decision(request: Request, decision_id: FromPath[str]) -> dict[str, Any]:
    """A routing decision: the prompt's features, every candidate with every scorer's contribution
    and reason, the models left out and why, and how the request ended."""
    found = await request.app.state.gateway.decisions.get(decision_id)
    if found is None:
        raise NotFound(f"no routing decision {decision_id!r}", code="decision_not_found")
    return found


@get("/profiles")
async def list_profiles(request: Request) -> dict[str, Any]:
    """Every profiled model's latest profile (per-category quality and speed, suite version, date, judged and
    unjudged counts), the models due for profiling, and the run in progress on this replica."""
    gateway = request.app.state.gateway
    profiler = gateway.profiling.profiler
    runs = await profiler.repository.latest()
    models = [
        report.run_view(r, model=report.public_id(gateway.catalog, r.backend, r.name), suite=profiler.suite)
        for r in runs
    ]
    enabled = gateway.settings.profiling.enabled
    due = [e.id for e in await profiler.due(profiler.chat_models()) if not profiler.skipped(e)] if enabled else []
    return {
        "suite": report.suite_view(profiler.suite),
        "enabled": enabled,
        "running": profiler.progress.describe() if profiler.progress is not None else None,
        "due": due,
        "models": sorted(models, key=lambda m: m["model"]),
    }


@get("/profiles/{model:path}")
async def model_profiles(request: Request, model: FromPath[str]) -> dict[str, Any]:
    """One model's latest profile with every prompt's score, verdict and timings, and its history (newest first)."""
    gateway = request.app.state.gateway
    profiler = gateway.profiling.profiler
    backend, name = await report.resolve(gateway.catalog, profiler.repository, model.lstrip("/"))
    runs = await profiler.repository.history(backend, name)
    public = report.public_id(gateway.catalog, backend, name)
    if not runs:
        raise NotFound(f"the model {public!r} has no profile yet", code="profile_not_found")
    return {
        "model": public,
        "backend": backend,
        "name": name,
        "latest": report.run_view(runs[0], model=public, suite=profiler.suite, prompts=True),
        "history": [report.run_view(run, model=public, suite=profiler.suite) for run in runs],
    }


@post("/reprofile", status_code=202)
async def reprofile(request: Request) -> dict[str, Any]:
    """Profile again in the background: the models due (``?force=true``: every chat model, or ``?model=``)."""
    flag = request.query_params.get("force", "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise InvalidRequest("force must be true or false", param="force")
    force = flag in ("true", "1")
    job = request.app.state.gateway.profiling
    scheduled = job.request(model=request.query_params.get("model"), force=force)
    return {"scheduled": scheduled, "force": force, "running": job.running}


router = Router(
    path="/admin",
    route_handlers=[
        list_plugins,
        benchmark_status,
        list_benchmarks,
        list_models,
        explain_decision,
        list_profiles,
        model_profiles,
        reprofile,
    ],
    guards=[require_admin],
)

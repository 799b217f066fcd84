"""The admin API of profiling (under ``/admin``, so the kernel puts them behind its admin guard):

- ``GET /admin/profiles``: the suite, whether background profiling is on, the run in progress on this replica,
  the models due, and every profiled model's latest profile;
- ``GET /admin/profiles/{model}``: one model's latest profile with every prompt's result, and its history;
- ``POST /admin/reprofile``: a round now (``?force=true``, ``?model=NAME``); 409 when profiling is off.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from routerd import InvalidRequest, NotFound, ProfileStore
from routerd_profiling import report
from routerd_profiling.job import ProfilingJob


def profiling_routes(job: ProfilingJob, store: ProfileStore) -> list[Any]:
    """The route handlers, as closures over the plugin's job (and through it, its profiler)."""
    profiler = job.profiler

    @get("/admin/profiles")
    async def list_profiles() -> dict[str, Any]:
        """Every profiled model's latest profile (per-category quality and speed, suite version, date, judged and
        unjudged counts), the models due for profiling, and the run in progress on this replica."""
        runs = await store.latest()
        models = [report.run_view(r, model=profiler.public_id(r.backend, r.name), suite=profiler.suite) for r in runs]
        enabled = job.settings.enabled
        due = [m.key for m in await profiler.due(profiler.chat_models()) if not profiler.skipped(m)] if enabled else []
        return {
            "suite": report.suite_view(profiler.suite),
            "enabled": enabled,
            "running": profiler.progress.describe() if profiler.progress is not None else None,
            "due": due,
            "models": sorted(models, key=lambda m: m["model"]),
        }

    @get("/admin/profiles/{model:path}")
    async def model_profiles(model: FromPath[str]) -> dict[str, Any]:
        """One model's latest profile with every prompt's score, verdict and timings, and its history (newest
        first). `model` is the catalog id, ``backend/name``, or a name only one stored profile has."""
        backend, name = await report.resolve(profiler.models, store, model.lstrip("/"))
        runs = await store.history(backend, name)
        public = profiler.public_id(backend, name)
        if not runs:
            raise NotFound(f"the model {public!r} has no profile yet", code="profile_not_found")
        return {
            "model": public,
            "backend": backend,
            "name": name,
            "latest": report.run_view(runs[0], model=public, suite=profiler.suite, prompts=True),
            "history": [report.run_view(run, model=public, suite=profiler.suite) for run in runs],
        }

    @post("/admin/reprofile", status_code=202)
    async def reprofile(request: Request) -> dict[str, Any]:
        """Profile again in the background: the models due (``?force=true``: every chat model, or ``?model=``)."""
        flag = request.query_params.get("force", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            raise InvalidRequest("force must be true or false", param="force")
        force = flag in ("true", "1")
        scheduled = job.request(model=request.query_params.get("model"), force=force)
        return {"scheduled": scheduled, "force": force, "running": job.running}

    return [list_profiles, model_profiles, reprofile]

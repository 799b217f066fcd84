"""Liveness and readiness, for load balancers and Kubernetes probes."""

from __future__ import annotations

from litestar import Request, Response, get

from routerd.api.errors import error_response


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Alive: the process answers. Says nothing about the database or plugins."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready: the database answers and every plugin has started; 503 otherwise."""
    checks = await request.app.state.gateway.readiness()
    if all(checks.values()):
        return Response({"status": "ready", "checks": checks})
    failing = ", ".join(name for name, ok in checks.items() if not ok)
    response = error_response(503, f"not ready: {failing}", "server_error", code="not_ready")
    return response


ROUTES = [healthz, readyz]

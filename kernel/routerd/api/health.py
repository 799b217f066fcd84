"""Liveness and readiness, for load balancers and Kubernetes probes."""

from __future__ import annotations

from litestar import Request, Response, get

from routerd.api.errors import error_response

# What a failing check means, for the 503's message.
_FAILING = {
    "models": "models (no backend serves a chat model yet; server.require_chat_model = false reports ready anyway)",
}


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Alive: the process answers. Says nothing about the database or plugins."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready: the database answers, every plugin has started and (``server.require_chat_model``) a backend serves
    a chat model; 503 otherwise, in the OpenAI error shape, its message naming the failing checks."""
    checks = await request.app.state.gateway.readiness()
    if all(checks.values()):
        return Response({"status": "ready", "checks": checks})
    failing = ", ".join(_FAILING.get(name, name) for name, ok in checks.items() if not ok)
    return error_response(503, f"not ready: {failing}", "server_error", code="not_ready")


ROUTES = [healthz, readyz]

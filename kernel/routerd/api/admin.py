"""Admin endpoints; every route here needs an admin principal."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get

from routerd.auth import require_admin


@get("/plugins")
async def list_plugins(request: Request) -> list[dict[str, Any]]:
    """Each plugin: name, version, enabled or not, hooks implemented, objects registered."""
    return request.app.state.gateway.plugins.describe()


router = Router(path="/admin", route_handlers=[list_plugins], guards=[require_admin])

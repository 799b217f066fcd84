"""Authentication and authorisation. Who the caller is comes from the `Authenticator` plugins;
what the caller may do is the kernel's rule: admin routes need an admin principal."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from routerd.errors import AuthenticationFailed, PermissionDenied
from routerd.plugins import Registry
from routerd.schemas.catalog import ANONYMOUS, AuthRequest, Principal


class Authentication:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def principal(self, connection: ASGIConnection) -> Principal:
        """The caller's principal: the first authenticator with an opinion decides."""
        cached = connection.scope.get("state", {}).get("routerd_principal")
        if cached is not None:
            return cached
        request = AuthRequest(
            method=connection.scope.get("method", "GET"),
            path=connection.url.path,
            headers={k.lower(): v for k, v in connection.headers.items()},
            client_host=connection.client.host if connection.client else None,
        )
        principal = ANONYMOUS
        for authenticator in self.registry.authenticators.values():
            found = await authenticator.authenticate(request)
            if found is not None:
                principal = found
                break
        connection.scope.setdefault("state", {})["routerd_principal"] = principal
        return principal


async def require_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Litestar guard for ``/admin``: 401 without credentials, 403 with non-admin ones."""
    gateway = connection.app.state.gateway
    principal = await gateway.auth.principal(connection)
    if principal.is_admin:
        return
    if principal.kind == "anonymous":
        raise AuthenticationFailed("admin endpoints need the admin API key (Authorization: Bearer ...)")
    raise PermissionDenied("this API key may not use admin endpoints")

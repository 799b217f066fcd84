"""Authentication and authorisation. Who the caller is comes from the `Authenticator` plugins;
what the caller may do is the kernel's rule: admin routes need an admin principal."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from routerd.errors import AuthenticationFailed, PermissionDenied
from routerd.plugins import Registry
from routerd.schemas.catalog import ANONYMOUS, AuthRequest, Principal


class Authentication:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def principal(self, connection: ASGIConnection) -> Principal:
        """The caller's principal: the first authenticator with an opinion decides."""
        return await self.principal_of(connection.scope)

    async def principal_of(self, scope: Scope) -> Principal:
        """`principal` from the ASGI scope itself (the request path's hot loop: no connection object)."""
        state = scope.setdefault("state", {})
        cached = state.get("routerd_principal")
        if cached is not None:
            return cached
        principal = ANONYMOUS
        authenticators = self.registry.authenticators
        if authenticators:
            request = auth_request(scope)
            for authenticator in authenticators.values():
                found = await authenticator.authenticate(request)
                if found is not None:
                    principal = found
                    break
        state["routerd_principal"] = principal
        return principal


def headers_of(scope: Scope) -> dict[str, str]:
    """A request's headers from its scope: names lower-cased (the last of a repeated header wins),
    values decoded as latin-1 as HTTP/1.1 defines them."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}


def auth_request(scope: Scope) -> AuthRequest:
    """What an authenticator sees, straight from the scope."""
    client = scope.get("client")
    return AuthRequest(
        method=scope.get("method", "GET"),
        path=scope.get("root_path", "") + scope["path"],  # as Litestar's `connection.url.path`
        headers=headers_of(scope),
        client_host=client[0] if client else None,
    )


async def require_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Litestar guard for ``/admin``: 401 without credentials, 403 with non-admin ones."""
    gateway = connection.app.state.gateway
    principal = await gateway.auth.principal(connection)
    if principal.is_admin:
        return
    if principal.kind == "anonymous":
        raise AuthenticationFailed("admin endpoints need the admin API key (Authorization: Bearer ...)")
    raise PermissionDenied("this API key may not use admin endpoints")

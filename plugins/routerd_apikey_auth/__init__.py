"""Builtin plugin ``apikey_auth``: the admin API key.

A request that carries the admin key (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``) is
the admin. Without an admin key configured, requests from the loopback interface are the admin
(so a laptop install works out of the box) and a warning says so at start-up; set
``admin_api_key`` (``ROUTER_ADMIN_API_KEY``) on any shared gateway.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Annotated

import msgspec

import routerd
from routerd import AuthRequest, PluginContext, Principal


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    admin_api_key: Annotated[
        str | None, msgspec.Meta(description="The admin API key; unset: loopback clients are admin.")
    ] = None
    loopback_admin: Annotated[
        bool, msgspec.Meta(description="Without an admin key, treat loopback clients as admin.")
    ] = True


def bearer_token(headers: dict[str, str]) -> str | None:
    """The credential of a request: ``Authorization: Bearer X`` or ``X-API-Key: X``."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "127.0.0.1" or host == "::1":  # most local clients: no address parsing per request
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


ADMIN = Principal(kind="admin", subject="admin", is_admin=True)


class AdminKeyAuthenticator:
    name = "admin_key"

    def __init__(self, settings: Settings, log: logging.Logger) -> None:
        self._key = (settings.admin_api_key or "").encode()
        self._loopback_admin = settings.loopback_admin and not self._key
        self._log = log

    async def start(self) -> None:
        if self._loopback_admin:
            self._log.warning(
                "no admin API key set: admin endpoints are open to loopback clients only; "
                "set ROUTER_ADMIN_API_KEY on a shared gateway"
            )
        elif not self._key:
            self._log.warning("no admin API key set and loopback_admin is off: admin endpoints are closed")

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        token = bearer_token(request.headers)
        if self._key and token is not None and hmac.compare_digest(token.encode(), self._key):
            return ADMIN
        if self._loopback_admin and is_loopback(request.client_host):
            return ADMIN
        return None


@routerd.hookimpl
def register_authenticators(register, context: PluginContext) -> None:
    register(AdminKeyAuthenticator(context.settings, context.log))

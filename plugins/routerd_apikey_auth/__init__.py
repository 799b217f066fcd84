"""Builtin plugin ``apikey_auth``: the admin API key.

A request that carries the admin key (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``) is
the admin. Without an admin key configured, requests from the loopback interface are the admin
(so a laptop install works out of the box) and a warning says so at start-up; set
``admin_api_key`` (``ROUTER_ADMIN_API_KEY``) on any shared gateway.

A loopback client is not always the operator: a web page the operator opens can send requests to
the gateway (CSRF: a cross-origin ``text/plain`` POST needs no CORS preflight), and a page whose
name the attacker rebinds to 127.0.0.1 reads the answers (DNS rebinding). So loopback grants admin
only to requests whose ``Host`` names the loopback interface (``localhost``, a loopback address,
the configured ``server.host``; any port) and that no browser marks as cross-origin (an ``Origin``
other than the gateway's own, ``Sec-Fetch-Site`` other than ``same-origin`` or ``none``); such a
request to ``/admin`` gets 403. With an admin key configured, the key is the defence.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Annotated

import msgspec

import routerd
from routerd import AuthRequest, PermissionDenied, PluginContext, Principal


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    admin_api_key: Annotated[
        str | None, msgspec.Meta(description="The admin API key; unset: loopback clients are admin.")
    ] = None
    loopback_admin: Annotated[
        bool,
        msgspec.Meta(
            description="Without an admin key, treat loopback clients as admin: those whose `Host` names the "
            "loopback interface and that no browser marks as cross-origin (`Origin`, `Sec-Fetch-Site`); others "
            "get 403 on `/admin` (DNS rebinding, CSRF)."
        ),
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


# Host values that are no interface's name: a browser sends "0.0.0.0" for pages that target it ("0.0.0.0 day").
_UNSPECIFIED = frozenset({"", "0.0.0.0", "::", "[::]"})


def host_name(host: str) -> str:
    """The name in a ``Host`` header (``name``, ``name:port``, ``[v6]``, ``[v6]:port``), lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def names_loopback(host: str, own: frozenset[str]) -> bool:
    """Whether a ``Host`` header names this machine's loopback interface (or the gateway's configured host)."""
    name = host_name(host)
    if name in _UNSPECIFIED:
        return False
    return name in own or name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def cross_site(headers: dict[str, str], own: frozenset[str]) -> str | None:
    """Why a loopback request is not the operator's own (DNS rebinding, a cross-origin browser request), or
    None. A request without ``Host`` (HTTP/1.0), ``Origin`` and ``Sec-Fetch-Site`` is no browser's."""
    host = headers.get("host")
    if host is not None and not names_loopback(host, own):
        return f"Host {host!r} does not name the loopback interface"
    origin = headers.get("origin")
    own_origins = () if host is None else (f"http://{host}".lower(), f"https://{host}".lower())
    if origin is not None and origin.lower() not in own_origins:
        return f"cross-origin request (Origin {origin!r})"
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"cross-origin request (Sec-Fetch-Site {fetch_site!r})"
    return None


def is_admin_path(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


ADMIN = Principal(kind="admin", subject="admin", is_admin=True)


class AdminKeyAuthenticator:
    name = "admin_key"

    def __init__(self, settings: Settings, log: logging.Logger, server_host: str = "") -> None:
        self._key = (settings.admin_api_key or "").encode()
        self._loopback_admin = settings.loopback_admin and not self._key
        self._own_hosts = frozenset({host_name(server_host)} - _UNSPECIFIED)
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
            refusal = cross_site(request.headers, self._own_hosts)
            if refusal is None:
                return ADMIN
            if is_admin_path(request.path):
                raise PermissionDenied(f"admin endpoints refuse this loopback request: {refusal}")
        return None


@routerd.hookimpl
def register_authenticators(register, context: PluginContext) -> None:
    register(AdminKeyAuthenticator(context.settings, context.log, context.config.server.host))

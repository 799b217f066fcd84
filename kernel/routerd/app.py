"""The Litestar app factory: wires the gateway (settings, database, plugins) to the routes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib.metadata import EntryPoint

from litestar import Litestar, Router
from litestar.handlers import BaseRouteHandler

from routerd.api import admin, feedback, health, openai
from routerd.api.errors import HANDLERS
from routerd.auth import require_admin
from routerd.config import Settings
from routerd.errors import PluginError
from routerd.gateway import Gateway

GC_YOUNG_THRESHOLD = 10_000  # net allocations of tracked objects between young collections (default 700)


def create_app(settings: Settings, entry_points: Iterable[EntryPoint] | None = None) -> Litestar:
    """Build the app. Plugins are loaded here, so bad configuration fails before serving; the
    database and the plugins' objects start with the app's lifespan."""
    gateway = Gateway(settings, entry_points)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        thresholds = gc.get_threshold()
        try:
            await gateway.start()
            # What start-up built lives as long as the app: out of the garbage collector's sight, so
            # that its full collections stay short (tens of ms each otherwise: the p99 under load).
            gc.freeze()
            # Requests in flight hold thousands of young objects, so at the default threshold (700)
            # the collector ran every dozen requests and promoted them, which also made full
            # collections frequent: about a tenth of the CPU per request. Requests make almost no
            # cyclic garbage; collect young objects every GC_YOUNG_THRESHOLD allocations instead.
            gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            await gateway.close()  # also after a failed start: what did start is closed

    app = Litestar(
        route_handlers=[*health.ROUTES, *openai.ROUTES, *feedback.ROUTES, admin.router],
        lifespan=[lifespan],
        exception_handlers=HANDLERS,
        request_max_body_size=settings.server.max_body_bytes,
        openapi_config=None,
        logging_config=None,  # logging is set up by `routerd serve`, not by the app factory
    )
    app.state.gateway = gateway
    add_plugin_routes(app, gateway)
    return app


def _is_admin(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


def add_plugin_routes(app: Litestar, gateway: Gateway) -> None:
    """Mount the routes plugins registered (`register_routes`): those under ``/admin`` behind the admin guard. A
    method and path the app already serves stops start-up, naming the plugin."""
    registry = gateway.plugins.registry
    served = {(route.path, method) for route in app.routes for method in getattr(route, "methods", ())}
    for name, handler in registry.routes.items():
        owner = registry.owner[("register_routes", name)]
        if isinstance(handler, Router):
            pairs = {(route.path, method) for route in handler.routes for method in getattr(route, "methods", ())}
            paths = {path for path, _ in pairs}
        else:
            assert isinstance(handler, BaseRouteHandler)
            methods = getattr(handler, "http_methods", None) or {"GET"}
            paths = {"/" + path.strip("/") for path in handler.paths}
            pairs = {(path, method) for path in paths for method in methods}
        taken = sorted(f"{method} {path}" for path, method in pairs & served)
        if taken:
            raise PluginError(owner, f"register_routes: {', '.join(taken)} is already served")
        served |= pairs
        if any(_is_admin(path) for path in paths):
            handler = Router(path="/", route_handlers=[handler], guards=[require_admin])
        app.register(handler)

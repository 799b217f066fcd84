"""A second backend plugin (the same hook, another module), for the ROUTER_PROVIDER filter."""

from fixture_plugins.backends import register_backends

__all__ = ["register_backends"]

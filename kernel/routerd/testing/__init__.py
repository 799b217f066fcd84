"""Test support for routerd and its plugins.

Installed with routerd as the pytest plugin ``routerd`` (entry point ``pytest11``), so a plugin's
tests get these fixtures with no conftest: ``routerd_config`` (override it to configure your
plugin), ``routerd_settings``, ``routerd_app``, ``routerd_client`` (a started app behind
Litestar's TestClient), ``routerd_gateway``, ``routerd_admin_headers`` and ``fake_backend``.
See docs/plugins.md.
"""

from routerd.testing.factories import TEST_ADMIN_KEY, build_app, make_settings
from routerd.testing.fake_backend import FAKE_PLUGIN, FakeBackend

__all__ = ["FAKE_PLUGIN", "TEST_ADMIN_KEY", "FakeBackend", "build_app", "make_settings"]

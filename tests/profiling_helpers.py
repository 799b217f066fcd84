"""Helpers of the profiling tests: waiting for profiles through the admin API, as a user would, and the
``profiling`` plugin's background job in an app (`profiling_job`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from routerd.testing import TEST_ADMIN_KEY

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
SHORT_SUITE = Path(__file__).parent / "data" / "short_suite.toml"
CATEGORIES = {"math", "reasoning", "coding", "creativity", "general"}


def profiling_job(app: Any) -> Any:
    """The background profiling job the ``profiling`` plugin registered in `app` (its `profiler`, `rounds`)."""
    return app.state.gateway.plugins.registry.jobs["profiling"]


def wait_for(check: Callable[[], Any], timeout: float = 60.0, step: float = 0.1) -> Any:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s (last: {found!r})")
        time.sleep(step)


def profiles(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/admin/profiles", headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def history(base: str, model: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/admin/profiles/{model}", headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_profiled(base: str, models: set[str], timeout: float = 60.0) -> dict[str, Any]:
    """Wait until every model in `models` has a current profile and no run is in progress."""

    def done() -> dict[str, Any] | None:
        found = profiles(base)
        current = {m["model"] for m in found["models"] if m["current"]}
        return found if models <= current and found["running"] is None else None

    return wait_for(done, timeout)


def runs_of(base: str, model: str) -> int:
    response = httpx.get(f"{base}/admin/profiles/{model}", headers=ADMIN, timeout=30)
    return len(response.json()["history"]) if response.status_code == 200 else 0

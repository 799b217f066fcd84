"""The garbage collector as routerd's app runs it, for the benchmarks that time code in their own process.

In production (`routerd.app`, the app's lifespan), once the gateway has started: ``gc.freeze()`` (what start-up
built is out of the collector's sight), then ``gc.set_threshold(GC_YOUNG_THRESHOLD, *the other two)``; the
collector otherwise runs as usual. No benchmark here disables it around timed code: a collection that falls in a
timed call is part of what a request pays.

- Benchmarks with an in-process gateway (bench/routing_gateway.py) run the app's own lifespan (`create_app`, then
  ``app.lifespan()``), so they get exactly what the app does, from the app.
- The others (upstream_clients.py, profile_scorers.py) call `as_in_production()` once their setup is done; it takes
  the threshold from `routerd.app.GC_YOUNG_THRESHOLD`.
- `describe()` is the line each benchmark prints beside its figures, so that a reader sees how it was collected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from routerd.app import GC_YOUNG_THRESHOLD


@contextmanager
def as_in_production() -> Iterator[None]:
    """Freeze what exists now and set the app's young threshold, as the app's lifespan does after start-up; undone
    on exit."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def is_as_in_production() -> bool:
    """The collector is on, with the app's young threshold and something frozen."""
    return gc.isenabled() and gc.get_threshold()[0] == GC_YOUNG_THRESHOLD and gc.get_freeze_count() > 0


def describe() -> str:
    """``garbage collector: on, thresholds (10000, 10, 10) as routerd.app sets them, 412,331 objects frozen``."""
    state = "on" if gc.isenabled() else "OFF"
    thresholds = gc.get_threshold()
    origin = "as routerd.app sets them" if thresholds[0] == GC_YOUNG_THRESHOLD else "NOT the app's"
    return f"garbage collector: {state}, thresholds {thresholds} {origin}, {gc.get_freeze_count():,} objects frozen"

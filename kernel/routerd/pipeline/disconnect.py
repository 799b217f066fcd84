"""A client that leaves while its request waits for a model: the wait is cancelled where it is (the upstream
request closes with it, and no model is tried after it).

`while_connected(receive, work)` awaits `work` in the caller's task. If it is not done within `WATCH_AFTER`
seconds, a watcher task starts waiting on the ASGI ``receive`` for ``http.disconnect`` (the body has been read:
nothing else comes before it); when the client goes, the watcher cancels the caller's task, and `while_connected`
raises `ClientGone` in place of the cancellation. A request answered sooner costs a timer, not a task (most
requests to a fast model); a client that leaves sooner is noticed at `WATCH_AFTER`. The wait itself stays in the
caller's task, so a model's answer costs no hand-over between tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from litestar.types import Receive

T = TypeVar("T")
# Seconds a request waits for its model before its connection is watched.
WATCH_AFTER = 0.05


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


class _Watch:
    __slots__ = ("done", "gone", "receive", "task", "watcher")

    def __init__(self, task: asyncio.Task, receive: Receive) -> None:
        self.task = task
        self.receive = receive
        self.gone = False  # the client went away, and the task was cancelled for it
        self.done = False  # the work ended first: a disconnect now is no longer this watch's business
        self.watcher: asyncio.Task | None = None

    def start(self) -> None:
        if not self.done:
            self.watcher = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                if not self.done:
                    self.gone = True
                    self.task.cancel()
                return

    def stop(self) -> None:
        self.done = True
        if self.watcher is not None:
            self.watcher.cancel()


async def while_connected(receive: Receive, work: Awaitable[T]) -> T:
    """`work`'s result, or `ClientGone` as soon as the client disconnects (`work` is then cancelled)."""
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()
    watch = _Watch(task, receive)
    timer = asyncio.get_running_loop().call_later(WATCH_AFTER, watch.start)
    try:
        result = await work
    except BaseException:  # cancelled for the client's sake (or failed as it was being cancelled)
        if watch.gone and task.uncancel() <= cancelling:
            raise ClientGone from None
        raise
    finally:
        timer.cancel()
        watch.stop()
    return result

"""Live client traffic, for background work that must give way to it (``context.traffic``).

The gateway counts the client requests it is answering: ``POST /v1/chat/completions`` (a stream until its last
event is sent or the client goes away) and ``POST /v1/embeddings``. Background work that competes with clients for
the same models (profiling sends every model a suite of prompts) reads the count to give way to them:

- `busy`: a client request is in flight now;
- ``await traffic.quiet(seconds)``: returns once no client request has been in flight for `seconds` (at once
  when the gateway has been idle that long, or has served none yet);
- ``async with traffic.yielding():`` runs a block that client requests pre-empt: the moment one starts, the
  block is cancelled where it waits (an upstream stream it had open is closed, which stops the model
  generating), and `Preempted` is raised from the ``async with``. The work is to be done again, after `quiet`.
  A block entered while a client request is in flight is not run at all (`Preempted` at once).

Only this replica's client requests count; calls plugins make through ``context.models`` do not. On the request
path this costs an integer increment and decrement, and nothing more while no block is yielding.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from routerd.errors import RouterdError


class Preempted(RouterdError):
    """Raised from ``async with traffic.yielding():`` when a client request pre-empted the block (or was in
    flight when it was entered); what the block was doing is abandoned and is to be done again later."""


class Traffic:
    """The client requests in flight in this gateway (see the module's doc)."""

    def __init__(self) -> None:
        self.in_flight = 0  # client requests being answered now
        self.served = 0  # client requests started since the gateway was built
        self.preemptions = 0  # yielding blocks a client request has cancelled
        self._last_ended = -float("inf")  # time.monotonic() when the last client request ended
        self._idle: list[asyncio.Future[None]] = []  # `quiet` callers waiting for no request in flight
        self._yielding: list[_Yielding] = []  # blocks running now that a client request pre-empts

    # -- the request path: a try/finally around each client request ------------------------------------
    def request_started(self) -> None:
        """A client request is being answered: pre-empt every yielding block. Call `request_ended` after."""
        self.in_flight += 1
        self.served += 1
        if self._yielding:
            self._preempt()

    def request_ended(self) -> None:
        """The client request is answered (or failed, or its client went away)."""
        self.in_flight -= 1
        self._last_ended = time.monotonic()
        if not self.in_flight and self._idle:
            for waiter in self._idle:
                if not waiter.done():
                    waiter.set_result(None)
            self._idle.clear()

    # -- background work -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a client request is in flight now."""
        return self.in_flight > 0

    async def quiet(self, seconds: float) -> None:
        """Return once no client request has been in flight for `seconds` (see the module's doc)."""
        loop = asyncio.get_running_loop()
        while True:
            if self.in_flight:
                waiter: asyncio.Future[None] = loop.create_future()
                self._idle.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._idle:
                        self._idle.remove(waiter)
                continue
            remaining = seconds - (time.monotonic() - self._last_ended)
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)

    def yielding(self) -> _Yielding:
        """``async with traffic.yielding():`` a block that client requests pre-empt (see the module's doc)."""
        return _Yielding(self)

    def _preempt(self) -> None:
        for block in self._yielding:
            if not block.preempted:
                block.preempted = True
                self.preemptions += 1
                block.task.cancel("pre-empted by a client request")


class _Yielding:
    """One pre-emptible block, as `asyncio.timeout` is one block under a deadline: a client request cancels the
    task running it, and leaving the block turns that cancellation (and only that one) into `Preempted`."""

    __slots__ = ("_cancelling", "preempted", "task", "traffic")

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.preempted = False
        self._cancelling = 0

    async def __aenter__(self) -> _Yielding:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("traffic.yielding() must be used inside a task")
        if self.traffic.in_flight:
            raise Preempted("a client request is in flight")
        self.task = task
        self._cancelling = task.cancelling()
        self.traffic._yielding.append(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self.traffic._yielding.remove(self)
        if not self.preempted:
            return False
        if self.task.uncancel() > self._cancelling:  # cancelled for another reason too (the gateway stopping)
            return False
        raise Preempted("a client request pre-empted it") from None

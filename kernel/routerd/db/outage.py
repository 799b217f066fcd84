"""Telling a database that is down (or unreachable) from a statement the database refused.

An outage is any error of the connection rather than of the statement: SQLAlchemy's ``OperationalError``,
``InterfaceError`` and ``DisconnectionError``, its pool's ``TimeoutError``, a statement whose connection was
invalidated, asyncpg's connection errors, and an ``OSError`` or ``TimeoutError`` raised while connecting (the
driver's own code, as a refused or timed-out connection to PostgreSQL is). Callers answer 503
(``database_unavailable``) to clients, and the decision log holds its rows and tries again."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import exc as sa

_DRIVER_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


def _asyncpg_outages() -> tuple[type[BaseException], ...]:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return ()
    # connection errors (08xxx), a closed connection, the server shutting down or refusing connections (57Pxx),
    # a database that is not there (renamed or dropped while the gateway runs)
    return (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.OperatorInterventionError,
        asyncpg.InvalidCatalogNameError,
    )


_OUTAGES: tuple[type[BaseException], ...] = (
    sa.OperationalError,
    sa.InterfaceError,
    sa.DisconnectionError,
    sa.TimeoutError,
    *_asyncpg_outages(),
)


def _raised_in_driver(tb: TracebackType | None) -> bool:
    """Whether the error passed through the database driver on its way up (some frame is SQLAlchemy's or the
    driver's), as opposed to an error of another part of the request that happens to be an OSError."""
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) says the database cannot be reached, not that it refused
    a statement."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, OSError) and _raised_in_driver(current.__traceback__):
            return True  # ConnectionRefusedError, TimeoutError, socket.gaierror while connecting
        current = current.__cause__ or current.__context__
    return False

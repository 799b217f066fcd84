"""Downloading a benchmark source's publication: a toolkit for benchmark provider plugins.

Each attempt has a total timeout; connection errors, timeouts, 408, 429 and 5xx answers are retried with
exponential backoff (a ``Retry-After`` in seconds is honoured, up to a minute); other 4xx answers are not.
Redirects are followed (GitHub release downloads and Hugging Face ``resolve`` URLs redirect to a CDN). A body
larger than `max_bytes` is refused rather than read into memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp

from routerd.errors import RouterdError

log = logging.getLogger("routerd.benchmarks")

RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "routerd-benchmark-sync"


class SourceUnavailable(RouterdError):
    """A benchmark source could not be downloaded; the message says why (never a credential)."""


class _Retryable(Exception):
    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def new_download_session(timeout: float) -> aiohttp.ClientSession:
    """A session for one sync: `timeout` seconds per request, in all."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout), headers={"User-Agent": USER_AGENT}, raise_for_status=False
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), 60.0) if value else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


async def _attempt(
    session: aiohttp.ClientSession, url: str, params: Mapping[str, str | int] | None, max_bytes: int
) -> bytes:
    async with session.get(url, params=params, allow_redirects=True, max_redirects=10) as response:
        if response.status in RETRIED_STATUSES:
            raise _Retryable(f"answered {response.status}", _retry_after(response.headers.get("Retry-After")))
        if response.status >= 400:
            raise SourceUnavailable(f"{url} answered {response.status}")
        if response.content_length is not None and response.content_length > max_bytes:
            raise SourceUnavailable(f"{url} is {response.content_length} bytes, more than {max_bytes}")
        body = bytearray()
        async for chunk in response.content.iter_chunked(65536):
            body.extend(chunk)
            if len(body) > max_bytes:
                raise SourceUnavailable(f"{url} is larger than {max_bytes} bytes")
        return bytes(body)


async def download(
    session: aiohttp.ClientSession,
    url: str,
    *,
    params: Mapping[str, str | int] | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    max_bytes: int = 64 * 1024 * 1024,
) -> bytes:
    """The body of ``GET url``, after up to `retries` retries; raise `SourceUnavailable` when it cannot be had."""
    for attempt in range(retries + 1):
        try:
            return await _attempt(session, url, params, max_bytes)
        except SourceUnavailable:
            raise
        except (_Retryable, aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) if isinstance(exc, _Retryable) else type(exc).__name__
            if isinstance(exc, aiohttp.TooManyRedirects):
                raise SourceUnavailable(f"{url}: too many redirects") from None
            if attempt == retries:
                raise SourceUnavailable(f"{url} failed after {retries + 1} attempts: {reason}") from None
            wait = getattr(exc, "wait", None)
            wait = backoff * 2**attempt if wait is None else wait
            log.info("benchmark download %s: %s; retrying in %.1f s", url, reason, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")

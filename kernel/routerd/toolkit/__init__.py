"""The public toolkit for plugins that call HTTP services (docs/plugins.md, "Internals for plugins"); the kernel's
request path never imports it.

- `UpstreamSession`: one aiohttp session per backend with separate connect and read timeouts; `sse_events` and
  `ndjson_lines` read streams; `raise_for_status` and `transport_error` map HTTP statuses and transport failures
  to the gateway's error types.
- `OpenAICompatibleBackend`: a complete backend for OpenAI-compatible servers, which the ``openai``,
  ``llamacpp`` and ``local`` plugins configure and the ``judge`` plugin calls.
- `download` and `new_download_session`: fetch a published file with a timeout, retries and redirects (benchmark
  providers); `SourceUnavailable` when it cannot.
- `LoadedModel` and `plan_unloads`: which models to unload to make room for another (``local``, ``ollama``).
- `parse_size`: ``"7.6B"`` -> 7_600_000_000, as model metadata writes sizes.

aiohttp, not httpx, is the client: measured side by side against a local mock (bench/
upstream_clients.py), httpx 0.28 served 4-30x fewer requests per second under concurrency.
"""

from routerd.naming import parse_size
from routerd.toolkit.download import SourceUnavailable, download, new_download_session
from routerd.toolkit.http import UpstreamSession, ndjson_lines, raise_for_status, sse_events, transport_error
from routerd.toolkit.memory import LoadedModel, plan_unloads
from routerd.toolkit.openai_compat import OpenAICompatibleBackend

__all__ = [
    "LoadedModel",
    "OpenAICompatibleBackend",
    "SourceUnavailable",
    "UpstreamSession",
    "download",
    "ndjson_lines",
    "new_download_session",
    "parse_size",
    "plan_unloads",
    "raise_for_status",
    "sse_events",
    "transport_error",
]

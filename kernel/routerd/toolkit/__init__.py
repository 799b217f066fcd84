"""The public toolkit for plugins that call HTTP services (docs/plugins.md, "Internals for plugins"); the kernel's
request path never imports it.

- `UpstreamSession`: one aiohttp session per backend with separate connect and read timeouts; `sse_events` and
  `ndjson_lines` read streams; `raise_for_status` and `transport_error` map HTTP statuses and transport failures
  to the gateway's error types.
- `OpenAICompatibleBackend`: a complete backend for OpenAI-compatible servers, which the ``openai``,
  ``llamacpp`` and ``local`` plugins configure and the ``judge`` plugin calls; a `Dialect` (`OPENAI`, `LLAMA_CPP`,
  `LLAMA_CPP_PYTHON`) says how a server differs from OpenAI's API, and `adapt` rewrites a request for it.
- `chat_choices` and `stream_choices`: ``n`` choices from a server that answers one (``n`` requests, merged).
- `public_message`: what of an upstream's error message may reach clients (no traceback, no file path);
  `is_context_length_refusal`: whether an upstream's error says the prompt does not fit; `output_limit`: a
  request's answer limit (the smaller of ``max_tokens`` and ``max_completion_tokens``); `json_schema_of`: the
  schema of a ``json_schema`` response format.
- `download` and `new_download_session`: fetch a published file with a timeout, retries and redirects (benchmark
  providers); `SourceUnavailable` when it cannot.
- `LoadedModel` and `plan_unloads`: which models to unload to make room for another (``local``, ``ollama``).
- `parse_size`: ``"7.6B"`` -> 7_600_000_000, as model metadata writes sizes.

aiohttp, not httpx, is the client: measured side by side against a local mock (bench/
upstream_clients.py), httpx 0.28 served 4-30x fewer requests per second under concurrency.
"""

from routerd.naming import parse_size
from routerd.toolkit.choices import chat_choices, stream_choices
from routerd.toolkit.dialect import (
    LLAMA_CPP,
    LLAMA_CPP_PYTHON,
    OPENAI,
    Dialect,
    adapt,
    choices_asked,
    json_schema_of,
    output_limit,
)
from routerd.toolkit.download import SourceUnavailable, download, new_download_session
from routerd.toolkit.http import (
    UpstreamSession,
    is_context_length_refusal,
    ndjson_lines,
    public_message,
    raise_for_status,
    sse_events,
    transport_error,
)
from routerd.toolkit.memory import LoadedModel, plan_unloads
from routerd.toolkit.openai_compat import OpenAICompatibleBackend

__all__ = [
    "LLAMA_CPP",
    "LLAMA_CPP_PYTHON",
    "OPENAI",
    "Dialect",
    "LoadedModel",
    "OpenAICompatibleBackend",
    "SourceUnavailable",
    "UpstreamSession",
    "adapt",
    "chat_choices",
    "choices_asked",
    "download",
    "is_context_length_refusal",
    "json_schema_of",
    "ndjson_lines",
    "new_download_session",
    "output_limit",
    "parse_size",
    "plan_unloads",
    "public_message",
    "raise_for_status",
    "sse_events",
    "stream_choices",
    "transport_error",
]

"""Builtin plugin ``lmsys_arena``: LMArena (formerly LMSYS Chatbot Arena) ratings as a benchmark source.

Downloads a published leaderboard table (CSV or JSON, redirects followed; by default the daily text-arena CSV
of github.com/fboulnois/llm-leaderboard-csv) and reports each model's arena rating as ``arena_elo``. The
download has a timeout and is retried on network errors, 429 and 5xx. Switch it off with ``enabled = false``
or leave it out of ``benchmarks.sources`` (``ROUTER_BENCHMARK_SOURCES``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

import routerd
from routerd_lmsys_arena.provider import ArenaLeaderboard, parse_table

__all__ = ["ArenaLeaderboard", "Settings", "parse_table", "register_benchmark_providers"]

DEFAULT_URL = "https://github.com/fboulnois/llm-leaderboard-csv/releases/latest/download/lmarena_text.csv"


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Annotated[
        str, msgspec.Meta(description="The leaderboard table to download (CSV or JSON); redirects are followed.")
    ] = DEFAULT_URL
    format: Annotated[
        Literal["auto", "csv", "json"], msgspec.Meta(description="The table's format; `auto`: JSON if it looks so.")
    ] = "auto"
    model_column: Annotated[
        str | None, msgspec.Meta(description="The column naming the model; unset: `model`, `Model`, `key` or `name`.")
    ] = None
    score_column: Annotated[
        str | None,
        msgspec.Meta(
            description="The column holding the rating; unset: `arena_score`, `arena_elo`, `elo`, `rating`, ..."
        ),
    ] = None
    timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds the download may take in all.")] = 30.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10, description="Retries of a failed download.")] = 3
    retry_backoff: Annotated[
        float, msgspec.Meta(ge=0, description="Seconds before the first retry; doubled for each next one.")
    ] = 1.0
    max_bytes: Annotated[int, msgspec.Meta(ge=1024, description="Largest table accepted, in bytes.")] = 16 * 1024 * 1024


@routerd.hookimpl
def register_benchmark_providers(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    if not settings.url.startswith(("http://", "https://")):
        raise context.config_error("url", f"expected an http:// or https:// URL, got {settings.url!r}")
    register(
        ArenaLeaderboard(
            context.name,
            url=settings.url,
            table_format=settings.format,
            model_column=settings.model_column,
            score_column=settings.score_column,
            timeout=settings.timeout,
            retries=settings.retries,
            retry_backoff=settings.retry_backoff,
            max_bytes=settings.max_bytes,
            log=context.log,
        )
    )

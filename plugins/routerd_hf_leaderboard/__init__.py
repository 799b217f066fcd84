"""Builtin plugin ``hf_leaderboard``: the Hugging Face Open LLM Leaderboard (v2) as a benchmark source.

Reads the leaderboard's published table, the dataset ``open-llm-leaderboard/contents``, through the Hugging
Face datasets-server REST API (``/rows``, 100 rows a page), and reports each model's MMLU-PRO, MATH level 5,
GPQA, BBH, IFEval and MuSR scores and their average. Each request has a timeout and is retried on network
errors, 429 and 5xx. Flagged models are skipped. Switch it off with ``enabled = false`` or leave it out of
``benchmarks.sources`` (``ROUTER_BENCHMARK_SOURCES``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

import routerd
from routerd_hf_leaderboard.provider import COLUMNS, HFLeaderboard

__all__ = ["COLUMNS", "HFLeaderboard", "Settings", "register_benchmark_providers"]


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    base_url: Annotated[str, msgspec.Meta(description="The datasets-server API (its `/rows` endpoint is read).")] = (
        "https://datasets-server.huggingface.co"
    )
    dataset: Annotated[str, msgspec.Meta(description="The dataset holding the leaderboard's table.")] = (
        "open-llm-leaderboard/contents"
    )
    config: Annotated[str, msgspec.Meta(description="The dataset's configuration (subset).")] = "default"
    split: Annotated[str, msgspec.Meta(description="The dataset's split.")] = "train"
    page_size: Annotated[int, msgspec.Meta(ge=1, le=100, description="Rows per request (the API allows 100).")] = 100
    max_rows: Annotated[int, msgspec.Meta(ge=1, description="Most rows read in one sync.")] = 50_000
    timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds one request may take in all.")] = 30.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10, description="Retries of a failed request.")] = 3
    retry_backoff: Annotated[
        float, msgspec.Meta(ge=0, description="Seconds before the first retry; doubled for each next one.")
    ] = 1.0
    include_flagged: Annotated[
        bool, msgspec.Meta(description="Also read models the leaderboard flags (contamination, misuse).")
    ] = False


@routerd.hookimpl
def register_benchmark_providers(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    if not settings.base_url.startswith(("http://", "https://")):
        raise context.config_error("base_url", f"expected an http:// or https:// URL, got {settings.base_url!r}")
    register(
        HFLeaderboard(
            context.name,
            base_url=settings.base_url,
            dataset=settings.dataset,
            config=settings.config,
            split=settings.split,
            page_size=settings.page_size,
            max_rows=settings.max_rows,
            timeout=settings.timeout,
            retries=settings.retries,
            retry_backoff=settings.retry_backoff,
            include_flagged=settings.include_flagged,
            log=context.log,
        )
    )

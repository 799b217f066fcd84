"""The Open LLM Leaderboard's published rows, read page by page from the Hugging Face datasets-server.

``GET {base_url}/rows?dataset=open-llm-leaderboard/contents&config=default&split=train&offset=N&length=100``
answers ``{"features": [...], "rows": [{"row_idx": N, "row": {...}, "truncated_cells": []}, ...],
"num_rows_total": T, "num_rows_per_page": 100, "partial": false}``. Each row is one evaluated model (one
precision of it), named by ``fullname`` (``Qwen/Qwen2.5-7B-Instruct``), with the leaderboard's normalised
scores under its display column names (``IFEval``, ``BBH``, ``MATH Lvl 5``, ``GPQA``, ``MUSR``, ``MMLU-PRO``,
``Average ⬆️``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import msgspec

from routerd import BenchmarkRecord
from routerd.toolkit import SourceUnavailable, download, new_download_session

# Leaderboard column -> the kernel's benchmark name. Other columns (the raw scores, likes, licence, CO2 cost,
# parameter count, ...) are not benchmark figures and are not read.
COLUMNS: dict[str, str] = {
    "Average ⬆️": "open_llm_average",
    "IFEval": "ifeval",
    "BBH": "bbh",
    "MATH Lvl 5": "math_lvl_5",
    "GPQA": "gpqa",
    "MUSR": "musr",
    "MMLU-PRO": "mmlu_pro",
}
MODEL_COLUMN = "fullname"
MAX_PAGE = 100  # the datasets-server's largest `length`


class RowsPage(msgspec.Struct):
    """One page of the datasets-server's ``/rows`` answer (other keys ignored)."""

    rows: list[Any]
    num_rows_total: int


class HFLeaderboard:
    """A `routerd.BenchmarkProvider` for the Open LLM Leaderboard (v2)."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        dataset: str,
        config: str,
        split: str,
        page_size: int = MAX_PAGE,
        max_rows: int = 50_000,
        timeout: float = 30.0,
        retries: int = 3,
        retry_backoff: float = 1.0,
        include_flagged: bool = False,
        log: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.url = base_url.rstrip("/") + "/rows"
        self.query = {"dataset": dataset, "config": config, "split": split}
        self.page_size = min(page_size, MAX_PAGE)
        self.max_rows = max_rows
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.include_flagged = include_flagged
        self.log = log or logging.getLogger(f"routerd.plugin.{name}")

    async def fetch(self) -> list[BenchmarkRecord]:
        """Every page, in order, until ``num_rows_total`` rows (at most `max_rows`) have been read."""
        now = dt.datetime.now(dt.UTC)
        records: list[BenchmarkRecord] = []
        offset, total = 0, None
        async with new_download_session(self.timeout) as session:
            while total is None or offset < total:
                page = await self._page(session, offset)
                if total is None:
                    total = min(page.num_rows_total, self.max_rows)
                    if page.num_rows_total > self.max_rows:
                        self.log.warning("%d rows published; reading the first %d", page.num_rows_total, total)
                for row in page.rows[: total - offset]:
                    records.extend(self._records(row, now))
                if not page.rows:
                    break  # the split is shorter than it said
                offset += len(page.rows)
        self.log.info("read %d leaderboard rows", min(offset, total or 0))
        return records

    async def _page(self, session: Any, offset: int) -> RowsPage:
        params = {**self.query, "offset": offset, "length": self.page_size}
        body = await download(session, self.url, params=params, retries=self.retries, backoff=self.retry_backoff)
        try:
            return msgspec.json.decode(body, type=RowsPage)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SourceUnavailable(f"{self.url} offset {offset}: not a datasets-server rows page ({exc})") from None

    def _records(self, entry: Any, now: dt.datetime) -> list[BenchmarkRecord]:
        """The row's figures, values as published (the kernel screens them)."""
        row = entry.get("row") if isinstance(entry, dict) else None
        if not isinstance(row, dict):
            self.log.warning("a row that is not an object was skipped")
            return []
        if row.get("Flagged") is True and not self.include_flagged:
            return []
        # One record per mapped column the row has, the value as published: the kernel's screening, not this
        # provider, decides whether it is acceptable.
        model = row.get(MODEL_COLUMN)
        return [
            BenchmarkRecord(self.name, model, benchmark, row[column], now)  # Structs do not convert on __init__
            for column, benchmark in COLUMNS.items()
            if column in row
        ]

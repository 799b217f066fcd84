"""LMArena (formerly LMSYS Chatbot Arena) ratings from a published table, CSV or JSON.

The default source is the text-arena table that github.com/fboulnois/llm-leaderboard-csv publishes every day
as a release asset: ``/releases/latest/download/lmarena_text.csv``, which redirects to the newest release's
file. Its columns are ``rank,rank_stylectrl,model,arena_score,95_pct_ci,votes,organization,license,
knowledge_cutoff,url``. Any table with a model column and a rating column works: the columns are found by name
(``model``/``Model``/``key``/``name`` and ``arena_score``/``arena_elo``/``elo``/``rating``/``Arena Elo
rating``/``score``) unless the settings name them. JSON may be a list of such objects, an object holding one
under ``data``/``leaderboard``/``models``/``rows``, or an object of model name -> rating.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Mapping
from typing import Any

from routerd import BenchmarkRecord
from routerd.toolkit import SourceUnavailable, download, new_download_session

BENCHMARK = "arena_elo"
MODEL_COLUMNS = ("model", "Model", "key", "name")
SCORE_COLUMNS = ("arena_score", "arena_elo", "elo", "rating", "Arena Elo rating", "Arena Score", "score")
JSON_LISTS = ("data", "leaderboard", "models", "rows")


def _number(value: Any) -> Any:
    """A published cell as a number when it reads as one; blank cells are None; anything else is passed on
    as published, for the kernel to refuse."""
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        try:
            return float(stripped)
        except ValueError:
            return value
    return value


def _pick(columns: list[str], wanted: str | None, guesses: tuple[str, ...], what: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise SourceUnavailable(f"the table has no {what} column {wanted!r} (columns: {', '.join(columns)})")
        return wanted
    for guess in guesses:
        if guess in columns:
            return guess
    raise SourceUnavailable(f"the table has no {what} column (columns: {', '.join(columns)[:300]})")


def parse_table(body: bytes, table_format: str = "auto") -> list[dict[str, Any]]:
    """The rows of a CSV or JSON table, as dicts."""
    text = body.decode("utf-8-sig", errors="replace")
    if table_format == "json" or (table_format == "auto" and text.lstrip()[:1] in ("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SourceUnavailable(f"not valid JSON: {exc}") from None
        if isinstance(data, Mapping):
            for key in JSON_LISTS:
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
            else:
                return [{"model": name, "arena_score": value} for name, value in data.items()]
        if not isinstance(data, list):
            raise SourceUnavailable("JSON table: expected a list of rows")
        return [row for row in data if isinstance(row, dict)]
    return list(csv.DictReader(io.StringIO(text)))


class ArenaLeaderboard:
    """A `routerd.BenchmarkProvider` for LMArena ratings (benchmark ``arena_elo``)."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        table_format: str = "auto",
        model_column: str | None = None,
        score_column: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        retry_backoff: float = 1.0,
        max_bytes: int = 16 * 1024 * 1024,
        log: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.table_format = table_format
        self.model_column = model_column
        self.score_column = score_column
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.max_bytes = max_bytes
        self.log = log or logging.getLogger(f"routerd.plugin.{name}")

    async def fetch(self) -> list[BenchmarkRecord]:
        now = dt.datetime.now(dt.UTC)
        async with new_download_session(self.timeout) as session:
            body = await download(
                session, self.url, retries=self.retries, backoff=self.retry_backoff, max_bytes=self.max_bytes
            )
        rows = parse_table(body, self.table_format)
        if not rows:
            raise SourceUnavailable(f"{self.url}: the table is empty")
        columns = list(dict.fromkeys(key for row in rows for key in row if isinstance(key, str)))
        model_column = _pick(columns, self.model_column, MODEL_COLUMNS, "model")
        score_column = _pick(columns, self.score_column, SCORE_COLUMNS, "rating")
        self.log.info("read %d arena rows (%s, %s)", len(rows), model_column, score_column)
        return [
            BenchmarkRecord(self.name, row.get(model_column), BENCHMARK, _number(row.get(score_column)), now)
            for row in rows
        ]

"""A stand-in for the two public benchmark sources, for tests: it replays payloads shaped exactly as the real
services publish them, and records every request it receives.

- The Hugging Face datasets-server's ``GET /rows?dataset=&config=&split=&offset=&length=`` over the Open LLM
  Leaderboard's table (``open-llm-leaderboard/contents``): ``{"features", "rows": [{"row_idx", "row",
  "truncated_cells"}], "num_rows_total", "num_rows_per_page", "partial"}``, each row with the leaderboard's
  own columns (``eval_name``, ``Precision``, ``fullname``, ``Average ⬆️``, ``IFEval``, ``IFEval Raw``, ...,
  ``#Params (B)``, ``Flagged``, ...). ``length`` above 100 is refused with 422, as the real API does.
- GitHub's ``/releases/latest/download/<asset>``, which answers 302 to the newest release's asset, serving the
  LMArena text table that fboulnois/llm-leaderboard-csv publishes (``rank,rank_stylectrl,model,arena_score,
  95_pct_ci,votes,organization,license,knowledge_cutoff,url``).

The figures are of the real tables' shape and scale (approximations for published models, plus generated
community fine-tunes to make more than one page). The server runs on 127.0.0.1 in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from servers import aiohttp_in_thread

DATASET = "open-llm-leaderboard/contents"
RELEASE = "2025.07.20"
ARENA_LATEST = "/fboulnois/llm-leaderboard-csv/releases/latest/download/lmarena_text.csv"
ARENA_ASSET = f"/fboulnois/llm-leaderboard-csv/releases/download/{RELEASE}/lmarena_text.csv"

_SCORES = ("IFEval", "BBH", "MATH Lvl 5", "GPQA", "MUSR", "MMLU-PRO")
# (fullname, precision, type, params B, architecture, (IFEval, BBH, MATH Lvl 5, GPQA, MUSR, MMLU-PRO))
PUBLISHED = [
    (
        "Qwen/Qwen2.5-7B-Instruct",
        "bfloat16",
        "chat",
        7.616,
        "Qwen2ForCausalLM",
        (75.85, 34.89, 50.0, 5.48, 8.45, 36.52),
    ),
    ("Qwen/Qwen2.5-7B", "bfloat16", "pretrained", 7.616, "Qwen2ForCausalLM", (33.74, 35.81, 18.88, 9.96, 9.24, 36.39)),
    (
        "Qwen/Qwen2.5-72B-Instruct",
        "bfloat16",
        "chat",
        72.706,
        "Qwen2ForCausalLM",
        (86.38, 61.87, 59.82, 16.67, 11.74, 51.4),
    ),
    (
        "Qwen/Qwen2.5-Coder-7B-Instruct",
        "bfloat16",
        "chat",
        7.616,
        "Qwen2ForCausalLM",
        (61.01, 22.93, 3.02, 4.36, 7.99, 23.34),
    ),
    (
        "unsloth/Qwen2.5-7B-Instruct",
        "bfloat16",
        "chat",
        7.616,
        "Qwen2ForCausalLM",
        (75.62, 34.81, 49.7, 5.38, 8.2, 36.41),
    ),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        "bfloat16",
        "chat",
        8.03,
        "LlamaForCausalLM",
        (49.22, 29.38, 15.56, 8.72, 8.61, 31.09),
    ),
    (
        "meta-llama/Llama-3.1-8B",
        "bfloat16",
        "pretrained",
        8.03,
        "LlamaForCausalLM",
        (12.46, 25.16, 6.19, 7.38, 8.98, 24.95),
    ),
    (
        "meta-llama/Llama-3.2-3B-Instruct",
        "bfloat16",
        "chat",
        3.213,
        "LlamaForCausalLM",
        (73.93, 24.06, 17.67, 3.8, 1.37, 24.39),
    ),
    (
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "bfloat16",
        "chat",
        8.03,
        "LlamaForCausalLM",
        (74.08, 28.24, 8.69, 1.23, 1.6, 29.6),
    ),
    (
        "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF",
        "bfloat16",
        "chat",
        70.554,
        "LlamaForCausalLM",
        (73.81, 42.9, 38.37, 12.53, 15.13, 44.1),
    ),
    ("google/gemma-2-9b-it", "bfloat16", "chat", 9.242, "Gemma2ForCausalLM", (74.36, 42.14, 19.49, 14.77, 9.74, 31.95)),
    ("google/gemma-2-9b", "float32", "pretrained", 9.242, "Gemma2ForCausalLM", (20.4, 34.1, 13.44, 10.51, 14.3, 34.48)),
    ("google/gemma-3-270m-it", "bfloat16", "chat", 0.268, "Gemma3ForCausalLM", (29.6, 3.1, 0.6, 0.9, 2.2, 1.4)),
    (
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "bfloat16",
        "chat",
        46.703,
        "MixtralForCausalLM",
        (55.99, 29.74, 9.14, 7.05, 11.07, 29.91),
    ),
    (
        "mistralai/Mixtral-8x7B-v0.1",
        "bfloat16",
        "pretrained",
        46.703,
        "MixtralForCausalLM",
        (23.26, 30.4, 10.12, 9.4, 13.66, 32.01),
    ),
    (
        "mistralai/Mistral-7B-Instruct-v0.1",
        "bfloat16",
        "chat",
        7.242,
        "MistralForCausalLM",
        (44.87, 7.65, 2.27, 0.0, 6.13, 15.72),
    ),
    (
        "mistralai/Mistral-7B-Instruct-v0.2",
        "bfloat16",
        "chat",
        7.242,
        "MistralForCausalLM",
        (54.96, 22.91, 2.95, 3.47, 7.61, 19.08),
    ),
    (
        "mistralai/Mistral-7B-Instruct-v0.3",
        "bfloat16",
        "chat",
        7.248,
        "MistralForCausalLM",
        (54.65, 25.57, 3.78, 3.13, 10.22, 23.06),
    ),
    ("microsoft/phi-4", "bfloat16", "chat", 14.66, "Phi3ForCausalLM", (5.85, 52.43, 32.63, 13.53, 15.14, 47.71)),
    (
        "microsoft/Phi-3-mini-4k-instruct",
        "bfloat16",
        "chat",
        3.821,
        "Phi3ForCausalLM",
        (54.77, 36.56, 16.39, 10.96, 13.12, 33.58),
    ),
    (
        "microsoft/Phi-3-mini-128k-instruct",
        "bfloat16",
        "chat",
        3.821,
        "Phi3ForCausalLM",
        (59.76, 37.1, 14.05, 9.4, 7.69, 31.99),
    ),
    (
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "bfloat16",
        "chat",
        1.711,
        "LlamaForCausalLM",
        (53.68, 10.92, 5.82, 0.0, 3.83, 11.71),
    ),
    (
        "01-ai/Yi-1.5-34B-Chat",
        "bfloat16",
        "chat",
        34.389,
        "LlamaForCausalLM",
        (60.67, 44.26, 25.53, 15.32, 13.06, 39.12),
    ),
    ("01-ai/Yi-34B-Chat", "bfloat16", "chat", 34.389, "LlamaForCausalLM", (46.99, 37.62, 6.27, 11.74, 8.36, 33.41)),
    (
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "bfloat16",
        "chat",
        7.616,
        "Qwen2ForCausalLM",
        (40.38, 9.89, 19.56, 2.35, 1.85, 6.95),
    ),
    (
        "mlabonne/Meta-Llama-3.1-8B-Instruct-abliterated",
        "bfloat16",
        "chat",
        8.03,
        "LlamaForCausalLM",
        (73.29, 27.13, 6.04, 0.89, 3.21, 27.81),
    ),
]
FILLER = 230 - len(PUBLISHED)  # community fine-tunes, so that the table takes three pages of 100


def _types(kind: str) -> tuple[str, str]:
    return {
        "chat": ("💬", "💬 chat models (RLHF, DPO, IFT, ...)"),
        "pretrained": ("🟢", "🟢 pretrained"),
        "finetuned": ("🔶", "🔶 fine-tuned on domain-specific datasets"),
    }[kind]


def leaderboard_row(
    fullname: str, precision: str, kind: str, params: float, architecture: str, scores: tuple, *, flagged=False
) -> dict[str, Any]:
    """One row of the leaderboard's table, every column as published."""
    symbol, kind_text = _types(kind)
    link = f"https://huggingface.co/{fullname}"
    details = f"https://huggingface.co/datasets/open-llm-leaderboard/{fullname.replace('/', '__')}-details"
    row: dict[str, Any] = {
        "eval_name": f"{fullname.replace('/', '_')}_{precision}",
        "Precision": precision,
        "Type": kind_text,
        "T": symbol,
        "Weight type": "Original",
        "Architecture": architecture,
        "Model": f'<a target="_blank" href="{link}" style="color: var(--link-text-color); text-decoration: '
        f'underline;text-decoration-style: dotted;">{fullname}</a>  <a target="_blank" href="{details}" '
        f'style="color: var(--link-text-color); text-decoration: underline;text-decoration-style: dotted;">📑</a>',
        "fullname": fullname,
        "Model sha": "a09a35458c702b33eeacc393d103063234e8bc28",
        "Average ⬆️": round(sum(scores) / len(scores), 4) if all(s is not None for s in scores) else None,
        "Hub License": "apache-2.0",
        "Hub ❤️": 512,
        "#Params (B)": params,
        "Available on the hub": True,
        "MoE": architecture.startswith("Mixtral"),
        "Flagged": flagged,
        "Chat Template": kind == "chat",
        "CO₂ cost (kg)": 1.49,
    }
    for column, score in zip(_SCORES, scores, strict=True):
        row[f"{column} Raw"] = None if score is None else round(score / 100 * 0.8 + 0.1, 4)
        row[column] = score
    row.update(
        {
            "Merged": False,
            "Official Providers": fullname.split("/")[0] in ("Qwen", "meta-llama", "google", "mistralai", "microsoft"),
            "Upload To Hub Date": "2024-09-16",
            "Submission Date": "2024-09-18",
            "Generation": 0 if kind == "pretrained" else 1,
            "Base Model": fullname,
        }
    )
    return row


def default_rows() -> list[dict[str, Any]]:
    rows = [leaderboard_row(*published) for published in PUBLISHED]
    for i in range(FILLER):
        scores = (40 + i % 30, 20 + i % 15, 5 + i % 10, 3 + i % 7, 4 + i % 9, 20 + i % 12)
        name = f"merger{i % 17}/Qwen2.5-7B-slerp-v{i}"
        rows.append(
            leaderboard_row(name, "bfloat16", "finetuned", 7.616, "Qwen2ForCausalLM", tuple(map(float, scores)))
        )
    rows.append(
        leaderboard_row(
            "cheater/Qwen2.5-7B-Instruct-contaminated",
            "bfloat16",
            "finetuned",
            7.616,
            "Qwen2ForCausalLM",
            (99.0, 99.0, 99.0, 99.0, 99.0, 99.0),
            flagged=True,
        )
    )
    return rows


FEATURES = [
    {"feature_idx": i, "name": name, "type": {"dtype": dtype, "_type": "Value"}}
    for i, (name, dtype) in enumerate(
        [
            ("eval_name", "string"),
            ("Precision", "string"),
            ("Type", "string"),
            ("T", "string"),
            ("Weight type", "string"),
            ("Architecture", "string"),
            ("Model", "string"),
            ("fullname", "string"),
            ("Model sha", "string"),
            ("Average ⬆️", "float64"),
            ("Hub License", "string"),
            ("Hub ❤️", "int64"),
            ("#Params (B)", "float64"),
            ("Available on the hub", "bool"),
            ("MoE", "bool"),
            ("Flagged", "bool"),
            ("Chat Template", "bool"),
            ("CO₂ cost (kg)", "float64"),
        ]
        + [(f"{c} Raw", "float64") for c in _SCORES]
        + [(c, "float64") for c in _SCORES]
        + [
            ("Merged", "bool"),
            ("Official Providers", "bool"),
            ("Upload To Hub Date", "string"),
            ("Submission Date", "string"),
            ("Generation", "int64"),
            ("Base Model", "string"),
        ]
    )
]

ARENA_CSV = """\
rank,rank_stylectrl,model,arena_score,95_pct_ci,votes,organization,license,knowledge_cutoff,url
1,1,Gemini-2.5-Pro,1472,+5/-5,22146,Google,Proprietary,,http://aistudio.google.com/app/prompts/new_chat?model=gemini-2.5-pro
40,32,Gemma-3-27B-it,1356,+4/-4,29689,Google,Gemma,,http://aistudio.google.com/app/prompts/new_chat?model=gemma-3-27b-it
73,68,GPT-4o-2024-05-13,1302,+2/-2,117747,OpenAI,Proprietary,2023/10,https://openai.com/index/hello-gpt-4o/
86,77,Meta-Llama-3.1-405B-Instruct-bf16,1286,+3/-3,43788,Meta,Llama 3.1 Community,2023/12,https://ai.meta.com/blog/meta-llama-3-1/
103,95,Qwen2.5-72B-Instruct,1272,+3/-3,41519,Alibaba,Qwen,2024/9,https://qwenlm.github.io/blog/qwen2.5/
127,121,Gemma-2-27B-it,1235,+2/-2,79538,Google,Gemma license,2024/6,https://aistudio.google.com/app/prompts/new_chat?model=gemma-2-27b-it
112,121,Llama-3.1-Tulu-3-8B,1201,+10/-9,3074,Ai2,Llama 3.1,Unknown,https://huggingface.co/allenai/Llama-3.1-Tulu-3-8B
113,109,Gemma-2-9B-it,1208,+2/-2,57197,Google,Gemma license,2024/6,https://aistudio.google.com/app/prompts/new_chat?model=gemma-2-9b-it
118,136,Meta-Llama-3.1-8B-Instruct,1192,+2/-2,52578,Meta,Llama 3.1 Community,2023/12,https://ai.meta.com/blog/meta-llama-3-1/
150,141,Mixtral-8x7B-Instruct-v0.1,1114,+0/-0,76126,Mistral,Apache 2.0,2023/12,https://mistral.ai/news/mixtral-of-experts/
"""


@dataclass
class LeaderboardState:
    """What the replay server serves, how it misbehaves, and what it saw."""

    rows: list[dict[str, Any]] = field(default_factory=default_rows)
    # Raw ``rows`` entries (not wrapped) served in place of the page at this offset: for poisoned payloads.
    raw_pages: dict[int, list[Any]] = field(default_factory=dict)
    fail_next: int = 0  # answer the next N /rows requests with 500
    stall_next: int = 0  # hold the next N /rows requests for `stall_seconds`
    stall_seconds: float = 5.0
    hf_down: bool = False
    arena_body: str = ARENA_CSV
    arena_down: bool = False
    requests: list[str] = field(default_factory=list)

    def offsets(self) -> list[int]:
        return [int(r.split("offset=")[1].split("&")[0]) for r in self.requests if r.startswith("/rows?")]


def replay_app(state: LeaderboardState) -> web.Application:
    async def rows(request: web.Request) -> web.Response:
        state.requests.append(request.path_qs)
        query = request.query
        if state.hf_down:
            return web.json_response({"error": "Service Unavailable"}, status=503)
        if state.fail_next:
            state.fail_next -= 1
            return web.json_response({"error": "Internal Server Error"}, status=500)
        if state.stall_next:
            state.stall_next -= 1
            await asyncio.sleep(state.stall_seconds)
        if (query.get("dataset"), query.get("config"), query.get("split")) != (DATASET, "default", "train"):
            return web.json_response({"error": "The dataset does not exist, or is not accessible"}, status=404)
        offset, length = int(query.get("offset", 0)), int(query.get("length", 100))
        if length > 100:
            return web.json_response({"error": "Parameter 'length' must not be greater than 100"}, status=422)
        if offset in state.raw_pages:
            entries = state.raw_pages[offset]
        else:
            chunk = state.rows[offset : offset + length]
            entries = [{"row_idx": offset + i, "row": row, "truncated_cells": []} for i, row in enumerate(chunk)]
        body = {
            "features": FEATURES,
            "rows": entries,
            "num_rows_total": len(state.rows),
            "num_rows_per_page": 100,
            "partial": False,
        }
        return web.json_response(body)

    async def latest(request: web.Request) -> web.Response:
        state.requests.append(request.path_qs)
        raise web.HTTPFound(ARENA_ASSET)

    async def asset(request: web.Request) -> web.Response:
        state.requests.append(request.path_qs)
        if state.arena_down:
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        return web.Response(
            text=state.arena_body,
            content_type="application/octet-stream",
            headers={"Content-Disposition": "attachment; filename=lmarena_text.csv"},
        )

    app = web.Application()
    app.router.add_get("/rows", rows)
    app.router.add_get(ARENA_LATEST, latest)
    app.router.add_get(ARENA_ASSET, asset)
    return app


@contextlib.contextmanager
def leaderboard_server(state: LeaderboardState) -> Iterator[str]:
    """Run the replay server in its own thread and loop; yield its base URL."""
    with aiohttp_in_thread(replay_app(state)) as base:
        yield base

"""Judges for the profiling tests: each grades an answer by how close its embedding is to the
reference answer's, both from a real OpenAI-compatible embeddings endpoint (the llama.cpp server running the
bundled model). Pointed at an endpoint that answers garbage, or at nothing, a judge raises, as a real one would;
`offset` makes it return scores outside 0..1 (a judge with a bug)."""

from __future__ import annotations

import math

import httpx
import msgspec

import routerd


def pooled(vector: list) -> list[float]:
    """llama.cpp's server may send one vector per token: their mean."""
    if vector and isinstance(vector[0], list):
        return [sum(column) / len(vector) for column in zip(*vector, strict=True)]
    return vector


class JudgeSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    url: str
    offset: float = 0.0


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    judges: list[JudgeSpec] = []
    model: str = "gemma-3-270m"


class SimilarityJudge:
    def __init__(self, spec: JudgeSpec, model: str) -> None:
        self.name = spec.name
        self.url = spec.url.rstrip("/")
        self.offset = spec.offset
        self.model = model
        self.calls = 0
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=30)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def judge(self, features, model, answer, reference=None):
        if reference is None:
            return None
        self.calls += 1
        assert self.client is not None
        response = await self.client.post(
            f"{self.url}/v1/embeddings", json={"model": self.model, "input": [answer, reference]}
        )
        data = response.json()["data"]  # garbage raises here
        a, b = pooled(data[0]["embedding"]), pooled(data[1]["embedding"])
        cosine = sum(x * y for x, y in zip(a, b, strict=True)) / (
            math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        )
        score = max(0.0, min(1.0, cosine)) + self.offset
        return routerd.Judgement(score, f"similarity to the reference {cosine:.2f}")


@routerd.hookimpl
def register_judges(register, context):
    for spec in context.settings.judges:
        register(SimilarityJudge(spec, context.settings.model))

"""Evaluation data of the ../shared/eval/routing JSONL format for four models with different strengths per kind
of prompt, for tests of the learned scorer and of ``routerd eval routing`` with more than two models.

Kinds: greetings (every model answers them), coding and maths (the bigger, the better; the tiny model fails),
general questions (all but the tiny model do well). Each model's outcome on a prompt is drawn around its
strength for the prompt's kind, so the data has noise, as real outcomes do.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

# the data's own model names, weakest first
MODELS = ("tiny", "small", "medium", "large")
STRENGTH = {
    "greeting": (0.95, 0.95, 0.95, 0.95),
    "coding": (0.05, 0.3, 0.6, 0.95),
    "math": (0.05, 0.25, 0.55, 0.9),
    "general": (0.4, 0.8, 0.85, 0.9),
}
COST = (0.0001, 0.0005, 0.002, 0.01)  # USD per call

_GREETINGS = ["hi!", "hello", "hey there", "thanks!", "good morning", "hi, how are you?", "thank you so much"]
_LANGUAGES = ["Python", "Rust", "Go", "TypeScript", "Java", "C++"]
_TASKS = [
    "merges overlapping intervals",
    "parses a CSV file into records",
    "implements an LRU cache",
    "finds the shortest path in a weighted graph",
    "validates an email address with a regex",
    "serialises a binary tree",
    "rate-limits calls with a token bucket",
    "computes the longest common subsequence",
]
_TOPICS = ["the Roman Empire", "photosynthesis", "the French Revolution", "jazz music", "volcanoes", "the Moon"]


def _prompt(kind: str, rng: random.Random) -> str:
    if kind == "greeting":
        return rng.choice(_GREETINGS)
    if kind == "coding":
        return (
            f"Write a {rng.choice(_LANGUAGES)} function that {rng.choice(_TASKS)}. It must handle edge cases, "
            "run in O(n log n) and include unit tests."
        )
    if kind == "math":
        a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
        return f"Solve for x: {a}x + {b} = {c * a + b}. Then compute the integral of {c}x^2 from 0 to {a}. Prove it."
    return f"Tell me about {rng.choice(_TOPICS)} in a few paragraphs, please."


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    kinds = list(STRENGTH)
    found = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        scores = {m: 1.0 if rng.random() < p else 0.0 for m, p in zip(MODELS, STRENGTH[kind], strict=True)}
        costs = dict(zip(MODELS, COST, strict=True))
        found.append(
            {"id": f"{kind}-{i}", "source": kind, "prompt": _prompt(kind, rng), "scores": scores, "costs": costs}
        )
    return found


def write(path: Path, n: int = 400, seed: int = 0, *, costs: bool = True) -> Path:
    with path.open("w") as handle:
        for row in rows(n, seed):
            if not costs:
                row.pop("costs")
            handle.write(json.dumps(row) + "\n")
    return path

"""Prompt features and the combination of scorers' contributions."""

from __future__ import annotations

import msgspec
import pytest

from routerd import Capabilities, Contribution, ModelInfo, PromptFeatures
from routerd.catalog import CatalogEntry
from routerd.routing.features import detect_language, extract_features
from routerd.routing.scoring import combine
from routerd.schemas.openai import ChatRequest, Message


def features_of(*turns: str, **request) -> PromptFeatures:
    roles = ["user", "assistant"]
    messages = [Message(role=roles[i % 2], content=text) for i, text in enumerate(turns)]
    return extract_features(ChatRequest(messages=messages, **request))


@pytest.mark.parametrize(
    ("prompt", "category", "difficulty"),
    [
        ("hi!", "general", "simple"),
        ("thanks a lot", "general", "simple"),
        ("What is 17*23?", "math", "simple"),
        ("Write a poem about the sea", "creativity", "simple"),
        ("Summarize this article in three bullet points: the economy grew...", "summarization", "simple"),
        ("Translate 'good morning' into French", "translation", "simple"),
        (
            "Write a Python function that merges overlapping intervals. It must run in O(n log n), handle "
            "edge cases such as empty input, and include unit tests. Optimize for memory.",
            "coding",
            "hard",
        ),
        ("Prove that there are infinitely many primes. Be rigorous and handle every edge case.", "reasoning", "hard"),
        (
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
            "How many clips did Natalia sell altogether in April and May?",
            "math",
            "medium",
        ),
    ],
)
def test_category_and_difficulty(prompt, category, difficulty):
    found = features_of(prompt)
    assert (found.category, found.difficulty) == (category, difficulty)


def test_the_whole_conversation_counts():
    follow_up = features_of(
        "Write a Python function that reverses a linked list", "def reverse(head): ...", "and in Rust?"
    )
    assert follow_up.category == "coding"
    assert features_of("and the other way round?").category == "general"


def test_needs_come_from_the_request():
    image = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:,"}}]
    body = {
        "messages": [{"role": "user", "content": image}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "response_format": {"type": "json_object"},
    }
    request = msgspec.convert(body, ChatRequest)
    found = extract_features(request)
    assert (found.needs_vision, found.needs_tools, found.needs_json) == (True, True, True)
    assert features_of("Reply only in JSON format with keys a and b").needs_json
    assert features_of("x" * 4000).prompt_tokens == 1000


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How do I sort a list in Python and what is the fastest way?", "en"),
        ("Wie kann ich die Liste sortieren und was ist der schnellste Weg?", "de"),
        ("Comment est-ce que je peux trier une liste avec Python et pour quoi faire?", "fr"),
        ("¿Cómo puedo ordenar una lista en Python y qué es lo más rápido?", "es"),
        ("如何在Python中对列表进行排序", "zh"),
        ("Как отсортировать список в Python?", "ru"),
    ],
)
def test_language(text, language):
    assert detect_language(text) == language


def entry(name: str, parameters: int | None = None) -> CatalogEntry:
    return CatalogEntry(
        name, ModelInfo(name=name, backend="b", parameters=parameters, capabilities=Capabilities()), None
    )


def test_quality_preference_mixes_quality_and_efficiency():
    big, small = entry("big"), entry("small")
    opinions = {
        "quality": {"big": Contribution(0.9), "small": Contribution(0.5)},
        "speed": {"big": Contribution(0.2, aspect="efficiency"), "small": Contribution(0.9, aspect="efficiency")},
    }
    best_quality = combine([big, small], opinions, preference=1.0)
    cheapest = combine([big, small], opinions, preference=0.0)
    assert [s.entry.id for s in best_quality] == ["big", "small"]
    assert [s.entry.id for s in cheapest] == ["small", "big"]
    assert best_quality[0].total == pytest.approx(0.9)
    assert cheapest[0].total == pytest.approx(0.9)
    assert combine([big, small], opinions, preference=0.5)[0].total == pytest.approx((0.5 + 0.9) / 2)


def test_weights_and_multipliers_and_missing_opinions():
    a, b = entry("a"), entry("b")
    opinions = {
        "heavy": {"a": Contribution(1.0, weight=3)},
        "light": {"a": Contribution(0.0, weight=1), "b": Contribution(0.6)},
        "diversity": {"a": Contribution(0.5, aspect="multiplier", reason="won 100%")},
    }
    ranked = combine([a, b], opinions, preference=1.0)
    scores = {s.entry.id: s for s in ranked}
    assert scores["a"].quality == pytest.approx(0.75)
    assert scores["a"].total == pytest.approx(0.75 * 0.5 * 1.0 + 0.0)  # efficiency has no say at preference 1
    assert scores["b"].quality == pytest.approx(0.6)
    assert [s.entry.id for s in ranked] == ["b", "a"]
    explained = scores["a"].explain()
    assert explained["contributions"]["diversity"] == {
        "score": 0.5,
        "weight": 1.0,
        "aspect": "multiplier",
        "reason": "won 100%",
    }

"""The model_preference scorer, on the fake backend's models and on its own."""

from __future__ import annotations

import pytest
import routerd
from routerd import Capabilities, ModelInfo, PromptFeatures

from routerd_example import ModelPreferenceScorer

pytestmark = pytest.mark.anyio

FEATURES = PromptFeatures(text="Which model should answer this?")


@pytest.fixture
def scorer(routerd_gateway) -> ModelPreferenceScorer:
    """The scorer the plugin registered in a gateway configured by `routerd_config` (conftest)."""
    return routerd_gateway.plugins.registry.scorers["model_preference"]


def models(*names: str) -> list[ModelInfo]:
    return [ModelInfo(name=name, backend="test", capabilities=Capabilities()) for name in names]


def test_is_a_scorer(scorer: ModelPreferenceScorer) -> None:
    assert isinstance(scorer, routerd.Scorer)


async def test_prefers_matching_backend_models(scorer: ModelPreferenceScorer, fake_backend) -> None:
    candidates = await fake_backend.list_models()
    assert {m.name for m in candidates} == {"fake-small", "fake-large"}

    contributions = await scorer.score(FEATURES, candidates)

    assert set(contributions) == {"fake-large"}  # no opinion on fake-small: omitted
    assert contributions["fake-large"].score == 0.9
    assert contributions["fake-large"].weight == 1.0
    assert contributions["fake-large"].reason == "preferred by the operator: matches 'fake-large*'"


async def test_names_the_first_pattern_that_matched() -> None:
    scorer = ModelPreferenceScorer(["qwen2.5:*", "*:7b*", "llama3.?:*"], score=0.5)

    contributions = await scorer.score(
        FEATURES, models("qwen2.5:7b-instruct", "mistral:7b", "llama3.1:8b", "gemma2:9b")
    )

    assert {name: c.reason for name, c in contributions.items()} == {
        "qwen2.5:7b-instruct": "preferred by the operator: matches 'qwen2.5:*'",
        "mistral:7b": "preferred by the operator: matches '*:7b*'",
        "llama3.1:8b": "preferred by the operator: matches 'llama3.?:*'",
    }
    assert {c.score for c in contributions.values()} == {0.5}


async def test_matches_case_sensitively() -> None:
    scorer = ModelPreferenceScorer(["Qwen*"], score=1.0)
    assert await scorer.score(FEATURES, models("qwen2.5:7b")) == {}


async def test_without_patterns_has_no_opinion(fake_backend) -> None:
    scorer = ModelPreferenceScorer([], score=1.0)
    assert await scorer.score(FEATURES, await fake_backend.list_models()) == {}


def test_is_a_scorer_only(routerd_gateway) -> None:
    """It predicts; it neither judges answers nor learns from outcomes."""
    registry = routerd_gateway.plugins.registry
    assert "model_preference" in registry.scorers
    assert "model_preference" not in registry.judges and "model_preference" not in registry.learners

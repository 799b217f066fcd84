"""The learned quality models and `routerd eval routing`: metrics with known answers, the data reader, the split,
models that must find planted signals, N models, the command line (the `learned` plugin's command, through the
`routerd` command as a user runs it), and the targets on the real evaluation data."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from routerd.cli import main
from routerd_learned.learning import metrics
from routerd_learned.learning.dataset import (
    DatasetError,
    Price,
    ScoredPrompts,
    read_prices,
    read_scored_prompts,
    split,
)
from routerd_learned.learning.evaluation import choose, curve_of, evaluate
from routerd_learned.learning.lexical import LexicalQualityModel
from routerd_learned.learning.neighbours import NeighbourQualityModel, VectorIndex
from routerd_learned.learning.scorers import CombinedQualityModel
from routerd_learned.learning.text_features import char_ngram_hashes, prompt_columns
from routerd_learned.learning.token_view import clip, prompt_tokens, reference_hashes

ROUTING_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "routing" / "routellm_mmlu_gsm8k.jsonl"


# -- metrics ------------------------------------------------------------------------------------------------------


def test_pgr_apgr_and_cpt_of_a_hand_made_curve():
    # weak 0.6, strong 0.8; the router reaches 0.75 with 20% strong calls, 0.8 with 60%, then stays
    shares = [0.0, 0.2, 0.6, 1.0]
    qualities = [0.6, 0.75, 0.8, 0.8]
    pgrs = [metrics.pgr(q, 0.6, 0.8) for q in qualities]
    assert pgrs == pytest.approx([0.0, 0.75, 1.0, 1.0])
    # trapezoids: 0.2 * 0.375 + 0.4 * 0.875 + 0.4 * 1.0
    assert metrics.apgr(shares, pgrs) == pytest.approx(0.075 + 0.35 + 0.4)
    assert metrics.calls_to_reach(shares, pgrs, 0.5) == pytest.approx(0.2 * 0.5 / 0.75)
    assert metrics.calls_to_reach(shares, pgrs, 0.8) == pytest.approx(0.2 + 0.4 * 0.05 / 0.25)
    assert metrics.calls_to_reach(shares, pgrs, 1.2) is None


def test_random_mixing_is_the_diagonal():
    assert metrics.apgr([0, 1], [0, 1]) == pytest.approx(0.5)
    assert metrics.calls_to_reach([0, 1], [0, 1], 0.5) == pytest.approx(0.5)
    assert metrics.calls_to_reach([0, 1], [0, 1], 0.8) == pytest.approx(0.8)


def test_cpt_takes_the_first_crossing_of_a_curve_that_falls_back():
    shares, pgrs = [0.0, 0.1, 0.5, 1.0], [0.0, 1.2, 0.7, 1.0]
    assert metrics.calls_to_reach(shares, pgrs, 0.6) == pytest.approx(0.05)


def test_metrics_refuse_curves_that_do_not_span_the_shares():
    with pytest.raises(ValueError, match="from 0 to 1"):
        metrics.apgr([0.1, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="must beat"):
        metrics.pgr(0.7, 0.8, 0.8)


def _two_models(strong: list[float], weak: list[float], prompts: list[str] | None = None) -> ScoredPrompts:
    n = len(strong)
    return ScoredPrompts(
        ids=[str(i) for i in range(n)],
        prompts=prompts or [f"prompt {i}" for i in range(n)],
        models=["strong", "weak"],
        scores=np.array([strong, weak], dtype=float).T,
    )


def test_oracle_and_router_curves_of_four_prompts():
    # prompts 0 and 3: only the strong model is right; 1: both; 2: neither. Strong 0.75, weak 0.25.
    scores = np.array([[1, 0], [1, 1], [0, 0], [1, 0]], dtype=float)
    costs = np.array([[10.0, 1.0]] * 4)
    oracle = curve_of("oracle", scores, scores, costs, strongest=0, weakest=1)
    best = oracle.best()
    assert (best.strong_share, best.quality) == (0.5, 0.75)  # strong only where it is needed
    assert oracle.cpt50 == pytest.approx(0.25)
    # a router that ranks the prompts perfectly by predicted gain matches the oracle's shares
    predicted = np.array([[0.9, 0.1], [0.9, 0.9], [0.2, 0.2], [0.8, 0.3]])
    router = curve_of("router", predicted, scores, costs, strongest=0, weakest=1)
    assert router.cpt50 == pytest.approx(0.25)
    # the curve: (0, 0) (0.25, 0.5) (0.5, 1.0) (1.0, 1.0)
    assert router.apgr == pytest.approx(0.25 * 0.25 + 0.25 * 0.75 + 0.5 * 1.0)


def test_choose_trades_predicted_quality_against_cost():
    predicted = np.array([[0.9, 0.6, 0.4]])
    costs = np.array([[1.0, 0.1, 0.0]])
    assert choose(predicted, costs, 1.0).tolist() == [0]
    assert choose(predicted, costs, 0.0).tolist() == [2]
    assert choose(predicted, costs, 0.5).tolist() == [1]  # 0.45 - 0.5, 0.3 - 0.05, 0.2 - 0
    assert choose(np.array([[0.5, 0.5]]), np.array([[1.0, 0.2]]), 1.0).tolist() == [1]  # tie: the cheaper


# -- data -----------------------------------------------------------------------------------------------------------


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_reader_reads_scores_costs_and_ignores_other_keys(tmp_path):
    path = _write(
        tmp_path / "d.jsonl",
        [
            {"id": "a", "source": "x", "prompt": "one", "scores": {"m2": 0, "m1": 1}, "costs": {"m1": 2, "m2": 1}},
            {"id": "b", "prompt": "two", "scores": {"m1": 0.5, "m2": 1.0}, "costs": {"m1": 2, "m2": 1}},
        ],
    )
    data = read_scored_prompts(path)
    assert data.models == ["m1", "m2"]
    assert data.scores.tolist() == [[1.0, 0.0], [0.5, 1.0]]
    assert data.costs is not None and data.costs.tolist() == [[2, 1], [2, 1]]
    assert data.cost_source == "data"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"scores": {"a": 1, "b": 0}}], r"d.jsonl:1: missing 'prompt'"),
        ([{"prompt": "p", "scores": {"a": 1, "b": 0}}, {"prompt": "q"}], r"d.jsonl:2: missing 'scores'"),
        ([{"prompt": "p", "scores": {"a": 1, "b": 0}}, "{oops"], r"d.jsonl:2: not JSON"),
        ([{"prompt": "p", "scores": {"a": 1, "b": 0}}, {"prompt": "q", "scores": {"a": 1}}], r":2: .*no score for b"),
        ([{"prompt": "p", "scores": {"a": 1.5, "b": 0}}], r":1: 'scores' of 'a' must be 0\.\.1"),
        ([{"prompt": "p", "scores": {"a": "yes", "b": 0}}], r":1: 'scores' of 'a' is not a number"),
        ([{"prompt": "p", "scores": {"a": 1}}], r"at least two models"),
        (
            [
                {"prompt": "p", "scores": {"a": 1, "b": 0}, "costs": {"a": 1, "b": 1}},
                {"prompt": "q", "scores": {"a": 1, "b": 0}},
            ],
            r":2: 'costs' must be given on every line or on none",
        ),
    ],
)
def test_reader_refuses_bad_lines_naming_them(tmp_path, rows, message):
    path = _write(tmp_path / "d.jsonl", rows)
    with pytest.raises(DatasetError, match=message):
        read_scored_prompts(path)


def _price(input_usd: float, output_usd: float) -> dict[str, float]:
    return {"input_usd_per_mtok": input_usd, "output_usd_per_mtok": output_usd}


def test_prices_give_costs_from_prompt_length(tmp_path):
    prices_path = tmp_path / "prices.json"
    prices_path.write_text(
        json.dumps(
            {
                "a": {"input_usd_per_mtok": 10, "output_usd_per_mtok": 30},
                "b": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
            }
        )
    )
    prices = read_prices(prices_path)
    assert prices["a"] == Price(10, 30)
    data = _two_models([1, 0], [0, 0], prompts=["x" * 400, "y" * 4000]).with_prices(
        {"strong": prices["a"], "weak": prices["b"]}, output_tokens=100
    )
    assert data.cost_source == "prices"
    assert data.costs is not None
    assert data.costs[0].tolist() == pytest.approx([(100 * 10 + 100 * 30) / 1e6, (100 + 100) / 1e6])
    assert data.costs[1, 0] == pytest.approx((1000 * 10 + 100 * 30) / 1e6)
    with pytest.raises(DatasetError, match="no price for weak"):
        _two_models([1], [0]).with_prices({"strong": prices["a"]})


def test_split_is_reproducible_and_disjoint():
    data = _two_models([1.0] * 100, [0.0] * 100)
    train, test = split(data, 0.2, seed=7)
    again_train, again_test = split(data, 0.2, seed=7)
    assert test.ids == again_test.ids and train.ids == again_train.ids
    assert len(test) == 20 and len(train) == 80
    assert not set(train.ids) & set(test.ids)
    assert split(data, 0.2, seed=8)[1].ids != test.ids


# -- the models -----------------------------------------------------------------------------------------------------

_WORDS = "river mountain garden window letter market winter summer doctor teacher music paper".split()


def _synthetic(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Prompts about arithmetic, where only the strong model is right, and chit-chat, where both are."""
    rng = random.Random(seed)
    prompts, scores = [], []
    for _ in range(n):
        filler = " ".join(rng.choice(_WORDS) for _ in range(8))
        if rng.random() < 0.5:
            a, b = rng.randint(100, 999), rng.randint(100, 999)
            prompts.append(f"Compute {a} * {b} and explain. {filler}")
            scores.append([1.0 if rng.random() < 0.9 else 0.0, 1.0 if rng.random() < 0.2 else 0.0])
        else:
            prompts.append(f"Tell me something nice about the {filler}")
            scores.append([1.0 if rng.random() < 0.9 else 0.0, 1.0 if rng.random() < 0.9 else 0.0])
    return prompts, np.array(scores)


def test_lexical_model_learns_a_planted_signal():
    prompts, scores = _synthetic(400, seed=1)
    model = LexicalQualityModel(n_features=2**14).fit(prompts, scores, ["strong", "weak"])
    test_prompts, _ = _synthetic(100, seed=2)
    predicted = model.predict(test_prompts)
    arithmetic = np.array([p.startswith("Compute") for p in test_prompts])
    gain = predicted[:, 0] - predicted[:, 1]
    assert gain[arithmetic].mean() > 0.4
    assert abs(gain[~arithmetic].mean()) < 0.15
    assert gain[arithmetic].min() > gain[~arithmetic].max()
    assert ((predicted >= 0) & (predicted <= 1)).all()


def test_lexical_prediction_of_one_prompt_is_the_batch_prediction():
    """The request path predicts one prompt from its own table (coefficients and IDF in one gather)."""
    prompts, scores = _synthetic(300, seed=4)
    model = LexicalQualityModel(n_features=2**14).fit(prompts, scores, ["strong", "weak"])
    test_prompts, _ = _synthetic(40, seed=5)
    test_prompts += ["words no training prompt has: zyzzyva quixotic", "", "x" * 5000]
    batch = model.predict(test_prompts)
    for prompt, expected in zip(test_prompts, batch, strict=True):
        np.testing.assert_allclose(model.predict_one(prompt), expected, atol=1e-5)


def test_a_fit_compiles_what_the_request_path_runs():
    """The compiled functions are compiled (or loaded from Numba's cache) by the fit, in the training thread: a
    request's prediction afterwards, with options, numbers, an emoji or a lower case that is longer, needs no
    other specialisation."""
    from routerd_learned.learning import compiled

    prompts, scores = _synthetic(50, seed=6)
    model = LexicalQualityModel(n_features=2**12).fit(prompts, scores, ["strong", "weak"])
    made = compiled.buckets.signatures, compiled.predict.signatures
    assert len(made[0]) == len(made[1]) == 1
    model.predict_one("Which is 1,5 + 2?\nA. 3.5\nB. four \U0001f600\nC. ?!")
    model.predict_one("")
    model.predict_one("İstanbul")  # lower-casing makes it longer: the numpy definitions, the same types
    assert (compiled.buckets.signatures, compiled.predict.signatures) == made


def test_lexical_model_with_unknown_scores_and_a_model_never_scored():
    prompts, scores = _synthetic(200, seed=3)
    scores = np.column_stack([scores, np.full(len(prompts), np.nan)])
    scores[::2, 1] = np.nan  # feedback: half the prompts know nothing of the weak model
    model = LexicalQualityModel(n_features=2**14).fit(prompts, scores, ["strong", "weak", "new"])
    predicted = model.predict(["Compute 123 * 456 and explain. river"])
    assert predicted[0, 0] > predicted[0, 1]
    assert np.isnan(predicted[0, 2])


def test_prompt_tokens_mark_options_and_number_shapes():
    tokens = prompt_tokens("What is 12 + 345?\nA. 357\nB. seven\nAnswer:")
    assert {"N", "NN", "o:NN", "o:seven", "oshape:N", "options:2"} <= set(tokens)
    assert "12" not in tokens


@pytest.mark.parametrize(
    "prompt",
    [
        "What is 12 + 345?\nA. 357\nB. seven\nAnswer:",
        "Compute 1,234.5 * 6 - 7..8, then x1y: snake_case and ½ or c²d!",
        "Café au lait, naïve façade; 北京欢迎你, ٣٤ + ٥; ΣΑΣ σας.\n(A) un\n(B) 2,5\n(C) \u2026",  # noqa: RUF001
        "İstanbul'da",  # lower-casing makes it longer: the reference path
        "emoji \U0001f600 and text\nA. \U0001f600 smile\nB. 12 \U0001d400bc\nC. \nD. ?!",
        "",
        "x" * 5000 + " tail words 42",
    ],
)
def test_compiled_hashes_are_the_token_strings_and_character_ngrams_hashes(prompt):
    """With 2**32 buckets a column is a hash itself: the compiled view must give every token's hash as
    `reference_hashes` does from the token strings, and every character n-gram's as `char_ngram_hashes`."""
    assert _compiled_hashes(prompt) == _defined_hashes(prompt)
    assert len(reference_hashes(clip(prompt))) == len(prompt_tokens(prompt))


def _compiled_hashes(prompt: str) -> tuple[list[int], list[int]]:
    columns, counts = prompt_columns(prompt, 2**32)
    found = np.repeat(columns, counts)
    return sorted(found[found < 2**32].tolist()), sorted((found[found >= 2**32] - 2**32).tolist())


def _defined_hashes(prompt: str) -> tuple[list[int], list[int]]:
    return sorted(reference_hashes(clip(prompt)).tolist()), sorted(char_ngram_hashes(prompt).tolist())


@pytest.mark.skipif(not ROUTING_DATA.exists(), reason=f"{ROUTING_DATA} is not there (../shared beside the clone)")
def test_compiled_hashes_match_on_every_evaluation_prompt():
    with ROUTING_DATA.open() as handle:
        prompts = [json.loads(line)["prompt"] for line in handle][::7]
    mismatched = [prompt[:60] for prompt in prompts if _compiled_hashes(prompt) != _defined_hashes(prompt)]
    assert mismatched == []


def test_buckets_fold_the_hashes_into_each_view():
    prompt = "What is 12 + 345?\nA. 357\nB. seven\nAnswer:"
    columns, counts = prompt_columns(prompt, 2**10)
    tokens, chars = _defined_hashes(prompt)
    expected = np.concatenate([np.array(tokens) % 2**10, np.array(chars) % 2**10 + 2**10])
    assert np.repeat(columns, counts).tolist() == sorted(expected.tolist())


def test_neighbour_model_predicts_from_the_closest_prompts():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 16))
    vectors = np.vstack([centres[0] + 0.1 * rng.normal(size=(50, 16)), centres[1] + 0.1 * rng.normal(size=(50, 16))])
    scores = np.array([[1.0, 0.0]] * 50 + [[1.0, 1.0]] * 50)
    model = NeighbourQualityModel(k=10).fit_vectors(vectors, scores, ["strong", "weak"])
    predicted = model.predict_vectors(np.vstack([centres[0], centres[1]]))
    assert predicted[0, 1] < 0.2 < 0.8 < predicted[1, 1]
    assert predicted[:, 0] == pytest.approx([1.0, 1.0], abs=0.01)
    # feedback: the weak model's outcome is unknown for most prompts near the first centre
    scores[:40, 1] = np.nan
    model = NeighbourQualityModel(k=10, prior=0.0).fit_vectors(vectors, scores, ["strong", "weak"])
    predicted = model.predict_vectors(np.vstack([centres[0], centres[1]]))
    assert predicted[0, 1] == pytest.approx(0.0) and predicted[1, 1] == pytest.approx(1.0)


@pytest.mark.parametrize("prior", [2.0, 0.0])
@pytest.mark.parametrize("unknown", [False, True])
def test_one_prompt_is_predicted_as_a_batch_would_predict_it(prior, unknown):
    """The request path predicts one prompt at a time by a shorter way; it must give the batch's figures."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    scores = (rng.random((3000, 5)) < 0.6).astype(float)
    if unknown:
        scores[rng.random(scores.shape) < 0.3] = np.nan
        scores[:, 4] = np.nan  # a model no prompt scored
    model = NeighbourQualityModel(k=20, prior=prior).fit_vectors(vectors, scores, list("abcde"))
    queries = rng.normal(size=(6, 16)).astype(np.float32)
    batch, batch_support = model.predict_with_support(queries)
    for i in range(len(queries)):
        one, support = model.predict_with_support(queries[i : i + 1])
        np.testing.assert_allclose(one[0], batch[i], atol=1e-6)
        np.testing.assert_allclose(support[0], batch_support[i])
    assert np.isnan(batch[:, 4]).all() == unknown


def test_vector_index_switches_to_hnsw_when_large():
    from routerd_learned.learning.neighbours import EXACT_SEARCH_LIMIT

    rng = np.random.default_rng(1)
    small = VectorIndex(rng.normal(size=(EXACT_SEARCH_LIMIT, 8)).astype(np.float32))
    assert type(small.index).__name__ == "IndexFlatIP"
    vectors = rng.normal(size=(EXACT_SEARCH_LIMIT + 1, 8)).astype(np.float32)
    index = VectorIndex(vectors)
    assert "HNSW" in type(index.index).__name__
    similarities, ids = index.search(vectors[:5], 3)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert similarities[:, 0] == pytest.approx(1.0, abs=1e-5)


def test_the_hnsw_graph_is_the_same_for_the_same_vectors_and_threads_are_given_back():
    """Threads adding to an HNSW graph race, so it is built in one; FAISS's thread count is restored after."""
    import faiss

    from routerd_learned.learning.neighbours import EXACT_SEARCH_LIMIT

    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(EXACT_SEARCH_LIMIT * 2, 16)).astype(np.float32)
    queries = rng.normal(size=(200, 16)).astype(np.float32)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        found = [VectorIndex(vectors).search(queries, 50)[1] for _ in range(2)]
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
    np.testing.assert_array_equal(found[0], found[1])


class _CountingEmbedder:
    name = "counting"
    dimension = 3

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_cached_embedder_embeds_each_text_once_and_keeps_a_file(tmp_path):
    from routerd_learned.learning.neighbours import CachedEmbedder

    inner = _CountingEmbedder()
    cache = CachedEmbedder(inner, tmp_path / "vectors.npz")
    first = cache.embed(["a", "bb", "a"])
    assert first[:, 0].tolist() == [1, 2, 1] and inner.calls == [["a", "bb"]]
    again = CachedEmbedder(inner, tmp_path / "vectors.npz").embed(["bb", "ccc"])
    assert again[:, 0].tolist() == [2, 3] and inner.calls[-1] == ["ccc"]


def test_local_embedder_runs_offline(embeddings_extra):
    from routerd_learned.learning.neighbours import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    vectors = embedder.embed(["What is 2 + 2?", "Name the capital of France.", "What is two plus two?"])
    assert vectors.shape == (3, embedder.dimension) == (3, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-4)
    assert vectors[0] @ vectors[2] > vectors[0] @ vectors[1]


def test_combined_model_averages_and_ignores_missing_opinions():
    with pytest.raises(ValueError):
        CombinedQualityModel([], [])
    model = CombinedQualityModel([LexicalQualityModel(), LexicalQualityModel()], [3.0, 1.0])
    merged = model.combine([np.array([[0.8, np.nan]]), np.array([[0.4, 0.6]])])
    assert merged[0].tolist() == pytest.approx([0.7, 0.6])


def test_evaluation_with_three_models_and_costs():
    prompts, two = _synthetic(600, seed=4)
    rng = np.random.default_rng(5)
    middle = (rng.random(len(prompts)) < 0.6).astype(float)  # a middling model, right at random
    scores = np.column_stack([two[:, 0], middle, two[:, 1]])
    data = ScoredPrompts(
        ids=[str(i) for i in range(len(prompts))],
        prompts=prompts,
        models=["big", "medium", "small"],
        scores=scores,
        costs=np.tile([10.0, 3.0, 1.0], (len(prompts), 1)),
        cost_source="data",
    )
    train, test = split(data, 0.3, seed=0)
    result = evaluate(LexicalQualityModel(n_features=2**14), train, test)
    assert (result.strongest, result.weakest) == ("big", "small")
    assert len(result.singles) == 3
    assert result.random.apgr == pytest.approx(0.5)
    assert result.router.apgr > 0.75  # the arithmetic prompts are easy to tell apart
    assert result.oracle.apgr > result.router.apgr
    assert {p.strong_share for p in result.router.points} >= {0.0, 1.0}


# -- the command line -----------------------------------------------------------------------------------------------


def _synthetic_file(path: Path, n: int = 300) -> Path:
    prompts, scores = _synthetic(n, seed=9)
    rows = [
        {"id": f"r{i}", "source": "synthetic", "prompt": p, "scores": {"strong-model": s, "weak-model": w}}
        for i, (p, (s, w)) in enumerate(zip(prompts, scores.tolist(), strict=True))
    ]
    return _write(path, rows)


def routerd(tmp_path: Path, *args: str, plugins: str = ""):
    """``routerd --config FILE ARGS``: the configuration keeps the gateway's folder in `tmp_path`; `plugins` is
    more of it (``[plugins.learned]`` tables)."""
    config = tmp_path / "routerd.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n{plugins}')
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_cli_eval_routing_json(tmp_path):
    data = _synthetic_file(tmp_path / "routing.jsonl")
    result = routerd(tmp_path, "eval", "routing", "--data", str(data), "--scorer", "lexical", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["scorer"] == "lexical"
    assert report["n_test"] == 60 and report["n_train"] == 240
    assert report["strongest"] == "strong-model"
    assert report["random"]["apgr"] == pytest.approx(0.5)
    assert report["router"]["apgr"] > 0.7
    assert report["oracle"]["apgr"] >= report["router"]["apgr"]
    assert {"apgr", "cpt50", "cpt80", "points"} <= set(report["router"])


def test_cli_eval_routing_table_with_train_test_and_prices(tmp_path):
    train = _synthetic_file(tmp_path / "train.jsonl", 200)
    test = _synthetic_file(tmp_path / "test.jsonl", 80)
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps(
            {
                "strong-model": {"input_usd_per_mtok": 10, "output_usd_per_mtok": 30},
                "weak-model": {"input_usd_per_mtok": 0.5, "output_usd_per_mtok": 0.5},
            }
        )
    )
    args = ["eval", "routing", "--train", str(train), "--test", str(test), "--prices", str(prices)]
    result = routerd(tmp_path, *args, "--scorer", "lexical")
    assert result.exit_code == 0, result.output
    assert "APGR" in result.output and "oracle" in result.output and "random mixing" in result.output
    assert "estimated from the prices file" in result.output


def test_cli_eval_routing_says_whether_targets_are_met_and_fails_when_not(tmp_path):
    data = _synthetic_file(tmp_path / "routing.jsonl")
    base = ["eval", "routing", "--data", str(data), "--scorer", "lexical"]
    reached = json.loads(routerd(tmp_path, *base, "--json").output)["router"]
    easy = ["--min-apgr", f"{reached['apgr'] - 0.01:.4f}", "--max-cpt50", f"{reached['cpt50'] + 0.01:.4f}"]
    met = routerd(tmp_path, *base, *easy)
    assert met.exit_code == 0, met.output
    assert f"target: APGR >= {float(easy[1]):g} ({reached['apgr']:.3f}): met" in met.output
    assert "target: CPT(50%) <= " in met.output and met.output.rstrip().endswith("met")
    missed = routerd(tmp_path, *base, "--json", "--min-apgr", f"{reached['apgr'] + 0.01:.4f}")
    assert missed.exit_code == 1
    (target,) = json.loads(missed.output)["targets"]
    assert (target["metric"], target["met"]) == ("apgr", False) and target["value"] == pytest.approx(reached["apgr"])
    assert routerd(tmp_path, *base, "--max-cpt50", "1.5").exit_code == 2  # a share is in 0..1


def test_cli_eval_routing_reports_bad_data_in_one_line(tmp_path):
    bad = _write(tmp_path / "bad.jsonl", [{"prompt": "p", "scores": {"a": 1, "b": 0}}, {"prompt": "q"}])
    result = routerd(tmp_path, "eval", "routing", "--data", str(bad))
    assert result.exit_code == 2
    assert "bad.jsonl:2: missing 'scores'" in result.output
    result = routerd(tmp_path, "eval", "routing")
    assert result.exit_code == 2 and "--data" in result.output


def test_eval_is_the_learned_plugins_command_and_loads_no_model_library_until_it_runs(tmp_path):
    """``routerd eval`` is registered by the `learned` plugin: listed by ``routerd --help`` while the plugin is on,
    unknown when it is off. Listing it (every command loads the enabled plugins) imports none of SciPy, Numba,
    FAISS or torch; a real run, through the installed ``routerd`` script, answers as the CliRunner does."""
    off = routerd(tmp_path, "eval", "routing", "--help", plugins="[plugins.learned]\nenabled = false\n")
    assert off.exit_code == 2 and "No such command 'eval'" in off.output
    assert re.search(r"^\s+eval\s+Offline evaluations", routerd(tmp_path, "--help").output, re.M)
    config = tmp_path / "routerd.toml"  # as the last call left it: the plugin on
    listed = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom routerd.cli import main\ntry:\n    main()\nexcept SystemExit:\n"
         "    print(sorted(m for m in ('scipy', 'numba', 'faiss', 'torch') if m in sys.modules))",
         "--config", str(config), "--help"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "eval" in listed.stdout and listed.stdout.rstrip().endswith("[]"), listed.stdout
    data = _synthetic_file(tmp_path / "routing.jsonl")
    script = Path(sys.executable).with_name("routerd")
    run = subprocess.run(
        [str(script), "--config", str(config), "eval", "routing", "--data", str(data), "--scorer", "lexical",
         "--json", "--min-apgr", "0.99"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "ROUTERD_CONFIG": ""},
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # the target is missed: exit 1, the report all the same
    report = json.loads(run.stdout)
    assert report["n_test"] == 60 and report["targets"][0]["met"] is False


# -- the targets on real data ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not ROUTING_DATA.exists(), reason=f"{ROUTING_DATA} is not there (../shared beside the clone)")
def test_lexical_router_on_routellm_mmlu_gsm8k():
    """The held-out 20% (seed 0) with the lexical scorer, which needs no embedding model and trains in seconds.

    It meets the CPT(50%) target (<= 25%) but not the APGR target (0.70, measured 0.695): the default scorer,
    lexical + neighbours over all-MiniLM-L6-v2, meets both, and is checked by bench/routing_quality.py, because
    embedding the 15,344 prompts takes minutes on two cores (see docs/routing-quality.md).
    """
    started = time.perf_counter()
    train, test = split(read_scored_prompts(ROUTING_DATA), 0.2, seed=0)
    result = evaluate(LexicalQualityModel(), train, test)
    elapsed = time.perf_counter() - started
    print(f"lexical: APGR {result.router.apgr:.3f}, CPT(50%) {result.router.cpt50:.3f}, {elapsed:.0f} s")
    assert result.router.apgr >= 0.685
    assert result.router.cpt50 is not None and result.router.cpt50 <= 0.25
    assert result.random.apgr == pytest.approx(0.5)
    assert result.oracle.apgr > 1.0
    assert (result.strongest, result.weakest) == ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1")


# -- training from outcomes -------------------------------------------------------------------------------------


def test_ridge_matches_the_closed_form_weighted_solution():
    from scipy import sparse

    from routerd_learned.learning.lexical import _ridge

    rng = np.random.default_rng(0)
    x = sparse.random(120, 400, density=0.05, format="csr", random_state=1, dtype=np.float32)
    y = rng.random(120)
    for weight in (None, rng.integers(1, 5, 120).astype(float)):
        coef, intercept = _ridge(x, y, 3.0, weight, tol=1e-9)
        w = np.ones(120) if weight is None else weight
        dense = x.toarray().astype(float)
        mean_x, mean_y = w @ dense / w.sum(), w @ y / w.sum()
        centred = (dense - mean_x) * np.sqrt(w)[:, None]
        expected = np.linalg.solve(centred.T @ centred + 3.0 * np.eye(400), centred.T @ ((y - mean_y) * np.sqrt(w)))
        assert coef == pytest.approx(expected, abs=1e-5)
        assert intercept == pytest.approx(mean_y - mean_x @ expected, abs=1e-5)


def test_outcome_table_gathers_files_and_triples_with_means_and_counts():
    from routerd_learned.learning.outcomes import table

    data = ScoredPrompts(
        ids=["a", "b"], prompts=["p1", "p2"], models=["gpt", "mix"], scores=np.array([[1.0, 0.0], [np.nan, 1.0]])
    )
    triples = [("p1", "big", 0.0), ("p1", "big", 1.0), ("p3", "small", 0.5), ("", "x", 1.0), ("p4", "y", 7.0)]
    found = table(triples, [(data, {"gpt": "big"})])
    assert found.prompts == ["p1", "p2", "p3"] and found.models == ["big", "mix", "small"]
    assert np.array_equal(
        found.scores, np.array([[2 / 3, 0.0, np.nan], [np.nan, 1.0, np.nan], [np.nan, np.nan, 0.5]]), equal_nan=True
    )
    assert found.outcomes.tolist() == [[3, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert found.counts.tolist() == [1, 2, 1]  # prompts that know each model


# -- more than two models -----------------------------------------------------------------------------------------


def test_cli_eval_routing_with_four_models_prints_the_table_with_baselines(tmp_path):
    """Four models with different strengths per kind of prompt (tests/routing_data.py), costs in the data."""
    import routing_data

    data = routing_data.write(tmp_path / "four.jsonl", 800, seed=3)
    args = ["eval", "routing", "--data", str(data), "--scorer", "lexical", "--test-fraction", "0.25"]
    text = routerd(tmp_path, *args)
    assert text.exit_code == 0, text.output
    for row in ("tiny", "small", "medium", "large", "random mixing", "router (lexical)", "oracle"):
        assert re.search(rf"^{re.escape(row)}\s", text.output, re.M), row
    assert "4 models" in text.output and "from the data's costs" in text.output
    assert "strongest (best training mean): large; weak reference (cheapest): tiny" in text.output
    report = json.loads(routerd(tmp_path, *args, "--json").output)
    assert report["models"] == ["large", "medium", "small", "tiny"]
    assert [s["model"] for s in report["single_models"]] == report["models"]
    assert (report["strongest"], report["weakest"]) == ("large", "tiny")
    assert report["random"]["apgr"] == pytest.approx(0.5)
    # the kinds are easy to tell apart and the small models are enough for greetings: well above random
    assert report["router"]["apgr"] > 0.75
    assert report["oracle"]["apgr"] >= report["router"]["apgr"] - 0.05
    router_line = next(line for line in text.output.splitlines() if line.startswith("router (lexical)"))
    assert f"{report['router']['apgr']:.3f}" in router_line


def test_a_fit_asked_to_stop_ends_with_training_stopped():
    from routerd_learned.learning.quality import TrainingStopped

    prompts, scores = _synthetic(300, seed=6)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2  # after the vectorizer's first check and the first solver iteration

    with pytest.raises(TrainingStopped):
        LexicalQualityModel(n_features=2**14).fit(prompts, scores, ["strong", "weak"], stop=stop)
    assert len(calls) == 3

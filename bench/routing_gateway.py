"""In-process gateways for the routing benchmarks (routing_latency.py, routing_cost.py, routing_training.py): the real
plugins, the real `Router.decide`, a catalog of fake models of spread sizes, and the learned and benchmark scorers
given something to say the way their background jobs would give it to them.

- `Bench.start(models, plugins)`: the app as `routerd serve` builds it (`routerd.app.create_app`) with the installed
  plugins (those that start processes or reach the internet off, and the plugin template's example scorer off, so
  the figures are routerd's own), `models` fake models behind the fake backend (the last one an embedding model,
  ``routing.embed_model``), SQLite in a temporary folder, started through the app's own lifespan: so the garbage
  collector runs as in production, from the app's code (``gc.freeze()`` once the gateway has started, then the
  young threshold `routerd.app.GC_YOUNG_THRESHOLD`; never disabled). What a benchmark publishes afterwards (a
  trained state, benchmark figures) stays in the collector's sight, as what the background jobs build after
  start-up does in a running gateway.
- `train_learned`: a `Trained` state (the lexical model fitted on real prompts with random outcomes for every
  model; optionally a neighbour index of random clustered vectors) published through the scorer's own `_publish`,
  as its trainer does; the request prompts' vectors put in its embedding cache ("the embedding excluded").
- `publish_figures`: benchmark records for every model stored as a sync stores them, then the scorer's refresh.
- `timed`: p50 and p99 of `Router.decide` over prompts in each round (a `Timing`: the headline figures are the
  medians over the rounds, the spread beside them), the collector as in production; with `learners`
  (`Bench.learners`), each decision's outcome is shown to the learners after it (untimed), as the gateway's decision
  log does when a request ends, so that `diversity` and `speed` route with the history they would have (a full
  window of picks, a latency per model) and their state changes between decisions as in service.
  (`Router.decide` returns the decision; remembering it in the decision log is the request path's next step, not
  timed here.)
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from routerd.app import create_app
from routerd.gateway import Gateway
from routerd.schemas.catalog import BenchmarkRecord, Outcome
from routerd.schemas.openai import ChatRequest, Message
from routerd.testing import FAKE_PLUGIN, make_settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "routing" / "routellm_mmlu_gsm8k.jsonl"
OFF = ("local", "hf_leaderboard", "lmsys_arena", "example")
EMBED_MODEL = "bench-embed"
DIMENSION = 384  # as all-MiniLM-L6-v2


def prompts(n: int, seed: int = 0) -> list[str]:
    """Real prompts (the evaluation file's, so real lengths), or generated ones without it."""
    if DATA.exists():
        with DATA.open() as handle:
            found = [json.loads(line)["prompt"] for line in handle]
        random.Random(seed).shuffle(found)
        return found[:n]
    words = "the of a model river compute explain statement which following value energy law court".split()
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(10, 300))) for _ in range(n)]


def requests(texts: list[str]) -> list[ChatRequest]:
    return [ChatRequest(messages=[Message(role="user", content=t)]) for t in texts]


def model_names(n: int) -> list[str]:
    sizes = np.geomspace(0.5, 70, n - 1)
    return [f"bench-{i}-{s:.1f}b" for i, s in enumerate(sizes)] + [EMBED_MODEL]


class Bench:
    def __init__(self) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="routerd-bench-")
        self.gateway: Gateway | None = None
        self._lifespan = None

    async def start(self, models: int, plugins: dict | None = None) -> Gateway:
        """Build the app and enter its lifespan: the gateway starts, then the collector is set as in production."""
        names = model_names(models)
        fake = [{"name": n, "parameters": int(float(n.split("-")[2][:-1]) * 1e9)} for n in names[:-1]]
        fake.append({"name": EMBED_MODEL, "parameters": 22_000_000, "embeddings": True})
        tables = {name: {"enabled": False} for name in OFF}
        tables.update(plugins or {})
        tables["fake"] = {"models": fake}
        folder = Path(self.folder.name) / f"gw-{time.monotonic_ns()}"
        settings = make_settings(folder, {"plugins": tables, "routing": {"embed_model": EMBED_MODEL}})
        app = create_app(settings, [*entry_points(group="routerd"), FAKE_PLUGIN])
        lifespan = app.lifespan()
        await lifespan.__aenter__()  # gateway.start(), gc.freeze(), the app's young threshold
        self._lifespan = lifespan
        self.gateway = app.state.gateway
        return self.gateway

    async def close(self) -> None:
        """Leave the app's lifespan (the collector as before, the gateway closed). Close benches in the reverse
        order of their start, as nested lifespans would be left."""
        lifespan, self._lifespan = self._lifespan, None
        try:
            if lifespan is not None:
                await lifespan.__aexit__(None, None, None)
        finally:
            self.folder.cleanup()

    def scorer(self, name: str):
        assert self.gateway is not None
        return self.gateway.plugins.registry.scorers[name]

    def learners(self) -> list:
        """The registered learners, which the decision log shows every outcome to."""
        assert self.gateway is not None
        return list(self.gateway.plugins.registry.learners.values())


def train_learned(scorer, names: list[str], train_prompts: list[str], queries: list[str], index: int = 0) -> None:
    """Publish a trained state for `names` into the learned scorer (and, with `index`, a neighbour index of that
    many entries, the queries' vectors cached)."""
    from routerd_learned.learning.lexical import LexicalQualityModel
    from routerd_learned.learning.neighbours import NeighbourQualityModel
    from routerd_learned.training import Trained

    rng = np.random.default_rng(0)
    means = rng.uniform(0.4, 0.9, size=len(names))
    scores = (rng.random((len(train_prompts), len(names))) < means).astype(np.float64)
    lexical = LexicalQualityModel().fit(train_prompts, scores, names)
    neighbours = None
    if index:
        centres = rng.normal(size=(256, DIMENSION)).astype(np.float32)
        vectors = centres[rng.integers(0, 256, index)] + 0.5 * rng.normal(size=(index, DIMENSION)).astype(np.float32)
        outcomes = (rng.random((index, len(names))) < means).astype(np.float32)
        neighbours = NeighbourQualityModel(k=100).fit_vectors(vectors, outcomes, names)
        near = centres[rng.integers(0, 256, len(queries))] + 0.5 * rng.normal(size=(len(queries), DIMENSION))
        near /= np.linalg.norm(near, axis=1, keepdims=True)
        for text, vector in zip(queries, near.astype(np.float32), strict=True):
            scorer.embeddings.remember(text, vector)
    scorer._publish(
        Trained(
            models=list(names),
            column={m: j for j, m in enumerate(names)},
            counts_list=[len(train_prompts)] * len(names),
            prompts=len(train_prompts),
            lexical=lexical,
            neighbours=neighbours,
        )
    )


async def publish_figures(bench: Bench, names: list[str]) -> None:
    """Benchmark records for every model, stored as a sync stores them; the scorer then refreshes."""
    assert bench.gateway is not None
    rng = random.Random(0)
    records = []
    for name in names:
        for benchmark, high in (("bbh", 70), ("mmlu_pro", 60), ("math_lvl_5", 60), ("ifeval", 90), ("gpqa", 25),
                                ("musr", 25), ("arena_elo", 1400)):  # fmt: skip
            value = round(rng.uniform(0.2, 1) * high, 2)
            records.append(BenchmarkRecord("bench_source", name, benchmark, value, dt.datetime.now(dt.UTC)))
    await bench.gateway.benchmark_store.replace_source("bench_source", records)
    await bench.scorer("benchmarks").refresh()


async def learn(learners: Iterable, outcome: Outcome) -> None:
    """Show `outcome` to every learner, as the decision log does when a request ends."""
    for learner in learners:
        await learner.learn(outcome)


@dataclass
class Timing:
    """The p50 and p99 (and mean) of each round, in microseconds; the headline figures are their medians over the
    rounds, with the lowest and highest beside them."""

    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    means: list[float] = field(default_factory=list)

    def add(self, seconds: Iterable[float]) -> None:
        values = np.fromiter(seconds, dtype=np.float64) * 1e6
        self.p50s.append(float(np.percentile(values, 50)))
        self.p99s.append(float(np.percentile(values, 99)))
        self.means.append(float(values.mean()))

    @property
    def p50(self) -> float:
        return statistics.median(self.p50s)

    @property
    def p99(self) -> float:
        return statistics.median(self.p99s)

    @property
    def mean(self) -> float:
        return statistics.median(self.means)

    def spread(self) -> str:
        """``p50 310-420, p99 800-1,020 over 3 rounds`` (empty for one round)."""
        if len(self.p50s) < 2:
            return ""
        return (
            f"p50 {min(self.p50s):,.0f}-{max(self.p50s):,.0f}, p99 {min(self.p99s):,.0f}-{max(self.p99s):,.0f} "
            f"over {len(self.p50s)} rounds"
        )


async def timed(router, chats: list[ChatRequest], rounds: int, learners: Iterable | None = None) -> Timing:
    """p50, p99 and mean microseconds of `Router.decide` in each round, the collector as the app runs it (`learners`:
    see the module)."""
    timing = Timing()
    rng = random.Random(1)
    for _ in range(rounds):
        samples = []
        for chat in chats:
            started = time.perf_counter()
            decision = await router.decide(chat, pinned=None, preference=0.5)
            samples.append(time.perf_counter() - started)
            if learners is not None:
                await learn(learners, outcome_of(decision.chosen, decision.features, decision.id, rng))
        timing.add(samples)
    return timing


def outcome_of(entry, features, decision_id: str, rng: random.Random) -> Outcome:
    """The outcome the decision log would make of a decision for the catalog `entry` once its request ended well,
    with a latency that grows with the model's size (as the fake backend's models would answer)."""
    parameters = entry.info.parameters or 1_000_000_000
    latency = 100 * (parameters / 1e9) ** 0.5 * rng.uniform(0.8, 1.25)
    return Outcome(
        decision_id=decision_id,
        model=entry.id,
        features=features,
        ok=True,
        latency_ms=latency,
        ttft_ms=latency / 5,
        completion_tokens=64,
    )

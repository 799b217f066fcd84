"""Offline evaluation of a learned router: train on prompts with known outcomes, route held-out prompts over a sweep
of the quality preference, and measure quality against cost and against the share of calls to the strongest model.

The router here is the one the gateway will use: for each prompt, the quality model predicts every model's score
`q`, and with the quality preference `p` (``ROUTER_QUALITY_PREFERENCE``) the choice is the model that maximises
``p * q - (1 - p) * cost / reference_cost`` (`choose`). `reference_cost` is the strongest model's mean cost per call,
so that cost is counted in "strong calls". Ties go to the cheaper model.

"Strongest" is the model with the best mean score on the training data; the weak reference for PGR is the
cheapest (by mean cost). Without costs in the data or a prices file, a model's cost is taken to rise with its mean
training score (stronger models cost more), which for two models orders prompts exactly as RouteLLM's threshold
sweep does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from routerd_learned.learning import metrics
from routerd_learned.learning.dataset import ScoredPrompts
from routerd_learned.learning.quality import QualityModel

MAX_SWEEP_POINTS = 2001


@dataclass(frozen=True)
class CurvePoint:
    strong_share: float
    quality: float
    cost: float
    pgr: float
    preference: float | None = None  # None: a reference point (always weakest, always strongest)


@dataclass
class RouterCurve:
    name: str
    points: list[CurvePoint]
    apgr: float = 0.0
    cpt50: float | None = None
    cpt80: float | None = None

    def __post_init__(self) -> None:
        shares = [p.strong_share for p in self.points]
        pgrs = [p.pgr for p in self.points]
        self.apgr = metrics.apgr(shares, pgrs)
        self.cpt50 = metrics.calls_to_reach(shares, pgrs, 0.5)
        self.cpt80 = metrics.calls_to_reach(shares, pgrs, 0.8)

    def at_share(self, share: float) -> CurvePoint:
        """The curve interpolated at a strong-call share."""
        shares = [p.strong_share for p in self.points]
        values = {
            name: metrics.interpolate(shares, [getattr(p, name) for p in self.points], share)
            for name in ("quality", "cost", "pgr")
        }
        return CurvePoint(strong_share=share, **values)

    def best(self) -> CurvePoint:
        return max(self.points, key=lambda p: (p.quality, -p.cost))


@dataclass(frozen=True)
class SingleModel:
    model: str
    quality: float
    cost: float
    pgr: float
    strong_share: float


@dataclass
class Evaluation:
    scorer: str
    models: list[str]
    strongest: str
    weakest: str
    n_train: int
    n_test: int
    cost_source: str
    singles: list[SingleModel]
    random: RouterCurve
    router: RouterCurve
    oracle: RouterCurve
    timings: dict[str, float] = field(default_factory=dict)


def choose(predicted: np.ndarray, costs: np.ndarray, preference: float) -> np.ndarray:
    """The chosen model (column index) per prompt, trading predicted quality against cost.

    `costs` are in units of the reference cost (see the module's docstring); a model with no prediction (NaN) is
    never chosen unless no model has one.
    """
    utility = preference * np.nan_to_num(predicted, nan=-1e9) - (1.0 - preference) * costs
    utility = utility - 1e-9 * costs  # ties go to the cheaper model
    return np.argmax(utility, axis=1)


def sweep_preferences(predicted: np.ndarray, costs: np.ndarray, max_points: int = MAX_SWEEP_POINTS) -> np.ndarray:
    """Preferences at which the decisions differ: between each prompt's switch points (exact for two models).

    A prompt switches from its cheapest model k to its best predicted model b where
    ``p * dq = (1 - p) * dc``, i.e. ``p = dc / (dq + dc)``.
    """
    rows = np.arange(len(predicted))
    best = choose(predicted, costs, 1.0)
    cheapest = choose(predicted, costs, 0.0)
    dq = np.nan_to_num(predicted[rows, best] - predicted[rows, cheapest])
    dc = costs[rows, best] - costs[rows, cheapest]
    switching = (best != cheapest) & (dq > 0) & (dc > 0)
    switches = np.unique(dc[switching] / (dq[switching] + dc[switching]))
    if len(switches) > max_points:
        switches = np.unique(np.quantile(switches, np.linspace(0, 1, max_points)))
    between = (switches[1:] + switches[:-1]) / 2 if len(switches) > 1 else switches
    return np.unique(np.concatenate([[0.0, 1.0], between, switches]))


def call_costs(train: ScoredPrompts, test: ScoredPrompts) -> np.ndarray:
    """The cost of each model on each test prompt (n, m): known, or else each model's mean training score."""
    if test.costs is not None:
        return test.costs
    return np.tile(np.nanmean(train.scores, axis=0), (len(test), 1))


def curve_of(
    name: str,
    predicted: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    strongest: int,
    weakest: int,
) -> RouterCurve:
    """Route with `predicted` over the preference sweep; measure every distinct setting."""
    reference = float(costs[:, strongest].mean()) or 1.0
    units = costs / reference
    rows = np.arange(len(scores))
    weak_q, strong_q = float(scores[:, weakest].mean()), float(scores[:, strongest].mean())
    points = [
        CurvePoint(0.0, weak_q, float(costs[:, weakest].mean()), 0.0),
        CurvePoint(1.0, strong_q, float(costs[:, strongest].mean()), 1.0),
    ]
    seen: set[tuple[int, float]] = set()
    for preference in sweep_preferences(predicted, units):
        chosen = choose(predicted, units, float(preference))
        quality = float(scores[rows, chosen].mean())
        share = float(np.mean(chosen == strongest))
        if (round(share * len(rows)), quality) in seen:
            continue
        seen.add((round(share * len(rows)), quality))
        cost = float(costs[rows, chosen].mean())
        points.append(
            CurvePoint(share, quality, cost, float(metrics.pgr(quality, weak_q, strong_q)), float(preference))
        )
    points.sort(key=lambda p: (p.strong_share, p.preference if p.preference is not None else -1))
    return RouterCurve(name, points)


def random_mixing(scores: np.ndarray, costs: np.ndarray, strongest: int, weakest: int) -> RouterCurve:
    """Sending a random share of calls to the strongest model and the rest to the weakest: the expected curve."""
    weak = CurvePoint(0.0, float(scores[:, weakest].mean()), float(costs[:, weakest].mean()), 0.0)
    strong = CurvePoint(1.0, float(scores[:, strongest].mean()), float(costs[:, strongest].mean()), 1.0)
    return RouterCurve("random", [weak, strong])


def evaluate(model: QualityModel, train: ScoredPrompts, test: ScoredPrompts) -> Evaluation:
    """Train `model` on `train`, route `test`, and measure it beside random mixing, single models and the oracle."""
    if train.models != test.models:
        raise ValueError("train and test must score the same models")
    if np.isnan(test.scores).any():
        raise ValueError("every test prompt needs a score for every model")
    started = time.perf_counter()
    model.fit(train.prompts, train.scores, train.models)
    trained = time.perf_counter()
    predicted = model.predict(test.prompts)
    predicted_at = time.perf_counter()
    costs = call_costs(train, test)
    strongest = int(np.nanargmax(np.nanmean(train.scores, axis=0)))
    weakest = int(np.argmin(costs.mean(axis=0)))
    if weakest == strongest:
        raise ValueError(f"the strongest model, {train.models[strongest]}, is also the cheapest: nothing to trade")
    scores = test.scores
    weak_q, strong_q = float(scores[:, weakest].mean()), float(scores[:, strongest].mean())
    singles = [
        SingleModel(
            model=name,
            quality=float(scores[:, j].mean()),
            cost=float(costs[:, j].mean()),
            pgr=float(metrics.pgr(float(scores[:, j].mean()), weak_q, strong_q)),
            strong_share=1.0 if j == strongest else 0.0,
        )
        for j, name in enumerate(test.models)
    ]
    return Evaluation(
        scorer=model.name,
        models=list(test.models),
        strongest=test.models[strongest],
        weakest=test.models[weakest],
        n_train=len(train),
        n_test=len(test),
        cost_source=test.cost_source,
        singles=singles,
        random=random_mixing(scores, costs, strongest, weakest),
        router=curve_of(model.name, predicted, scores, costs, strongest, weakest),
        oracle=curve_of("oracle", scores, scores, costs, strongest, weakest),
        timings={
            "train_seconds": trained - started,
            "predict_ms_per_prompt": 1000 * (predicted_at - trained) / max(1, len(test)),
        },
    )

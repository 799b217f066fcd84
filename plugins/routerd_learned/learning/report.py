"""An `Evaluation` as a table for people and as JSON for machines."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from routerd_learned.learning.evaluation import Evaluation, RouterCurve

SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _pct(value: float | None) -> str:
    return "never" if value is None else f"{100 * value:.1f}%"


def _cost(value: float, known: bool) -> str:
    return f"${1000 * value:.3f}" if known else f"{value:.3f}"


def as_text(evaluation: Evaluation) -> str:
    e = evaluation
    known = e.cost_source != "unknown"
    cost_note = {
        "data": "cost per 1,000 calls in USD, from the data's costs",
        "prices": "cost per 1,000 calls in USD, estimated from the prices file (prompt length / 4 input tokens)",
        "unknown": "no costs known: a model's relative cost is its mean training score",
    }[e.cost_source]
    lines = [
        f"routing evaluation: {e.n_train} training prompts, {e.n_test} test prompts, {len(e.models)} models",
        f"scorer: {e.scorer} (trained in {e.timings.get('train_seconds', 0):.1f} s, "
        f"{e.timings.get('predict_ms_per_prompt', 0):.2f} ms per test prompt)",
        f"strongest (best training mean): {e.strongest}; weak reference (cheapest): {e.weakest}",
        f"{cost_note}",
        "",
        f"{'router':<34} {'APGR':>6} {'CPT(50%)':>9} {'CPT(80%)':>9} "
        f"{'quality':>8} {'PGR':>6} {'strong':>7} {'cost':>9}",
    ]

    def row(name: str, apgr: str, cpt50: str, cpt80: str, quality: float, pgr: float, share: float, cost: float):
        return (
            f"{name:<34} {apgr:>6} {cpt50:>9} {cpt80:>9} {quality:>8.4f} {pgr:>6.3f} {100 * share:>6.1f}% "
            f"{_cost(cost, known):>9}"
        )

    for single in e.singles:
        lines.append(row(single.model, "-", "-", "-", single.quality, single.pgr, single.strong_share, single.cost))
    lines.append(f"{'random mixing':<34} {e.random.apgr:>6.3f} {_pct(e.random.cpt50):>9} {_pct(e.random.cpt80):>9}")
    for curve, label in ((e.router, f"router ({e.scorer})"), (e.oracle, "oracle")):
        best = curve.best()
        lines.append(
            row(
                label,
                f"{curve.apgr:.3f}",
                _pct(curve.cpt50),
                _pct(curve.cpt80),
                best.quality,
                best.pgr,
                best.strong_share,
                best.cost,
            )
        )
    lines.append("(quality, PGR, strong and cost: a single model's own; for a router, its best-quality setting)")
    unit = " per 1,000 calls" if known else " (relative)"
    for target, share in ((0.5, e.router.cpt50), (0.8, e.router.cpt80)):
        if share is None:
            continue
        cost, random_cost = e.router.at_share(share).cost, e.random.at_share(target).cost
        saving = 1 - cost / random_cost if random_cost else 0.0
        lines.append(
            f"cost to recover {100 * target:.0f}% of the gap: {_cost(cost, known)}{unit} against "
            f"{_cost(random_cost, known)} for random mixing ({100 * saving:.0f}% less)"
        )
    lines += [
        "",
        f"router ({e.scorer}) at a share of strong calls (straight lines between measured settings):",
        f"{'strong':>7} {'quality':>8} {'PGR':>6} {'cost':>9} {'random PGR':>11}",
    ]
    for share in SHARES:
        point = e.router.at_share(share)
        lines.append(
            f"{100 * share:>6.0f}% {point.quality:>8.4f} {point.pgr:>6.3f} {_cost(point.cost, known):>9} {share:>11.3f}"
        )
    return "\n".join(lines)


def _curve(curve: RouterCurve) -> dict[str, Any]:
    return {
        "apgr": curve.apgr,
        "cpt50": curve.cpt50,
        "cpt80": curve.cpt80,
        "points": [asdict(p) for p in curve.points],
    }


def as_json(evaluation: Evaluation) -> dict[str, Any]:
    e = evaluation
    return {
        "scorer": e.scorer,
        "models": e.models,
        "strongest": e.strongest,
        "weakest": e.weakest,
        "n_train": e.n_train,
        "n_test": e.n_test,
        "cost_source": e.cost_source,
        "timings": e.timings,
        "single_models": [asdict(s) for s in e.singles],
        "random": _curve(e.random),
        "router": _curve(e.router),
        "oracle": _curve(e.oracle),
    }

"""Routing-quality metrics, as in the RouteLLM paper (Ong et al., 2024), for curves of quality against the share of
calls that go to the strongest model.

- PGR (performance gap recovered) = (quality - weak) / (strong - weak): 0 is the weak (cheapest) model's quality,
  1 the strongest model's; an oracle exceeds 1.
- APGR = the area under PGR against the strong-call share, over [0, 1]. The curve is the router's own points,
  joined by straight lines (the trapezoid rule), without smoothing or a convex hull: a point between two measured
  ones is what mixing those two settings at random would get. Random mixing of weak and strong scores PGR = share,
  so APGR = 0.5.
- CPT(x) = the smallest strong-call share at which the curve reaches PGR = x (the first crossing); None if never.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pgr(quality: float | np.ndarray, weak: float, strong: float) -> float | np.ndarray:
    """The share of the gap between the weak and the strong model's quality that `quality` recovers."""
    gap = strong - weak
    if gap <= 0:
        raise ValueError(f"the strongest model ({strong:.4f}) must beat the weakest ({weak:.4f}) to measure PGR")
    return (quality - weak) / gap


def _curve(shares: Sequence[float], pgrs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(shares, dtype=np.float64)
    y = np.asarray(pgrs, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("a curve needs at least two (share, PGR) points")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if x[0] > 1e-12 or x[-1] < 1 - 1e-12:
        raise ValueError("a curve must cover strong-call shares from 0 to 1")
    return x, y


def apgr(shares: Sequence[float], pgrs: Sequence[float]) -> float:
    """The area under the piecewise-linear PGR curve over strong-call shares 0..1."""
    x, y = _curve(shares, pgrs)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def calls_to_reach(shares: Sequence[float], pgrs: Sequence[float], target: float) -> float | None:
    """CPT: the smallest strong-call share at which the piecewise-linear curve reaches PGR `target`."""
    x, y = _curve(shares, pgrs)
    reached = np.nonzero(y >= target - 1e-12)[0]
    if not len(reached):
        return None
    i = int(reached[0])
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))


def interpolate(shares: Sequence[float], values: Sequence[float], at: float) -> float:
    """The curve's value at strong-call share `at` (straight lines between points)."""
    x = np.asarray(shares, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    return float(np.interp(at, x[order], np.asarray(values, dtype=np.float64)[order]))

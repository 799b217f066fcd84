"""Combining the scorers' contributions into one ranking, with the reasons kept.

Each scorer gives each candidate a `Contribution` with an aspect. Per candidate:
quality = the weighted mean of the quality contributions (0.5 with none), efficiency likewise;
total = preference * quality + (1 - preference) * efficiency, times every multiplier.
A scorer that fails is left out of this decision and logged; scorers are asked in turn until the
budget is spent (a scorer must not block: slow work belongs in its background tasks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from routerd.catalog import CatalogEntry
from routerd.schemas.catalog import Contribution, PromptFeatures

log = logging.getLogger("routerd.routing")


@dataclass(slots=True)
class ScoredCandidate:
    entry: CatalogEntry
    quality: float
    efficiency: float
    total: float
    contributions: dict[str, Contribution] = field(default_factory=dict)

    def explain(self) -> dict[str, Any]:
        found = {
            "model": self.entry.id,
            "backend": self.entry.info.backend,
            "total": round(self.total, 4),
            "quality": round(self.quality, 4),
            "efficiency": round(self.efficiency, 4),
            "contributions": {
                name: {"score": round(c.score, 4), "weight": c.weight, "aspect": c.aspect, "reason": c.reason}
                for name, c in self.contributions.items()
            },
        }
        if self.entry.info.name != self.entry.id:  # a second backend's copy: its name, for what learns per name
            found["name"] = self.entry.info.name
        return found

    def summary(self) -> str:
        """The total and the two weightiest reasons."""
        best = sorted(self.contributions.items(), key=lambda kv: -kv[1].weight)[:2]
        parts = "; ".join(f"{name}: {c.reason}" for name, c in best if c.reason)
        return f"score {self.total:.2f}" + (f" ({parts})" if parts else "")


def combine(
    entries: Sequence[CatalogEntry], opinions: Mapping[str, Mapping[str, Contribution]], preference: float
) -> list[ScoredCandidate]:
    """The candidates ranked best first; ties keep the catalog's order.

    A scorer's mapping may hold models that are not candidates (a table computed ahead): only the candidates'
    entries are read, by catalog id where it differs from the model's name (``backend/name``: a second backend
    serving a model of that name), then by name; so a scorer keys a contribution by id to give that copy its
    own, and by name to give every copy the same."""
    scorers = [(name, found) for name, found in opinions.items() if found]  # no opinion: nothing to look up
    scored = []
    for entry in entries:
        name = entry.info.name
        alias = entry.id if entry.id != name else None
        quality = quality_weight = efficiency = efficiency_weight = 0.0
        multiplier = 1.0
        mine: dict[str, Contribution] = {}
        for scorer, contributions in scorers:
            c = None if alias is None else contributions.get(alias)
            if c is None:
                c = contributions.get(name)
                if c is None:
                    continue
            mine[scorer] = c
            score = c.score
            if not 0.0 <= score <= 1.0:
                score = 1.0 if score > 1.0 else 0.0  # below 0, or NaN
            aspect = c.aspect
            if aspect == "multiplier":
                multiplier *= score
            elif aspect == "efficiency":
                efficiency += score * c.weight
                efficiency_weight += c.weight
            else:
                quality += score * c.weight
                quality_weight += c.weight
        q = quality / quality_weight if quality_weight > 0 else 0.5
        e = efficiency / efficiency_weight if efficiency_weight > 0 else 0.5
        scored.append(ScoredCandidate(entry, q, e, (preference * q + (1 - preference) * e) * multiplier, mine))
    scored.sort(key=lambda s: -s.total)  # stable: ties keep the catalog's order
    return scored


async def score_candidates(
    scorers: Mapping[str, Any],
    features: PromptFeatures,
    entries: Sequence[CatalogEntry],
    preference: float,
    budget: float = 0.05,
) -> list[ScoredCandidate]:
    """Ask every scorer in turn (no task per scorer: most answer without awaiting anything);
    a scorer that fails is left out, and once `budget` seconds are spent the rest are skipped."""
    infos = [e.info for e in entries]
    opinions: dict[str, Mapping[str, Contribution]] = {}
    deadline = time.perf_counter() + budget
    for name, scorer in scorers.items():
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            log.warning("scoring budget spent: scorer %s left out of a decision", name)
            continue
        try:
            opinions[name] = await scorer.score(features, infos)
        except Exception as exc:
            log.warning("scorer %s left out of a decision: %s", name, type(exc).__name__)
    return combine(entries, opinions, preference)

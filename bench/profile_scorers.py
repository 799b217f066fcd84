"""What reading runtime profiles costs a routing decision: the ``profiles`` scorer and the ``speed`` scorer with
profiles, side by side with builtin scorers that read no profile (``size_fit``, ``speed`` on its size estimate).

    .venv/bin/python bench/profile_scorers.py [--models 50] [--decisions 2000] [--rounds 5]

Each line: microseconds per decision (one ``score()`` over every candidate), the median of `--rounds` rounds (the
lowest and highest beside it: the machine is shared and noisy), and the ratio to ``size_fit``. Every model has a
profile with three categories; the prompt's category is one of them. The target: reading profiles costs no more per
decision than a scorer that reads none (ratio <= 1), since the request path asks every scorer.

The scorers are timed in this process with the garbage collector as the app runs it (bench/production_gc.py): once
the scorers and profiles are built, ``gc.freeze()`` and the young threshold `routerd.app.GC_YOUNG_THRESHOLD`, as the
app's lifespan does after start-up; it is never disabled.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

from routerd import ModelInfo, PromptFeatures
from routerd_profiling import CategoryProfile, ProfileIndex, RuntimeProfile
from routerd_scorers.profiles import ProfilesScorer
from routerd_scorers.size_fit import SizeFitScorer
from routerd_scorers.speed import SpeedScorer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import production_gc


def profiles_for(models: list[ModelInfo]) -> ProfileIndex:
    index = ProfileIndex()
    now = dt.datetime.now(dt.UTC)
    categories = {
        name: CategoryProfile(
            category=name,
            quality=0.6,
            samples=4,
            judged=3,
            unjudged=1,
            ttft_ms=120,
            tokens_per_second=40,
            latency_ms=900,
        )
        for name in ("math", "coding", "general")
    }
    index.replace(
        RuntimeProfile(backend=m.backend, model=m.name, suite_version="bench+0", profiled_at=now, categories=categories)
        for m in models
    )
    return index


async def per_decision(
    scorer, features: PromptFeatures, models: list[ModelInfo], decisions: int, rounds: int
) -> list[float]:
    """Microseconds per decision in each round."""
    for _ in range(200):  # warm up (and fill any cache a scorer keeps)
        await scorer.score(features, models)
    found = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(decisions):
            await scorer.score(features, models)
        found.append((time.perf_counter() - started) / decisions * 1e6)
    return found


async def main(args: argparse.Namespace) -> None:
    models = [
        ModelInfo(name=f"model-{i}", backend="ollama", parameters=(i + 1) * 1_000_000_000) for i in range(args.models)
    ]
    index = profiles_for(models)
    features = PromptFeatures(text="Write a Python function that merges intervals.", category="coding")
    scorers = [
        ("size_fit (reads no profile)", SizeFitScorer(1.0)),
        ("speed, size estimate (no profiles)", SpeedScorer(1.0, 500.0)),
        ("speed, profiled latency", SpeedScorer(1.0, 500.0, profiles=index)),
        ("profiles", ProfilesScorer(index, 2.0)),
    ]
    baseline = None
    print(f"{args.models} candidates, median of {args.rounds} rounds of {args.decisions} decisions")
    with production_gc.as_in_production():
        print(production_gc.describe())
        for label, scorer in scorers:
            rounds = await per_decision(scorer, features, models, args.decisions, args.rounds)
            micros = statistics.median(rounds)
            baseline = baseline or micros
            print(f"  {label:38s} {micros:8.1f} us per decision ({min(rounds):.1f}-{max(rounds):.1f})  "
                  f"{micros / args.models:6.2f} us per candidate  x{micros / baseline:.2f} of size_fit")  # fmt: skip
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} (1, 5, 15 min)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))

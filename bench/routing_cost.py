"""What the learned and benchmark scorers add to every routing decision, measured side by side in one run.

    .venv/bin/python bench/routing_cost.py [--models 4 50] [--requests 1000] [--rounds 5]

In-process gateways (bench/routing_gateway.py), the same fake catalog, the same prompts, `Router.decide` timed
(prompt features, candidates, every scorer, the combination; the decision log's record is the request path's):

- ``before``: the default plugins without `learned` and `benchmarks` (the routing of main before them);
- ``after, nothing to say``: with both, the learned scorer untrained (no outcomes) and no benchmark figures
  stored (what a gateway without data pays);
- ``after, trained``: the learned scorer with a lexical model for every catalog model (3,000 prompts) and
  benchmark figures for every model.

Rounds alternate the three gateways so the machine's noise falls on each alike. Printed per catalog size: CPU
time per decision (the steadiest figure on a shared machine), wall p50 and p99, and the difference to
``before``, each the median over the rounds (the CPU's lowest and highest beside it); then the cost of each
scorer's ``score()`` alone, the median of three passes.

The garbage collector runs as in production: each gateway is started through the app's own lifespan
(bench/routing_gateway.py: ``gc.freeze()`` after start-up, the young threshold `routerd.app.GC_YOUNG_THRESHOLD`),
and nothing disables it around timed code (a collection that falls in a round is part of what it costs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import production_gc
import routing_gateway as rg

from routerd.routing.features import extract_features

SETUPS = ("before", "after, nothing to say", "after, trained")


async def _round(router, chats) -> tuple[float, list[float]]:
    cpu = time.thread_time()
    samples = []
    for chat in chats:
        started = time.perf_counter()
        await router.decide(chat, pinned=None, preference=0.5)
        samples.append(time.perf_counter() - started)
    return (time.thread_time() - cpu) / len(chats), samples


async def _scorer_cost(scorer, features, infos) -> float:
    cpu = time.thread_time()
    for f in features:
        await scorer.score(f, infos)
    return (time.thread_time() - cpu) / len(features) * 1e6


async def measure(models: int, texts: list[str], train: list[str], rounds: int) -> None:
    chats = rg.requests(texts)
    benches = {name: rg.Bench() for name in SETUPS}
    try:
        off = {"learned": {"enabled": False}, "benchmarks": {"enabled": False}}
        gateways = {
            "before": await benches["before"].start(models, off),
            "after, nothing to say": await benches["after, nothing to say"].start(
                models, {"learned": {"embedder": "none"}}
            ),
            "after, trained": await benches["after, trained"].start(models, {"learned": {"embedder": "none"}}),
        }
        trained = benches["after, trained"]
        names = [e.info.name for e in gateways["after, trained"].catalog]
        await rg.publish_figures(trained, names)
        rg.train_learned(trained.scorer("learned"), names, train, texts)
        for gateway in gateways.values():  # warm up
            for chat in chats[:50]:
                await gateway.router.decide(chat, pinned=None, preference=0.5)
        cpu: dict[str, list[float]] = {name: [] for name in SETUPS}
        wall = {name: rg.Timing() for name in SETUPS}
        if not production_gc.is_as_in_production():
            raise RuntimeError(f"not the collector as in production: {production_gc.describe()}")
        for round_ in range(rounds):
            order = list(gateways.items())
            for name, gateway in order if round_ % 2 == 0 else order[::-1]:
                used, samples = await _round(gateway.router, chats)
                cpu[name].append(used * 1e6)
                wall[name].add(samples)
        print(f"\n{models} models in the catalog, {len(chats)} decisions a round, median of {rounds} rounds")
        print(production_gc.describe())
        print(
            f"{'Router.decide (microseconds)':<28} {'CPU':>7} {'p50':>7} {'p99':>7} {'CPU added':>10}"
            f"  {'CPU lowest-highest':>18}"
        )
        base = statistics.median(cpu["before"])
        for name in SETUPS:
            used = statistics.median(cpu[name])
            added = f"{'':>10}" if name == "before" else f"{used - base:+10.1f}"
            print(
                f"{name:<28} {used:>7.1f} {wall[name].p50:>7.1f} {wall[name].p99:>7.1f} {added}"
                f"  {min(cpu[name]):>8.1f}-{max(cpu[name]):<9.1f}"
            )
        features = [extract_features(c) for c in chats]
        line = []
        for name in SETUPS[1:]:
            gateway = gateways[name]
            infos = [e.info for e in gateway.catalog]
            for scorer in ("learned", "benchmarks"):
                cost = statistics.median(
                    [await _scorer_cost(gateway.plugins.registry.scorers[scorer], features, infos) for _ in range(3)]
                )
                line.append(f"{scorer} ({name.split(', ')[1]}) {cost:.1f} us")
        print("score() alone, CPU, median of 3 passes: " + "; ".join(line))
    finally:
        for bench in reversed(benches.values()):
            await bench.close()


async def main_async(args) -> int:
    texts = rg.prompts(3000 + args.requests)
    train, queries = texts[:3000], texts[3000:]
    for models in args.models:
        await measure(models, queries, train, args.rounds)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min; 2 cores shared)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[4, 50])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

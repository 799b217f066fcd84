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
``before``; then the cost of each scorer's ``score()`` alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import routing_gateway as rg

from routerd.routing.features import extract_features

SETUPS = ("before", "after, nothing to say", "after, trained")


async def _round(router, chats) -> tuple[float, list[float]]:
    gc.disable()
    try:
        cpu = time.thread_time()
        samples = []
        for chat in chats:
            started = time.perf_counter()
            await router.decide(chat, pinned=None, preference=0.5)
            samples.append(time.perf_counter() - started)
        return (time.thread_time() - cpu) / len(chats), samples
    finally:
        gc.enable()
        gc.collect()


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
        wall: dict[str, list[np.ndarray]] = {name: [] for name in SETUPS}
        for _ in range(rounds):
            for name, gateway in gateways.items():
                used, samples = await _round(gateway.router, chats)
                cpu[name].append(used)
                wall[name].append(np.array(samples))
        print(f"\n{models} models in the catalog, {len(chats)} decisions a round, best of {rounds} rounds")
        print(f"{'Router.decide (microseconds)':<28} {'CPU':>7} {'p50':>7} {'p99':>7} {'CPU added':>10}")
        base = min(cpu["before"]) * 1e6
        for name in SETUPS:
            best = min(cpu[name]) * 1e6
            p50 = min(float(np.percentile(w, 50)) for w in wall[name]) * 1e6
            p99 = min(float(np.percentile(w, 99)) for w in wall[name]) * 1e6
            added = "" if name == "before" else f"{best - base:+10.1f}"
            print(f"{name:<28} {best:>7.1f} {p50:>7.1f} {p99:>7.1f} {added}")
        features = [extract_features(c) for c in chats]
        line = []
        for name in SETUPS[1:]:
            gateway = gateways[name]
            infos = [e.info for e in gateway.catalog]
            for scorer in ("learned", "benchmarks"):
                cost = min(
                    [await _scorer_cost(gateway.plugins.registry.scorers[scorer], features, infos) for _ in range(3)]
                )
                line.append(f"{scorer} ({name.split(', ')[1]}) {cost:.1f} us")
        print("score() alone, CPU: " + "; ".join(line))
    finally:
        for bench in benches.values():
            await bench.close()


async def main_async(args) -> int:
    texts = rg.prompts(3000 + args.requests)
    train, queries = texts[:3000], texts[3000:]
    for models in args.models:
        await measure(models, queries, train, args.rounds)
    print(f"\nload average {os.getloadavg()[0]:.1f} (2 cores shared with other work)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[4, 50])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

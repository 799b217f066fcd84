"""Does training the learned scorer hold up requests? Event-loop lag and decision latency while it trains.

    .venv/bin/python bench/routing_training.py [--data ../shared/eval/routing/routellm_mmlu_gsm8k.jsonl]

An in-process gateway (bench/routing_gateway.py) whose learned scorer learns from `--data` (15,344 prompts, two
models mapped to two fake catalog models) in its background thread, as it does at start-up. While the round
runs, the event loop decides a routed request every millisecond; the same is measured again once it has finished.
Printed: the training time, and for "while training" and "after": decisions made, their p50 / p99 / max latency,
and the event loop's lag (how late a 1 ms sleep wakes up, p99 and max). The thread holds Python's lock only in
short stretches (numpy, SciPy and scikit-learn release it in their loops), so the lag is that of a busy CPU, not
of a blocked loop.

There are no rounds to take a median of: training happens once per start, so each phase is measured once, and its
p50 is the median decision of that phase (p99 and max beside it). The gateway is started through the app's own
lifespan (bench/routing_gateway.py), so the garbage collector runs as in production (``gc.freeze()`` after
start-up, the young threshold `routerd.app.GC_YOUNG_THRESHOLD`, never disabled); its state is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import production_gc
import routing_gateway as rg


async def _decide_while(router, chats, running) -> tuple[list[float], list[float]]:
    decisions, lags = [], []
    i = 0
    while running():
        started = time.perf_counter()
        await router.decide(chats[i % len(chats)], pinned=None, preference=0.5)
        decisions.append(time.perf_counter() - started)
        i += 1
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - before - 0.001)
    return decisions, lags


def _row(label: str, decisions: list[float], lags: list[float]) -> str:
    d, lag = np.array(decisions) * 1e3, np.array(lags) * 1e3
    return (
        f"{label:<18} {len(d):>9} {np.percentile(d, 50):>8.2f} {np.percentile(d, 99):>8.2f} {d.max():>8.1f} "
        f"{np.percentile(lag, 99):>9.2f} {lag.max():>8.1f}"
    )


async def main_async(args) -> int:
    if not args.data.exists():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    names = rg.model_names(4)
    mapping = {"gpt-4-1106-preview": names[2], "mixtral-8x7b-instruct-v0.1": names[1]}
    chats = rg.requests(rg.prompts(500))
    bench = rg.Bench()
    try:
        started = time.perf_counter()
        learned_settings = {"data": [str(args.data)], "model_names": mapping, "embedder": "none"}
        gateway = await bench.start(4, {"learned": learned_settings})
        learned = bench.scorer("learned")
        for chat in chats[:20]:  # warm-up (first calls compile and import), not measured
            await gateway.router.decide(chat, pinned=None, preference=0.5)
        collector = production_gc.describe()
        training = await _decide_while(gateway.router, chats, lambda: learned.trained is None)
        seconds = time.perf_counter() - started
        deadline = time.perf_counter() + min(seconds, 10.0)
        after = await _decide_while(gateway.router, chats, lambda: time.perf_counter() < deadline)
    finally:
        await bench.close()
    trained = learned.trained
    print(
        f"learned: trained on {trained.prompts:,} prompts ({len(trained.models)} models) in {trained.seconds:.1f} s "
        f"in its thread; {seconds:.1f} s from start-up to the model in use"
    )
    print(f"\n{'milliseconds':<18} {'decisions':>9} {'p50':>8} {'p99':>8} {'max':>8} {'lag p99':>9} {'lag max':>8}")
    print(_row("while training", *training))
    print(_row("after", *after))
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min; 2 cores shared)")
    print(collector)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=rg.DATA)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

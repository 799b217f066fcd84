"""``routerd eval routing``: offline evaluation of the learned router on a JSONL file of scored prompts.

The `learned` plugin registers the ``eval`` group (`register_commands`), so ``routerd --help`` lists it; numpy,
SciPy, Numba, FAISS and the embedding model load only when the command runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from routerd_learned.learning import DEFAULT_SCORER, SCORERS, LearningError

DEFAULT_OUTPUT_TOKENS = 256  # routerd_learned.learning.dataset.DEFAULT_OUTPUT_TOKENS, without importing numpy here

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("eval", help="Offline evaluations.")
def eval_group() -> None:
    pass


@eval_group.command(
    "routing",
    help=(
        "Train the learned router on prompts with known scores, route held-out prompts over a sweep of the "
        "quality preference, and print quality against cost and against the share of calls to the strongest "
        "model (PGR, APGR, CPT), beside random mixing, each single model and the oracle. Data: JSONL lines "
        '{"prompt", "scores": {model: 0..1}, optional "costs": {model: USD}}.'
    ),
)
@click.option("--data", type=_FILE, help="All the data: split into train and test (--test-fraction, --seed).")
@click.option("--train", "train_path", type=_FILE, help="Training data (with --test instead of --data).")
@click.option("--test", "test_path", type=_FILE, help="Test data (with --train).")
@click.option("--test-fraction", type=float, default=0.2, show_default=True, help="Share of --data held out.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the train/test split.")
@click.option("--prices", type=_FILE, help="USD per million input/output tokens per model, for data without costs.")
@click.option(
    "--output-tokens",
    type=int,
    default=DEFAULT_OUTPUT_TOKENS,
    show_default=True,
    help="Answer length assumed when estimating costs from prices.",
)
@click.option(
    "--scorer",
    type=click.Choice(sorted(SCORERS)),
    default=DEFAULT_SCORER,
    show_default=True,
    help=(
        "The learned quality model; neighbours and combined need the extra 'embeddings' (auto: combined where it "
        "is installed, else lexical)."
    ),
)
@click.option(
    "--embedding-cache",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep prompt embeddings in this .npz file between runs (neighbours, combined).",
)
@click.option(
    "--min-apgr",
    type=click.FloatRange(0, 2),
    default=None,
    help="Target: the router's APGR at least this (e.g. 0.70); says whether it is met, exit 1 if not.",
)
@click.option(
    "--max-cpt50",
    type=click.FloatRange(0, 1),
    default=None,
    help="Target: CPT(50%) at most this share of strong calls (e.g. 0.25); says whether it is met, exit 1 if not.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (metrics and every point of each curve).")
def eval_routing(
    data: Path | None,
    train_path: Path | None,
    test_path: Path | None,
    test_fraction: float,
    seed: int,
    prices: Path | None,
    output_tokens: int,
    scorer: str,
    embedding_cache: Path | None,
    min_apgr: float | None,
    max_cpt50: float | None,
    as_json: bool,
) -> None:
    from routerd_learned.learning.dataset import DatasetError, read_prices, read_scored_prompts, split
    from routerd_learned.learning.evaluation import evaluate
    from routerd_learned.learning.report import as_json as report_json
    from routerd_learned.learning.report import as_text

    split_given = train_path is not None or test_path is not None
    if (data is not None and split_given) or (data is None and (train_path is None or test_path is None)):
        raise click.UsageError("give either --data FILE, or both --train FILE and --test FILE")
    try:
        if data is not None:
            train, test = split(read_scored_prompts(data), test_fraction, seed)
        else:
            assert train_path is not None and test_path is not None
            train, test = read_scored_prompts(train_path), read_scored_prompts(test_path)
            if train.models != test.models:
                raise DatasetError(f"{train_path} scores {train.models}, but {test_path} scores {test.models}")
        if prices is not None:
            price_table = read_prices(prices)
            train = train.with_prices(price_table, output_tokens)
            test = test.with_prices(price_table, output_tokens)
        from routerd_learned.learning.scorers import build_quality_model, resolve_scorer

        if resolve_scorer(scorer) != "lexical" and embedding_cache is None:
            click.echo(
                f"routerd eval routing: embedding {len(train) + len(test)} prompts with all-MiniLM-L6-v2 takes minutes "
                "on a CPU; --embedding-cache FILE keeps them for the next run (--scorer lexical needs none)",
                err=True,
            )
        model = build_quality_model(scorer, embedding_cache=embedding_cache)
        evaluation = evaluate(model, train, test)
    except (LearningError, ValueError) as exc:
        click.echo(f"routerd eval routing: {exc}", err=True)
        sys.exit(2)
    targets = _targets(evaluation.router, min_apgr, max_cpt50)
    if as_json:
        click.echo(json.dumps({**report_json(evaluation), "targets": targets}, indent=2))
    else:
        click.echo(as_text(evaluation))
        for target in targets:
            click.echo(f"target: {_target_text(target)}: {'met' if target['met'] else 'NOT met'}")
    if not all(target["met"] for target in targets):
        sys.exit(1)


def _targets(router, min_apgr: float | None, max_cpt50: float | None) -> list[dict]:
    """The targets asked for, each with the router's figure and whether it meets it."""
    targets = []
    if min_apgr is not None:
        targets.append({"metric": "apgr", "target": min_apgr, "value": router.apgr, "met": router.apgr >= min_apgr})
    if max_cpt50 is not None:
        reached = router.cpt50  # None: the curve never reaches half the gap
        met = reached is not None and reached <= max_cpt50
        targets.append({"metric": "cpt50", "target": max_cpt50, "value": reached, "met": met})
    return targets


def _target_text(target: dict) -> str:
    if target["metric"] == "apgr":
        return f"APGR >= {target['target']:g} ({target['value']:.3f})"
    shown = "never reached" if target["value"] is None else f"{100 * target['value']:.1f}%"
    return f"CPT(50%) <= {100 * target['target']:g}% ({shown})"

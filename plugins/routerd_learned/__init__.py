"""Builtin plugin ``learned``: each candidate's quality for the prompt, predicted from prompts with known outcomes.

Outcomes: evaluation files (``data``, the JSONL format of ../shared/eval/routing, model names translated by
``model_names``), user feedback on routed answers, and profiling runs' judged per-prompt scores. A lexical model
(hashed words and character n-grams, a ridge regression per model) predicts at once; with an embedder, the
outcomes of the most similar known prompts (FAISS) are averaged in when the prompt's embedding is at hand.
Training runs in a background thread, again whenever ``retrain_after`` new outcomes arrive or the database has
new ones; with no outcomes the scorer has no opinion and costs nothing. See docs/routing-quality.md.

Hooks: the scorer is registered as a scorer (it predicts) and as a learner (it learns from every outcome and rating),
one object shared by both hooks (``context.shared``); ``routerd eval routing``, the offline evaluation of the same
models, is this plugin's command (`register_commands`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

import routerd
from routerd_learned.embedding import LocalEmbedder, VectorStore
from routerd_learned.scorer import LearnedScorer

GATEWAY_WAIT_MS = 15.0  # the default wait for a backend-served embedding (the local one: none)


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    weight: Annotated[float, msgspec.Meta(ge=0, description="Weight of a prediction at full confidence.")] = 2.0
    confidence_outcomes: Annotated[
        float,
        msgspec.Meta(gt=0, description="Known outcomes of a model at which its prediction counts half its weight."),
    ] = 50.0
    data: Annotated[
        list[str],
        msgspec.Meta(description="Evaluation files to learn from (JSONL: prompt, scores per model), read at start."),
    ] = []
    model_names: Annotated[
        dict[str, str],
        msgspec.Meta(description="A data file's model name -> the catalog's name for it; others are kept as they are."),
    ] = {}
    feedback: Annotated[bool, msgspec.Meta(description="Learn from user feedback on routed answers.")] = True
    profiles: Annotated[bool, msgspec.Meta(description="Learn from profiling runs' judged per-prompt scores.")] = True
    min_outcomes: Annotated[
        int, msgspec.Meta(ge=1, description="Outcomes needed before the first training; with fewer, no opinion.")
    ] = 20
    retrain_after: Annotated[
        int, msgspec.Meta(ge=1, description="New outcomes (feedback given here) that start another training.")
    ] = 20
    reload_interval: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds between looks for new outcomes in the database.")
    ] = 300.0
    embedder: Annotated[
        Literal["auto", "gateway", "local", "none"],
        msgspec.Meta(
            description=(
                "Prompt embeddings for the neighbour model: `gateway` (the model `routing.embed_model` names), "
                "`local` (all-MiniLM-L6-v2, extra `embeddings`), `none` (lexical only); `auto`: the first available."
            )
        ),
    ] = "auto"
    embedding_wait_ms: Annotated[
        Annotated[float, msgspec.Meta(ge=0, le=40)] | None,
        msgspec.Meta(
            description=(
                "How long a request may wait for its prompt's embedding before the lexical model decides alone; "
                f"empty: 0 for the local embedder, {GATEWAY_WAIT_MS:g} for `gateway`."
            ),
        ),
    ] = None
    embedding_cache: Annotated[
        int, msgspec.Meta(ge=0, description="Recent prompts whose embeddings are kept for requests.")
    ] = 5000
    neighbours: Annotated[int, msgspec.Meta(ge=1, le=1000, description="Neighbours a prediction averages.")] = 100


def _embedder(settings: Settings, context: routerd.PluginContext):
    choice = settings.embedder
    gateway = context.embedder
    if choice == "gateway" and gateway is None:
        raise context.config_error("embedder", "`gateway` needs routing.embed_model (ROUTER_EMBED_MODEL)")
    if choice == "local" and not _local_installed():
        raise context.config_error("embedder", "`local` needs the extra: pip install 'routerd[embeddings]'")
    if choice == "gateway" or (choice == "auto" and gateway is not None):
        return gateway, GATEWAY_WAIT_MS
    if choice == "local" or (choice == "auto" and _local_installed()):
        return LocalEmbedder(), 0.0
    return None, 0.0


def _local_installed() -> bool:
    from routerd_learned.learning import embeddings_installed

    return embeddings_installed()


def _learned_scorer(context: routerd.PluginContext) -> LearnedScorer:
    settings: Settings = context.settings
    for i, path in enumerate(settings.data):
        if not Path(path).is_file():
            raise context.config_error(f"data.{i}", f"{path}: no such file")
    embedder, wait = (
        _embedder(settings, context) if settings.data or settings.feedback or settings.profiles else (None, 0)
    )
    if settings.embedding_wait_ms is not None:
        wait = settings.embedding_wait_ms
    store = None
    if embedder is not None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder.name)
        store = VectorStore(context.data_dir / f"embeddings-{safe}.npz", embedder.name)
    return LearnedScorer(
        settings, context.decisions, context.profile_store, embedder=embedder, store=store, wait=wait / 1000
    )


def _scorer(context: routerd.PluginContext) -> LearnedScorer:
    return context.shared("scorer", lambda: _learned_scorer(context))


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    register(_scorer(context))


@routerd.hookimpl
def register_learners(register, context: routerd.PluginContext) -> None:
    register(_scorer(context))  # every routed request's whole prompt, and every rating (a retraining's trigger)


@routerd.hookimpl
def register_commands(register) -> None:
    from routerd_learned.learning.cli import eval_group

    register(eval_group)  # routerd eval routing

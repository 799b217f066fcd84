"""Builtin plugin ``judge``: LLM-as-judge, a `routerd.Judge` that grades answers after the call.

Off unless switched on (``ROUTER_JUDGE_ENABLED=true`` or ``[plugins.judge] enabled = true``):
grading costs a model call per answer. ``model`` (``ROUTER_JUDGE_MODEL``) is the judge: with
``base_url`` (``ROUTER_JUDGE_BASE_URL``, any OpenAI-compatible API, key ``ROUTER_JUDGE_API_KEY``)
the endpoint's own model name; without it, a model this gateway serves, by its catalog name,
called without routing (``context.models``).

The judge grades accuracy (against the reference answer or grading notes when given), clarity
and instruction following from 1 to 10, as a JSON verdict that is parsed and validated; the
score is their weighted mean on 0..1. A malformed verdict is asked for once more with a reminder
of the format, then the answer is recorded as unjudged, never given a score; so is an answer the
endpoint could not grade (down, too slow, errors). Routing never asks it: ``score()`` has no
opinion. Answers whose correctness can be checked exactly (numbers, choices) are the profiler's
to check, not the judge's.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

import routerd
from routerd_judge.judge import LLMJudge, RemoteJudge, ServedJudge

__all__ = ["LLMJudge", "Settings", "register_scorers"]

Weight = Annotated[float, msgspec.Meta(ge=0)]


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    model: Annotated[
        str | None,
        msgspec.Meta(
            description="The judge model: a model this gateway serves (its catalog name), or with `base_url` "
            "the endpoint's own model name. Required."
        ),
    ] = None
    base_url: Annotated[
        str | None,
        msgspec.Meta(
            description="An OpenAI-compatible API for the judge, e.g. `https://api.openai.com/v1`; unset: "
            "`model` is served by this gateway."
        ),
    ] = None
    api_key: Annotated[str | None, msgspec.Meta(description="Bearer key for `base_url`.")] = None
    timeout: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds one verdict may take; then the answer is unjudged.")
    ] = 120.0
    connect_timeout: Annotated[float, msgspec.Meta(gt=0, description="Seconds to connect to `base_url`.")] = 5.0
    max_tokens: Annotated[int, msgspec.Meta(ge=16, description="Most tokens a verdict may take.")] = 400
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2, description="The judge's sampling temperature.")] = 0.0
    response_format: Annotated[
        Literal["json_object", "json_schema", "json_object_schema", "none"],
        msgspec.Meta(
            description="How the verdict's JSON is asked for: `json_object` (OpenAI, vLLM, llama.cpp, Ollama), "
            "`json_schema` (the verdict's schema, OpenAI's structured outputs; vLLM, llama-server and Ollama "
            "too), `json_object_schema` (the schema as llama-cpp-python's server, the `local` backend, takes it), "
            "or `none` for an endpoint that refuses `response_format`."
        ),
    ] = "json_object"
    max_chars: Annotated[
        int,
        msgspec.Meta(
            ge=200, description="Longest question, reference or answer shown to the judge, in characters (cut beyond)."
        ),
    ] = 8000
    accuracy_weight: Annotated[Weight, msgspec.Meta(description="Weight of accuracy in the score.")] = 0.5
    clarity_weight: Annotated[Weight, msgspec.Meta(description="Weight of clarity in the score.")] = 0.2
    instruction_following_weight: Annotated[
        Weight, msgspec.Meta(description="Weight of instruction following in the score.")
    ] = 0.3
    concurrency: Annotated[int, msgspec.Meta(ge=1, description="Verdicts asked for at once; more wait.")] = 2


@routerd.hookimpl
def register_judges(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    if not settings.model:
        raise context.config_error("model", "the judge needs a model (ROUTER_JUDGE_MODEL)")
    weights = {
        "accuracy": settings.accuracy_weight,
        "clarity": settings.clarity_weight,
        "instruction_following": settings.instruction_following_weight,
    }
    if not sum(weights.values()):
        raise context.config_error("accuracy_weight", "at least one of the three weights must be above 0")
    if settings.base_url:
        if not settings.base_url.startswith(("http://", "https://")):
            raise context.config_error("base_url", f"expected an http:// or https:// URL, got {settings.base_url!r}")
        endpoint = RemoteJudge(
            settings.base_url, settings.model, api_key=settings.api_key, connect_timeout=settings.connect_timeout
        )
    else:
        endpoint = ServedJudge(context.models, settings.model)
    register(
        LLMJudge(
            context.name,
            endpoint,
            weights=weights,
            timeout=settings.timeout,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            response_format=settings.response_format,
            max_chars=settings.max_chars,
            concurrency=settings.concurrency,
            log=context.log,
        )
    )

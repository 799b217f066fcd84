"""Builtin plugin ``benchmarks``: public benchmark figures as a quality contribution per prompt category.

The figures are the ones the benchmark sync stores (``hf_leaderboard``, ``lmsys_arena`` and any other provider),
merged per catalog model as ``GET /admin/benchmarks`` shows them. Each prompt category reads the benchmarks that
fit it (math: MATH level 5 and GPQA; reasoning: BBH, MuSR, GPQA, MMLU-Pro; coding: BBH, MMLU-Pro and the Arena
rating; general, creativity, summarization and translation: the Arena rating, IFEval, ...; ``categories``
changes that), each figure as its percentile among the models its source publishes. Simple prompts get no
opinion: any model answers them. The reason cites each figure, its source and the published name it was matched to.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get

import routerd
from routerd_benchmarks.figures import CATEGORY_BENCHMARKS
from routerd_benchmarks.merge import BenchmarkIndex
from routerd_benchmarks.scorer import BenchmarkScorer


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    weight: Annotated[
        float, msgspec.Meta(ge=0, description="Weight of a model's figures when it has every benchmark wanted.")
    ] = 1.0
    refresh_interval: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds between looks for a finished benchmark sync.")
    ] = 60.0
    categories: Annotated[
        dict[str, list[str]],
        msgspec.Meta(
            description=(
                "Benchmarks per prompt category, replacing the default for the categories given "
                '(`{math = ["math_lvl_5"]}`).'
            )
        ),
    ] = {}


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    known = context.benchmarks.known()
    for category, names in settings.categories.items():
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            reason = (
                f"unknown benchmark {unknown[0]!r} (known: {', '.join(known)})"
                if unknown
                else "list one benchmark or more"
            )
            raise context.config_error(f"categories.{category}", reason)
    mapping = {**CATEGORY_BENCHMARKS, **{c: tuple(n) for c, n in settings.categories.items()}}
    register(BenchmarkScorer(settings, context.benchmarks, context.models, context.config.benchmarks, mapping))


@routerd.hookimpl
def register_routes(register, context: routerd.PluginContext) -> None:
    sources = list(context.config.benchmarks.sources)
    aliases = dict(context.config.benchmarks.aliases)
    store, models = context.benchmarks, context.models

    @get("/admin/benchmarks")
    async def list_benchmarks(request: Request) -> dict[str, Any]:
        """Merged benchmark figures per catalog model (or for ``?model=``, any name), with the published name each
        source was matched under and the source of every value."""
        records = [r for r in await store.records() if not sources or r.source in sources]
        order = sources or sorted({r.source for r in records})
        index = BenchmarkIndex(records, order=order, aliases=aliases)
        model = request.query_params.get("model")
        if model is not None:
            info = models.get(model)
            return {"sources": index.order, "models": [index.lookup(model, info.parameters if info else None)]}
        found = sorted(models.all(), key=lambda info: info.key)
        return {"sources": index.order, "models": [index.lookup(info.key, info.parameters) for info in found]}

    register(list_benchmarks)

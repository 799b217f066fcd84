"""A plugin with settings that registers a scorer preferring big models."""

from typing import Annotated

import msgspec

import routerd


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    weight: Annotated[float, msgspec.Meta(ge=0, le=10)] = 1.0
    label: str = "size"


class SizeScorer:
    def __init__(self, settings: Settings) -> None:
        self.name = f"size_{settings.label}"
        self.weight = settings.weight
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def score(self, features, candidates):
        largest = max((m.parameters or 0) for m in candidates) or 1
        return {
            m.name: routerd.Contribution((m.parameters or 0) / largest, self.weight, "bigger is better")
            for m in candidates
        }


@routerd.hookimpl
def register_scorers(register, context):
    register(SizeScorer(context.settings))

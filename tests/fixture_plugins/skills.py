"""Skills for the pipeline's tests: `word_count` counts, `slow` outlasts any timeout, `broken` raises."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import routerd


class WordCount:
    name = "word_count"
    description = "Count the words of a text exactly."
    parameters = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    async def run(self, arguments: dict[str, Any]) -> str:
        self.runs.append(arguments)
        text = arguments.get("text")
        if not isinstance(text, str):
            raise ValueError("'text' must be a string")
        return json.dumps({"words": len(text.split())})


class Slow:
    name = "slow"
    description = "Takes its time."
    parameters = {"type": "object", "properties": {}}

    async def run(self, arguments: dict[str, Any]) -> str:
        await asyncio.sleep(60)
        return "late"


class Broken:
    name = "broken"
    description = "Always fails."
    parameters = {"type": "object", "properties": {}}

    async def run(self, arguments: dict[str, Any]) -> str:
        raise RuntimeError("the secret is sk-hidden-1234")


@routerd.hookimpl
def register_skills(register):
    register(WordCount())
    register(Slow())
    register(Broken())

"""A judge that scores an answer by the share of the reference's words it contains (no reference: no opinion)."""

from __future__ import annotations

import re

import routerd


class KeywordJudge:
    name = "keywords"

    async def judge(self, features, model, answer, reference=None):
        if not reference:
            return None
        wanted = set(re.findall(r"\w+", reference.lower()))
        found = wanted & set(re.findall(r"\w+", answer.lower()))
        return routerd.Judgement(len(found) / len(wanted) if wanted else 0.0, f"{len(found)} of {len(wanted)} words")


@routerd.hookimpl
def register_judges(register):
    register(KeywordJudge())

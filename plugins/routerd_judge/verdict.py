"""The judge's verdict: found in the model's reply, validated, and turned into one score.

The reply may wrap the verdict in a code fence or surround it with text; the first JSON object
in it that carries any of the criteria is the verdict, and it must then have all three, each a
number from 1 to 10. Anything else is a `VerdictError`, never a guess.
"""

from __future__ import annotations

import json
from typing import Annotated

import msgspec

Grade = Annotated[float, msgspec.Meta(ge=1, le=10)]
CRITERIA = ("accuracy", "clarity", "instruction_following")


class Verdict(msgspec.Struct):
    """What the judge says of an answer: each criterion from 1 (worst) to 10 (best)."""

    accuracy: Grade
    clarity: Grade
    instruction_following: Grade
    explanation: str = ""

    def score(self, weights: dict[str, float]) -> float:
        """The criteria's weighted mean, from 1..10 onto 0..1."""
        total = sum(weights.values())
        return sum(weight * (getattr(self, name) - 1) / 9 for name, weight in weights.items()) / total


def _grade_schema() -> dict:
    return {"type": "integer", "enum": list(range(1, 11))}


# The verdict as a JSON schema, for endpoints that constrain their output to one (the explanation
# first, so that a model reasons before it grades; enums, which llama.cpp's grammars enforce).
SCHEMA = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, **{name: _grade_schema() for name in CRITERIA}},
    "required": ["explanation", *CRITERIA],
    "additionalProperties": False,
}


class VerdictError(ValueError):
    """The reply holds no valid verdict; the message says why (it is shown to the judge when
    it is asked again)."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def json_objects(text: str) -> list[dict]:
    """Every top-level JSON object in `text`, in order, whatever surrounds it."""
    found: list[dict] = []
    position = text.find("{")
    while position != -1:
        try:
            value, end = _decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        position = text.find("{", end)
    return found


def parse_verdict(reply: str) -> Verdict:
    """The verdict in `reply`, or `VerdictError`."""
    if not reply.strip():
        raise VerdictError("the reply was empty")
    candidates = [obj for obj in json_objects(reply) if any(name in obj for name in CRITERIA)]
    if not candidates:
        raise VerdictError(f"no JSON object with {', '.join(CRITERIA)} was found")
    try:
        verdict = msgspec.convert(candidates[0], Verdict)
    except msgspec.ValidationError as exc:
        raise VerdictError(_explain(exc)) from None
    return verdict


def _explain(exc: msgspec.ValidationError) -> str:
    """``Expected `float` <= 10.0 - at `$.clarity``` -> ``clarity: expected a number from 1 to 10``."""
    message = str(exc)
    if message.startswith("Object missing required field"):
        return message.replace("Object missing required field", "missing the field")
    field = message.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in message else ""
    if field in CRITERIA:
        return f"{field}: expected a number from 1 to 10 ({message.split(' - at ')[0]})"
    return message

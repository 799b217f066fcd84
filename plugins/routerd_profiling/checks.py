"""Deterministic checks of answers with an exact expectation (`routerd_profiling.suite.Expectation`).

Models wrap their answers in words, units, markdown and working-out, so each check first finds the answer the
model gave, then compares it:

- a number: the one after an explicit marker (``\\boxed{..}``, ``#### ..``, ``the answer is ..``,
  ``Answer: ..``, ``total = ..``), else the last bold number, else the last number in the text; thousands
  separators, currency signs, percent signs, units and scale words (``2.5 million``) are understood, and number
  words (``eight``) when the answer has no digits at all;
- a choice letter: after a marker (``the answer is (B)``, ``Option: B``), else a letter the answer starts with
  (``B) ...``, ``**B**``) unless it lists other options too, else the only letter it names as an option
  (``(B)``), else the only option it quotes;
- words: any accepted word or phrase, as whole words, ignoring case and accents.

A check never guesses: when no answer can be found, it scores 0 and says so.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from routerd_profiling.suite import CHOICE_LETTERS, Expectation


@dataclass(frozen=True)
class CheckResult:
    score: float  # 1.0 right, 0.0 wrong or no answer found
    found: str | None  # what was read from the answer
    reason: str


# -- numbers -----------------------------------------------------------------------------------------------
_NUMBER = re.compile(
    r"""
    (?<![\w.])                                  # not inside a word, a version or a decimal
    (?P<sign>[-\u2212])?
    (?:[$\u20ac\u00a3\u00a5]\s?)?                 # a currency sign
    (?P<int>\d{1,3}(?:,\d{3})+|\d+)              # 1,234,567 or 1234567
    (?P<frac>\.\d+)?
    (?:/(?P<den>\d+)(?![\d.,]))?                # a fraction of integers: 3/4
    (?:\s*(?P<scale>thousand|million|billion)\b)?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
_MARKERS = re.compile(
    r"\\boxed\{(?P<boxed>[^{}]*)\}|####\s*(?P<hashes>[^\n]*)"
    r"|\b(?:final answer|answer|result|total|solution)\b\**\s*(?:is|was|would be|will be|equals|=|:)"
    r"\s*(?=(?P<marked>[^\n]{0,80}))",  # a lookahead: a later marker inside the window is found too
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__", re.DOTALL)
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_NUMBER_WORD = re.compile(
    r"\b(?:(?P<tens>" + "|".join(_TENS) + r")(?:[-\s](?P<unit>" + "|".join(list(_UNITS)[1:10]) + r"))?"
    r"|(?P<alone>" + "|".join(_UNITS) + r"))\b",
    re.IGNORECASE,
)


def _value(match: re.Match[str]) -> float:
    value = float(match["int"].replace(",", "") + (match["frac"] or ""))
    if match["den"]:
        denominator = int(match["den"])
        value = value / denominator if denominator else math.nan
    if match["scale"]:
        value *= _SCALES[match["scale"].lower()]
    return -value if match["sign"] else value


def numbers_in(text: str) -> list[float]:
    """Every number written with digits in `text`, in order."""
    return [v for v in (_value(m) for m in _NUMBER.finditer(text)) if math.isfinite(v)]


def _number_words(text: str) -> list[tuple[int, float]]:
    """Numbers written as words (zero to ninety-nine), with their positions."""
    found = []
    for match in _NUMBER_WORD.finditer(text):
        if match["alone"]:
            value = _UNITS[match["alone"].lower()]
        else:
            value = _TENS[match["tens"].lower()] + (_UNITS[match["unit"].lower()] if match["unit"] else 0)
        found.append((match.start(), float(value)))
    return found


def _first_number(text: str) -> float | None:
    """The first number in a short stretch after a marker, in digits or in words (``is eight (since 2006)``)."""
    digits = [(m.start(), _value(m)) for m in _NUMBER.finditer(text)]
    found = sorted([(at, v) for at, v in digits if math.isfinite(v)] + _number_words(text))
    return found[0][1] if found else None


def find_number(answer: str) -> float | None:
    """The number an answer gives as its result (see the module's doc), or None."""
    marked = None
    for match in _MARKERS.finditer(answer):
        text = match["boxed"] if match["boxed"] is not None else match["hashes"] or match["marked"] or ""
        found = _first_number(text)
        marked = found if found is not None else marked
    if marked is not None:
        return marked
    for match in reversed(list(_BOLD.finditer(answer))):
        found = numbers_in(match[1] or match[2])
        if found:
            return found[-1]
    found = numbers_in(answer) or [value for _, value in _number_words(answer)]
    return found[-1] if found else None


def check_number(expected: float, tolerance: float, answer: str) -> CheckResult:
    found = find_number(answer)
    if found is None:
        return CheckResult(0.0, None, f"expected {expected:g}; the answer gives no number")
    allowed = max(tolerance, 1e-9 * max(1.0, abs(expected)))
    right = abs(found - expected) <= allowed
    verdict = "right" if right else "wrong"
    return CheckResult(1.0 if right else 0.0, f"{found:g}", f"expected {expected:g}, found {found:g}: {verdict}")


# -- choices -----------------------------------------------------------------------------------------------
def _choice_patterns(letters: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    group = f"[{letters}]"
    marked = re.compile(
        r"(?i:\b(?:final answer|answer)\b\**\s*(?:is|would be|:|=)?|\b(?:option|choice)\b\**\s*(?:is|would be|:|=))"
        rf"\s*(?i:option\s+)?[(\[*]*\s*({group})(?![\w'])"
    )
    leading = re.compile(rf"^\W*?\(?({group})(?:\s*[).:\]]|\*\*|\s*$|\s+-\s)")
    named = re.compile(rf"\(({group})\)|(?<![\w(])({group})\)")
    return marked, leading, named


def _normal(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


def find_choice(answer: str, letters: str, options: dict[str, str] | None = None) -> str | None:
    """The option letter an answer picks (see the module's doc), or None."""
    marked, leading, named = _choice_patterns(letters)
    picks = [m[1] for m in marked.finditer(answer)]
    if picks:
        return picks[-1]
    listed = {m[1] or m[2] for m in named.finditer(answer)}
    start = leading.match(answer.strip())
    if start and listed <= {start[1]}:  # an answer that lists several options does not pick the first
        return start[1]
    if len(listed) == 1:
        return listed.pop()
    if options:
        text = _normal(answer)
        quoted = [
            letter
            for letter, option in options.items()
            if re.search(rf"(?<!\w){re.escape(_normal(option))}(?!\w)", text)
        ]
        if len(quoted) == 1:
            return quoted[0]
    return None


def check_choice(expected: str, options: dict[str, str], answer: str) -> CheckResult:
    highest = max([expected, *options])
    letters = CHOICE_LETTERS[: CHOICE_LETTERS.index(highest) + 1]
    found = find_choice(answer, letters, options)
    if found is None:
        return CheckResult(0.0, None, f"expected {expected}; the answer picks no option")
    right = found == expected
    verdict = "right" if right else "wrong"
    return CheckResult(1.0 if right else 0.0, found, f"expected {expected}, found {found}: {verdict}")


# -- words -------------------------------------------------------------------------------------------------
def check_contains(accepted: list[str], answer: str) -> CheckResult:
    text = _normal(answer)
    for phrase in accepted:
        if re.search(rf"(?<!\w){re.escape(_normal(phrase))}(?!\w)", text):
            return CheckResult(1.0, phrase, f"the answer says {phrase!r}: right")
    return CheckResult(0.0, None, f"expected {' or '.join(repr(p) for p in accepted)}; not in the answer")


def check(expect: Expectation, answer: str) -> CheckResult:
    """Score `answer` against `expect`: 1.0 or 0.0, with what was found and why."""
    if expect.number is not None:
        return check_number(expect.number, expect.tolerance, answer)
    if expect.choice is not None:
        return check_choice(expect.choice, expect.options, answer)
    return check_contains(expect.contains, answer)

"""The exact checks of profiling answers: numbers wrapped in words, units and markdown, choice letters in their
many spellings, accepted words; and never a guess where the answer gives none."""

from __future__ import annotations

import re

import pytest

from routerd_profiling.checks import check, find_choice, find_number
from routerd_profiling.suite import Expectation


@pytest.mark.parametrize(
    ("answer", "number"),
    [
        ("80", 80),
        ("The train covers 180 km in 2.25 h, so its speed is 180 / 2.25 = 80 km/h.", 80),
        ("**Answer:** 80 km/h (180 km / 2.25 h)", 80),
        ("The answer is 80 km/h, since 180 / 2.25 = 80 and 2 h 15 min is 2.25 h.", 80),
        ("Final answer: $66.00", 66),
        ("80 x 0.75 = 60, then 60 x 1.1 = **$66**. That is 6 dollars of tax.", 66),
        ("She has 79 pencils.", 79),
        ("3x + 7 = 6x - 5\n12 = 3x\nx = 4", 4),
        ("The ball costs 5 cents.", 5),
        ("It prints 4, because y and x are the same list.", 4),
        ("There are eight planets.", 8),
        ("The answer is twenty-one.", 21),
        ("about 1,250 km", 1250),
        ("roughly 2.5 million people", 2_500_000),
        ("x = -5", -5),
        ("x = \u22125", -5),
        ("a 25% discount leaves 60", 60),
        ("\\boxed{42}, which we check: 6 x 7 = 42 ... so 7 is a factor", 42),
        ("working... 3 + 4 + 5\n#### 12", 12),
        ("Three quarters is 3/4", 0.75),
        ("Version v1.2 of the tool says 7", 7),
    ],
)
def test_numbers_are_found_around_words_units_and_markdown(answer, number):
    assert find_number(answer) == pytest.approx(number)


@pytest.mark.parametrize("answer", ["", "I do not know.", "It depends on the store."])
def test_no_number_is_none_not_a_guess(answer):
    assert find_number(answer) is None


def test_without_a_marker_the_last_number_counts():
    # The documented rule (as GSM8K graders use it): an unmarked answer's result is its last number, so an
    # answer that ends on another figure is read as that figure.
    assert find_number("The ball costs 5 cents (and the bat $1.05).") == 1.05
    assert find_number("The ball costs 5 cents, so the answer is 5. The bat costs $1.05.") == 5


def test_number_check_scores_right_wrong_and_missing():
    expect = Expectation(number=66, tolerance=0.005)
    right = check(expect, "The final price is $66.00.")
    wrong = check(expect, "The final price is $64.")
    missing = check(expect, "It depends on the store.")
    assert (right.score, right.found) == (1.0, "66")
    assert (wrong.score, wrong.found) == (0.0, "64")
    assert "expected 66, found 64: wrong" == wrong.reason
    assert (missing.score, missing.found) == (0.0, None)
    assert "gives no number" in missing.reason


def test_number_tolerance_is_absolute():
    assert check(Expectation(number=3.14, tolerance=0.01), "pi is about 3.1416").score == 1.0
    assert check(Expectation(number=3.14), "pi is about 3.1416").score == 0.0


OPTIONS = {"A": "All lazzies are bloops", "B": "All bloops are lazzies", "C": "Some razzies", "D": "No lazzies"}


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("B.", "B"),
        ("**B**", "B"),
        ("(B)", "B"),
        ("B) All bloops are lazzies", "B"),
        ("Answer: B", "B"),
        ("The answer is (C).", "C"),
        ("The correct option is D, because nothing says otherwise.", "D"),
        ("A) All lazzies are bloops\nB) All bloops are lazzies\nC) ...\nD) ...\nThe answer is B", "B"),
        ("All bloops are lazzies, since every bloop is a razzie.", "B"),
        ("I would pick (A) here.", "A"),
    ],
)
def test_choice_letters_in_their_spellings(answer, letter):
    assert find_choice(answer, "ABCD", OPTIONS) == letter


@pytest.mark.parametrize(
    "answer",
    [
        "A bat and a ball.",  # "A" is a word here
        "The answer is a matter of taste.",  # a lower-case word, not a letter
        "A) All lazzies are bloops B) All bloops are lazzies",  # lists the options, picks none
        "Option A) this, option B) that",
        "Nothing fits.",
    ],
)
def test_no_choice_is_none_not_a_guess(answer):
    assert find_choice(answer, "ABCD", OPTIONS) is None


def test_choice_check_scores_and_ignores_letters_beyond_the_options():
    expect = Expectation(choice="C", options={"A": "Thursday", "B": "Saturday", "C": "Friday", "D": "Sunday"})
    assert check(expect, "It will be Friday.").score == 1.0  # quotes the option
    assert check(expect, "C) Friday").score == 1.0
    wrong = check(expect, "B")
    assert (wrong.score, wrong.found, wrong.reason) == (0.0, "B", "expected C, found B: wrong")
    assert check(expect, "E) none of these").found is None  # E is not an option here


def test_contains_check_ignores_case_and_accents_and_needs_whole_words():
    expect = Expectation(contains=["Canberra"])
    assert check(expect, "The capital is CANBERRA, not Sydney.").score == 1.0
    assert check(expect, "Sydney").score == 0.0
    assert check(Expectation(contains=["Sao Paulo"]), "It is São Paulo.").score == 1.0
    assert check(Expectation(contains=["cat"]), "a concatenation").score == 0.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "set exactly one of number, choice, contains (found: none)"),
        ({"number": 1, "choice": "A"}, "found: number, choice"),
        ({"number": 1, "options": {"A": "x"}}, "options are for a choice expectation"),
        ({"choice": "E", "options": {"A": "x", "B": "y"}}, "the expected choice E is not among the options"),
    ],
)
def test_an_expectation_needs_exactly_one_kind(fields, message):
    import msgspec

    with pytest.raises(msgspec.ValidationError, match=re.escape(message)):
        msgspec.convert(fields, Expectation)

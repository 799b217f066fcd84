"""The profiling suite: the bundled one meets the issue's bar, its version follows its content, and a team's own
suite is validated with errors that name the file, the prompt and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routerd import ConfigError
from routerd_profiling.suite import BUNDLED_SUITE, load_suite, parse_suite

SHORT_SUITE = Path(__file__).parent / "data" / "short_suite.toml"


def test_the_bundled_suite_covers_every_kind_of_prompt():
    suite = load_suite()
    grouped = suite.by_category()
    assert len(suite.prompts) >= 15
    assert len(grouped["math"]) + len(grouped["reasoning"]) >= 3
    for category in ("math", "reasoning", "coding", "creativity", "general"):
        assert len(grouped[category]) >= 3, category
    assert all(p.reference.strip() for p in suite.prompts)  # a reference answer or grading notes each
    exact = [p for p in suite.prompts if p.expect is not None]
    assert {p.expect.kind for p in exact} == {"number", "choice", "contains"}
    assert len(exact) >= 8
    assert suite.suite_version.startswith(f"{suite.version}+")
    assert len(suite.suite_version) <= 50  # model_profiles.suite_version


def test_the_bundled_suites_exact_expectations_accept_their_own_reference():
    """Each reference answer, read as a model's answer, passes its prompt's exact check."""
    from routerd_profiling.checks import check

    for prompt in load_suite().prompts:
        if prompt.expect is not None:
            assert check(prompt.expect, prompt.reference).score == 1.0, prompt.id


def test_the_version_follows_the_content_and_the_human_version():
    data = BUNDLED_SUITE.read_bytes()
    original = parse_suite(data, source="suite", toml=True)
    edited = parse_suite(data.replace(b"Canberra (not Sydney", b"Canberra (and not Sydney"), source="s", toml=True)
    renamed = parse_suite(data.replace(b'version = "2026.12"', b'version = "2027.01"'), source="s", toml=True)
    assert parse_suite(data, source="again", toml=True).suite_version == original.suite_version
    assert edited.suite_version != original.suite_version
    assert edited.suite_version.split("+")[0] == original.version
    assert renamed.suite_version.split("+")[1] == original.suite_version.split("+")[1]
    assert renamed.suite_version.startswith("2027.01+")


def test_a_json_suite_reads_like_a_toml_one(tmp_path):
    suite = load_suite(SHORT_SUITE)
    as_json = tmp_path / "suite.json"
    import msgspec

    as_json.write_bytes(msgspec.json.encode(suite))
    assert load_suite(as_json).suite_version == suite.suite_version


def _suite_file(tmp_path, prompts, **top) -> Path:
    path = tmp_path / "team.json"
    path.write_text(json.dumps({"name": "team", "version": "1", "prompts": prompts, **top}))
    return path


PROMPT = {"id": "p1", "category": "math", "prompt": "2+2?", "reference": "4", "expect": {"number": 4}}


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ([{**PROMPT, "reference": ""}], "prompt 'p1' (prompts[0]).reference: expected `str` of length >= 1"),
        ([{k: v for k, v in PROMPT.items() if k != "reference"}], "prompt 'p1' (prompts[0]): object missing"),
        ([{**PROMPT, "category": "poetry"}], "prompt 'p1' (prompts[0]): category 'poetry' is not a routing category"),
        ([PROMPT, {**PROMPT, "category": "coding"}], "two prompts have the id 'p1'"),
        ([{**PROMPT, "expect": {"number": 4, "choice": "A"}}], "prompts[0]).expect: set exactly one of"),
        ([{**PROMPT, "colour": "red"}], "prompt 'p1' (prompts[0]).colour: unknown key"),
        ([{**PROMPT, "id": "Bad Id"}], "prompt 'Bad Id' (prompts[0]).id: expected `str` matching"),
        ([], "prompts: expected `array` of length >= 1"),
    ],
)
def test_a_bad_team_suite_is_refused_naming_the_prompt_and_field(tmp_path, prompts, message):
    path = _suite_file(tmp_path, prompts)
    with pytest.raises(ConfigError) as refused:
        load_suite(path)
    assert str(refused.value).startswith(f"profiling.suite ({path}): ")
    assert message in str(refused.value)


def test_unreadable_and_malformed_suites_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the suite"):
        load_suite(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_suite(broken)

"""The current_time skill, as the gateway registered it and on its own."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import routerd

from routerd_example import CurrentTimeSkill, Settings
from routerd_example.current_time import time_zone

pytestmark = pytest.mark.anyio


@pytest.fixture
def skill(routerd_gateway) -> CurrentTimeSkill:
    """The skill the plugin registered in a gateway configured by `routerd_config` (conftest)."""
    return routerd_gateway.plugins.registry.skills["current_time"]


def read_answer(answer: str) -> tuple[dt.datetime, str]:
    """The instant the answer states (ISO 8601 with its offset) and the rest of it."""
    stamp, _, rest = answer.partition(" ")
    return dt.datetime.fromisoformat(stamp), rest


def assert_now_in(answer: str, zone_name: str) -> None:
    reported, rest = read_answer(answer)
    zone = ZoneInfo(zone_name)
    now = dt.datetime.now(zone)
    # The answer is to the second, so it may trail the clock by up to one second.
    assert abs(reported - now) < dt.timedelta(seconds=5), (answer, now)
    # The offset it states is the zone's own at that instant, not the machine's.
    assert reported.utcoffset() == reported.astimezone(zone).utcoffset()
    assert f"{reported.astimezone(zone):%A}, {zone_name}, " in rest


def test_is_a_skill(skill: CurrentTimeSkill) -> None:
    assert isinstance(skill, routerd.Skill)
    assert skill.parameters["type"] == "object"
    assert set(skill.parameters["properties"]) == {"timezone"}
    assert "'Asia/Tokyo'" in skill.parameters["properties"]["timezone"]["description"]


async def test_answers_in_the_requested_zone(skill: CurrentTimeSkill) -> None:
    answer = await skill.run({"timezone": "Asia/Kathmandu"})
    assert_now_in(answer, "Asia/Kathmandu")
    assert read_answer(answer)[0].utcoffset() == dt.timedelta(hours=5, minutes=45)


async def test_answers_in_a_zone_with_daylight_saving_time(skill: CurrentTimeSkill) -> None:
    assert_now_in(await skill.run({"timezone": "America/New_York"}), "America/New_York")


async def test_defaults_to_the_configured_zone(skill: CurrentTimeSkill) -> None:
    answer = await skill.run({})
    assert_now_in(answer, "Asia/Tokyo")
    assert read_answer(answer)[0].utcoffset() == dt.timedelta(hours=9)
    assert_now_in(await skill.run({"timezone": None}), "Asia/Tokyo")


async def test_defaults_to_utc_without_settings() -> None:
    skill = CurrentTimeSkill(default_zone=time_zone(Settings().default_timezone))
    answer = await skill.run({})
    assert_now_in(answer, "UTC")
    assert read_answer(answer)[0].utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime", "Europe"])
async def test_refuses_an_unknown_zone(skill: CurrentTimeSkill, name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown time zone .*expected an IANA time zone name"):
        await skill.run({"timezone": name})


async def test_refuses_bad_arguments(skill: CurrentTimeSkill) -> None:
    with pytest.raises(ValueError, match="'timezone' must be a string, got int"):
        await skill.run({"timezone": 9})
    with pytest.raises(ValueError, match="unknown arguments: zone"):
        await skill.run({"zone": "UTC"})


def test_a_model_that_calls_it_gets_the_time_through_the_gateway(tmp_path, plugin_name: str) -> None:
    """Through the running gateway: a request that asks for the skill (``X-Routerd-Skills``) goes to a model that
    calls tools (the fake backend's ``fake-large``, scripted to call ``current_time``), the gateway runs the skill,
    and the model's answer quotes its result."""
    from litestar.testing import TestClient
    from routerd.testing import FAKE_PLUGIN, build_app

    config = {
        "plugins": {
            plugin_name: {"default_timezone": "Asia/Tokyo"},
            "fake": {"calls_tool": "current_time", "reply": "It is"},
        }
    }
    with TestClient(build_app(tmp_path, config, [FAKE_PLUGIN])) as client:
        answer = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "What time is it?"}]},
            headers={"X-Routerd-Skills": "current_time"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-routerd-model"] == "fake-large"
    content = answer.json()["choices"][0]["message"]["content"]
    assert content.startswith("It is ")
    assert_now_in(content.removeprefix("It is ").split("\n")[0], "Asia/Tokyo")

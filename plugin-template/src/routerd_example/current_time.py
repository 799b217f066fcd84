"""The ``current_time`` skill: a tool models call to learn the date and time somewhere."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name` (``Europe/Paris``, ``UTC``); ValueError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ZoneInfo says "not found" (a KeyError), "not a normalized path" or "invalid TZif file"
        # depending on the name; callers want one error that says what to give instead.
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA time zone name such as 'Europe/Paris' or 'UTC'"
        ) from None


class CurrentTimeSkill:
    """Answers with the current date and time in the time zone the model asks for, or in
    `default_zone`: ``2026-11-25T21:07:03+01:00 (Wednesday, Europe/Paris, CET)``, ISO 8601 first
    so that both models and programs can read it."""

    name = "current_time"
    description = (
        "The current date and time in an IANA time zone, as ISO 8601 with the UTC offset, "
        "followed by the weekday, the zone and its abbreviation."
    )

    def __init__(self, default_zone: ZoneInfo) -> None:
        self.default_zone = default_zone
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "description": (
                        "IANA time zone name, for example 'Europe/Paris' or 'America/New_York'; "
                        f"default: {default_zone.key!r}."
                    ),
                },
            },
            "required": [],
            "additionalProperties": False,
        }

    async def run(self, arguments: dict[str, Any]) -> str:
        unknown = sorted(set(arguments) - {"timezone"})
        if unknown:
            raise ValueError(f"unknown arguments: {', '.join(unknown)} (this tool takes only 'timezone')")
        name = arguments.get("timezone")
        if name is None:
            zone = self.default_zone
        elif isinstance(name, str):
            zone = time_zone(name)
        else:
            raise ValueError(f"'timezone' must be a string, got {type(name).__name__}")
        now = dt.datetime.now(zone)
        return f"{now.isoformat(timespec='seconds')} ({now:%A}, {zone.key}, {now.tzname()})"

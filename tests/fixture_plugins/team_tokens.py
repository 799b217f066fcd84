"""Each member of the team calls with a token of their own in the X-Team-Token header."""

from __future__ import annotations

import hmac

import msgspec

import routerd


class Member(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    subject: str
    token: str
    tenant: str = "default"
    admin: bool = False


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    members: list[Member] = []


class TeamTokens:
    name = "team_tokens"

    def __init__(self, settings: Settings) -> None:
        self.members = [(m.token.encode(), m) for m in settings.members]

    async def authenticate(self, request):
        token = request.headers.get("x-team-token")
        if token is None:
            return None
        for secret, member in self.members:
            if hmac.compare_digest(token.encode(), secret):
                return routerd.Principal("api_key", member.subject, member.tenant, member.admin)
        raise routerd.AuthenticationFailed("unknown X-Team-Token")


@routerd.hookimpl
def register_authenticators(register, context):
    register(TeamTokens(context.settings))

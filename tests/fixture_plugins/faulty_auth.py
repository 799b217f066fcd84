"""An authenticator that fails with an unexpected error carrying a secret-looking message."""

import routerd


class FaultyAuthenticator:
    name = "faulty"

    async def authenticate(self, request):
        raise RuntimeError("password=hunter2 leaked from a bug")


@routerd.hookimpl
def register_authenticators(register, context):
    register(FaultyAuthenticator())

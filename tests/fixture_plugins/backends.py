"""A fake backend plugin, for the ROUTER_PROVIDER filter."""

import routerd
from routerd.testing import FakeBackend


@routerd.hookimpl
def register_backends(register, context):
    register(FakeBackend(f"{context.name}-backend", [routerd.ModelInfo(name="m", backend=context.name)], "hi"))

"""Two backends: `refusing` fails every request with a BackendError that is not retryable, `steady` would
answer; the refusing one's model is the bigger, so routing tries it first."""

import routerd
from routerd.testing import FakeBackend


class Refusing(FakeBackend):
    async def chat(self, model, request):
        self.calls.append(("chat", model))
        raise routerd.BackendError("refusing declines: the request may not run twice", retryable=False)


@routerd.hookimpl
def register_backends(register, context):
    big = routerd.ModelInfo(name="refusing-70b", backend="refusing", parameters=70_000_000_000)
    small = routerd.ModelInfo(name="steady-1b", backend="steady", parameters=1_000_000_000)
    register(Refusing("refusing", [big], "never"))
    register(FakeBackend("steady", [small], "steady answer"))

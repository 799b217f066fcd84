"""A plugin with a misspelled hook (register_backend, not register_backends)."""

import routerd


@routerd.hookimpl
def register_backend(register, context):
    raise AssertionError("never called")

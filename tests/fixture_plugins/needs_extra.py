"""A plugin whose optional dependency is missing, declared the documented way."""

import routerd

routerd.require_modules("fancy", "routerd_test_module_that_does_not_exist", distribution="routerd-fixtures")


@routerd.hookimpl
def register_skills(register, context):  # pragma: no cover - never reached
    raise AssertionError("unreachable")

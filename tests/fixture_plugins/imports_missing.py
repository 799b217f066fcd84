"""A plugin that imports a missing module directly, without declaring an extra."""

import routerd_test_module_that_does_not_exist  # noqa: F401

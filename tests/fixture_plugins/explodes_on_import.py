"""Importing this module is an error: a test proves a disabled plugin is never imported."""

raise RuntimeError("fixture_plugins.explodes_on_import was imported")

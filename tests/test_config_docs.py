"""docs/configuration.md lists every setting, as the code defines it."""

from pathlib import Path

from routerd.config import LEGACY_ENVIRONMENT
from routerd.config_docs import documented_table, settings_table

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_configuration_doc_table_is_the_one_the_code_prints():
    assert documented_table(DOC) == settings_table(), "run: make docs"


def test_every_environment_variable_is_documented():
    table = documented_table(DOC)
    for variable in [*LEGACY_ENVIRONMENT, "ROUTERD__SERVER__PORT"]:
        assert f"`{variable}`" in table

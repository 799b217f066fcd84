"""docs/configuration.md lists every setting, as the code defines it."""

from pathlib import Path

from routerd.config import LEGACY_ENVIRONMENT
from routerd.config_docs import settings_table

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"


def documented_table() -> str:
    text = DOC.read_text()
    start = text.index("<!-- settings-table:start -->\n") + len("<!-- settings-table:start -->\n")
    return text[start : text.index("<!-- settings-table:end -->")]


def test_configuration_doc_table_is_the_one_the_code_prints():
    assert documented_table() == settings_table(), "run: routerd config docs, and paste into docs/configuration.md"


def test_every_environment_variable_is_documented():
    table = documented_table()
    for variable in [*LEGACY_ENVIRONMENT, "ROUTERD__SERVER__PORT"]:
        assert f"`{variable}`" in table

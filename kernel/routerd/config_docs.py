"""The settings table of docs/configuration.md, made from the settings Structs themselves
(``routerd config docs``), so the documentation cannot drift from the code."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgspec

from routerd.config import LEGACY_ENVIRONMENT, NESTED_ENV_PREFIX, Settings
from routerd.plugins import OPT_IN


def _fields(struct: type, prefix: str) -> Iterator[tuple[str, Any, str]]:
    hints = typing.get_type_hints(struct, include_extras=True)
    instance = struct()
    for name in struct.__struct_fields__:
        if struct is Settings and name in ("plugins", "sources"):
            continue
        hint = hints[name]
        default = getattr(instance, name)
        if isinstance(default, msgspec.Struct):
            yield from _fields(type(default), f"{prefix}{name}.")
            continue
        description = ""
        if typing.get_origin(hint) is typing.Annotated:
            for meta in typing.get_args(hint)[1:]:
                if isinstance(meta, msgspec.Meta) and meta.description:
                    description = meta.description
        yield f"{prefix}{name}", default, description
        table = _table_of_structs(hint)
        if table is not None:  # ``[models."<name>"]``: each table's keys, under a placeholder name
            yield from _fields(table, f'{prefix}{name}."<name>".')


def _table_of_structs(hint: Any) -> type | None:
    """The Struct of a ``dict[str, SomeStruct]`` setting, or None."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is dict:
        value = typing.get_args(hint)[1]
        if isinstance(value, type) and issubclass(value, msgspec.Struct):
            return value
    return None


def _variables(key: str) -> str:
    if '."<name>".' in key:  # names hold dots and globs: the whole table is set at once, as JSON
        return f"`{NESTED_ENV_PREFIX}{key.split('.', 1)[0].upper()}` (JSON)"
    legacy = [name for name, target in LEGACY_ENVIRONMENT.items() if target == key]
    nested = NESTED_ENV_PREFIX + "__".join(part.upper() for part in key.split("."))
    return ", ".join(f"`{name}`" for name in [*legacy, nested])


def _show(value: Any, key: str) -> str:
    if key == "data_dir":
        return "`$XDG_DATA_HOME/routerd` (`~/.local/share/routerd`)"
    if value is None or value == "" or value == []:
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def builtin_plugin_settings() -> dict[str, type | None]:
    """Each builtin plugin's Settings Struct (importing the builtin plugins, not third-party)."""
    found: dict[str, type | None] = {}
    for ep in entry_points(group="routerd"):
        if ep.dist is not None and ep.dist.metadata["Name"] == "routerd":
            found[ep.name] = getattr(ep.load(), "Settings", None)
    return dict(sorted(found.items()))


START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"


def documented_table(path: Path) -> str:
    text = path.read_text()
    return text[text.index(START) + len(START) : text.index(END)]


def write_table(path: Path) -> None:
    text = path.read_text()
    head, tail = text[: text.index(START) + len(START)], text[text.index(END) :]
    path.write_text(head + settings_table() + tail)


def settings_table() -> str:
    rows = [(key, default, text) for key, default, text in _fields(Settings, "")]
    plugin_structs = builtin_plugin_settings()
    for name, struct in plugin_structs.items():
        rows.append((f"plugins.{name}.enabled", name not in OPT_IN, f"Switch the builtin plugin `{name}` on or off."))
        if struct is not None:
            rows.extend(_fields(struct, f"plugins.{name}."))
    documented = {row[0] for row in rows}
    for key in LEGACY_ENVIRONMENT.values():
        if key not in documented:
            plugin = key.split(".")[1]
            rows.append((key, None, f"Read by the builtin plugin `{plugin}` (not installed in this version)."))
            documented.add(key)
    lines = ["| key | environment variables | default | meaning |", "|---|---|---|---|"]
    for key, default, text in rows:
        lines.append(f"| `{key}` | {_variables(key)} | {_show(default, key)} | {text} |")
    return "\n".join(lines) + "\n"

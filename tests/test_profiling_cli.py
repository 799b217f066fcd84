"""The commands of the ``profiling`` plugin: ``routerd profile`` (in-process, with a progress bar and a results
table) and ``routerd profiles export|import``: a round trip between gateways on SQLite and PostgreSQL, idempotent,
and bad files refused naming the record and field, without writing anything. The commands are listed by
``routerd --help`` while the plugin is on, and gone when it is off."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from profiling_helpers import SHORT_SUITE
from routerd import BenchmarkRecord, BenchmarkStore, Database
from routerd.cli import main
from routerd.db.models import BenchmarkRecordRow, CatalogModel, ModelProfile
from servers import ReplayState, replay_server

REPLY = "The answer is 5. Paris, of course."


def write_config(folder: Path, *, database: str = "", replay: str | None = None, off: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'data_dir = "{folder}"', "[database]", f'url = "{database}"']
    lines += ["[profiling]", f'suite = "{SHORT_SUITE}"', "max_tokens = 16"]
    for name in ("local", "hf_leaderboard", "lmsys_arena", *off):
        lines += [f"[plugins.{name}]", "enabled = false"]
    if replay is not None:
        lines += ["[plugins.openai]", f'base_url = "{replay}"']
    path = folder / "routerd.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def routerd(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def counts(url: str) -> tuple[int, int, int]:
    async def read() -> tuple[int, int, int]:
        database = Database(url, auto_upgrade=True)
        await database.start()
        try:
            async with database.session() as session:
                found = [
                    (await session.execute(select(func.count()).select_from(table))).scalar_one()
                    for table in (ModelProfile, BenchmarkRecordRow, CatalogModel)
                ]
                return found[0], found[1], found[2]
        finally:
            await database.close()

    return asyncio.run(read())


def add_benchmarks(url: str, records: list[BenchmarkRecord]) -> None:
    async def write() -> None:
        database = Database(url)
        await database.start()
        try:
            await BenchmarkStore(database).replace_source(records[0].source, records)
        finally:
            await database.close()

    asyncio.run(write())


FETCHED = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
BENCHMARKS = [
    BenchmarkRecord("hf_leaderboard", "Qwen/Qwen2.5-7B-Instruct", "mmlu_pro", 36.5, FETCHED),
    BenchmarkRecord("hf_leaderboard", "Qwen/Qwen2.5-7B-Instruct", "ifeval", 75.9, FETCHED),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A gateway that profiled two models with `routerd profile` and synced two benchmark figures, exported."""
    folder = tmp_path_factory.mktemp("source")
    state = ReplayState(models=["alpha-7b", "beta-1b"], reply=REPLY)
    with replay_server(state) as url:
        config = write_config(folder, replay=url)
        first = routerd(config, "profile")
        assert first.exit_code == 0, first.output
        again = routerd(config, "profile", "alpha-7b", "--force")  # a second run: history to export
        assert again.exit_code == 0, again.output
    add_benchmarks(f"sqlite+aiosqlite:///{folder / 'routerd.db'}", BENCHMARKS)
    target = folder / "measurements.json"
    result = routerd(config, "profiles", "export", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert "wrote 15 profile rows and 2 benchmark records" in result.output
    return target


def test_profile_shows_progress_and_a_table_then_reuses_the_profile(tmp_path):
    state = ReplayState(models=["alpha-7b"], reply=REPLY)
    with replay_server(state) as url:
        config = write_config(tmp_path, replay=url)
        first = routerd(config, "profile")
        second = routerd(config, "profile")
        forced = routerd(config, "profile", "alpha-7b", "--force")
        unknown = CliRunner().invoke(main, ["--config", str(config), "profile", "nope"])
    assert first.exit_code == 0, first.output
    assert "100%" in first.output and "ETA" in first.output  # the progress bar, at its end
    assert "profiled alpha-7b: math 1.00; reasoning 0.00; coding 0.50; creativity 0.50; general 1.00" in first.output
    assert "quality" in first.output and "tok/s" in first.output and "latency ms" in first.output
    assert len([r for r in state.requests if "messages" in r]) == 12  # two runs (warm-up + 5), not three
    assert second.exit_code == 0 and "profiled with suite t1+" in second.output and "--force" in second.output
    assert forced.exit_code == 0 and "100%" in forced.output
    assert unknown.exit_code == 2 and "no chat model 'nope' in the catalog (chat models: alpha-7b)" in unknown.output


def test_profile_with_no_backend_says_so(tmp_path):
    result = routerd(write_config(tmp_path), "profile")
    assert result.exit_code == 0 and "no chat model to profile" in result.output


def _commands(output: str) -> set[str]:
    """The command names `routerd --help` lists."""
    return {line.split()[0] for line in output.split("Commands:")[1].splitlines() if line.strip()}


def test_the_commands_are_listed_while_the_plugin_is_on_and_gone_when_it_is_off(tmp_path):
    listed = routerd(write_config(tmp_path / "on"), "--help")
    subcommands = routerd(write_config(tmp_path / "on"), "profiles", "--help")
    config = write_config(tmp_path / "off", off=("profiling",))
    unlisted = CliRunner().invoke(main, ["--help"], env={"ROUTERD_CONFIG": str(config)})
    missing = CliRunner().invoke(main, ["--config", str(config), "profile"])
    assert listed.exit_code == 0 and {"profile", "profiles"} <= _commands(listed.output)
    assert "export" in subcommands.output and "import" in subcommands.output
    assert unlisted.exit_code == 0 and {"serve", "plugins"} <= _commands(unlisted.output)
    assert not {"profile", "profiles"} & _commands(unlisted.output)
    assert missing.exit_code == 2 and "No such command 'profile'" in missing.output


def test_help_lists_the_commands_of_the_configuration_given_with_config(tmp_path):
    unlisted = routerd(write_config(tmp_path, off=("profiling",)), "--help")
    assert not {"profile", "profiles"} & _commands(unlisted.output)


def test_export_holds_every_row_with_its_details(exported):
    data = json.loads(exported.read_text())
    assert data["format"] == "routerd.measurements" and data["version"] == 1
    assert {(p["model"], p["category"]) for p in data["profiles"]} >= {("alpha-7b", "math"), ("beta-1b", "coding")}
    assert len({p["details"]["run_id"] for p in data["profiles"]}) == 3
    math = next(p for p in data["profiles"] if p["category"] == "math")
    assert math["details"]["prompts"][0]["method"] == "exact" and math["backend"] == "openai"
    assert [(b["benchmark"], b["value"]) for b in data["benchmarks"]] == [("mmlu_pro", 36.5), ("ifeval", 75.9)]


def _comparable(data: dict) -> dict:
    data = dict(data)
    data.pop("exported_at")
    data["profiles"] = sorted(data["profiles"], key=lambda p: (p["profiled_at"], p["model"], p["category"]))
    return data


def test_import_round_trip_is_idempotent(exported, database_url, tmp_path):
    config = write_config(tmp_path, database=database_url)
    first = routerd(config, "profiles", "import", str(exported))
    assert first.exit_code == 0, first.output
    assert "profiles: 15 rows added, 0 already present; benchmarks: 2 added" in first.output
    assert counts(database_url) == (15, 2, 2)
    second = routerd(config, "profiles", "import", str(exported))
    assert "profiles: 0 rows added, 15 already present; benchmarks: 0 added, 0 updated, 2 kept" in second.output
    assert counts(database_url) == (15, 2, 2)  # two models rows, made for the imported profiles
    again = tmp_path / "again.json"
    assert routerd(config, "profiles", "export", "--output", str(again)).exit_code == 0
    assert _comparable(json.loads(again.read_text())) == _comparable(json.loads(exported.read_text()))


def test_imported_profiles_reach_the_gateway(exported, tmp_path):
    from routerd.testing import build_app

    config = write_config(tmp_path)
    assert routerd(config, "profiles", "import", str(exported)).exit_code == 0
    app = build_app(tmp_path, {"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'routerd.db'}"}})

    async def load():
        gateway = app.state.gateway
        await gateway.start()
        try:
            for _ in range(100):  # the kernel loads the stored profiles in the background at start
                found = gateway.profiles.lookup("openai", "alpha-7b")
                if found is not None:
                    return found
                await asyncio.sleep(0.05)
            return None
        finally:
            await gateway.close()

    found = asyncio.run(load())
    assert found is not None and found.categories["math"].quality == 1.0


def test_a_newer_benchmark_figure_replaces_an_older_one(exported, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'routerd.db'}"
    config = write_config(tmp_path, database=url)
    older = [BenchmarkRecord("hf_leaderboard", "Qwen/Qwen2.5-7B-Instruct", "mmlu_pro", 30.0, FETCHED - dt.timedelta(1))]
    add_benchmarks(url, older)
    result = routerd(config, "profiles", "import", str(exported))
    assert "benchmarks: 1 added, 1 updated, 0 kept" in result.output


def _edited(exported: Path, tmp_path: Path, edit) -> Path:
    data = json.loads(exported.read_text())
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


def _set(path: str, value):
    def edit(data):
        *parents, leaf = path.split("/")
        node = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is KeyError:
            del node[leaf]
        else:
            node[int(leaf) if leaf.isdigit() else leaf] = value

    return edit


LAST = 14  # the last profile row: a bad one at the end must not let the good ones before it in


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(f"profiles/{LAST}/quality", 1.5), f"profiles[{LAST}] (openai/alpha-7b, general): quality: expected"),
        (_set(f"profiles/{LAST}/quality", "high"), "quality: expected `float | null`, got `str`"),
        (_set(f"profiles/{LAST}/drop_table", 1), f"profiles[{LAST}] (openai/alpha-7b, general): drop_table: unknown"),
        (_set(f"profiles/{LAST}/details/prompts/0/score", -1), "details.prompts[0].score: expected `float` >= 0.0"),
        (_set(f"profiles/{LAST}/profiled_at", "2026-12-01T10:00:00"), "profiled_at: expected `datetime` with a"),
        (_set(f"profiles/{LAST}/samples", 9), "samples: 9, but details.prompts has 1"),
        (_set(f"profiles/{LAST}/category", "Bad Category"), "category: expected `str` matching"),
        (
            _set(f"profiles/{LAST}/model", KeyError),
            f"profiles[{LAST}] (openai, general): record: object missing required field `model`",
        ),
        (_set("benchmarks/1/benchmark", "drop_table"), "benchmarks[1] (hf_leaderboard, Qwen/Qwen2.5-7B-Instruct,"),
        (_set("benchmarks/1/value", 1e9), "value: 1000000000.0 is outside ifeval's range 0..100"),
        (_set("version", 2), "version: 2 is not a version this gateway reads (1)"),
        (_set("format", "something-else"), 'format: not a routerd measurements file (expected "format"'),
        (_set("surprise", True), "surprise: unknown key"),
    ],
)
def test_a_bad_file_is_refused_naming_the_record_and_field_and_nothing_is_written(exported, tmp_path, edit, message):
    url = f"sqlite+aiosqlite:///{tmp_path / 'routerd.db'}"
    config = write_config(tmp_path, database=url)
    before = counts(url)
    result = CliRunner().invoke(
        main, ["--config", str(config), "profiles", "import", str(_edited(exported, tmp_path, edit))]
    )
    assert result.exit_code == 1
    assert "routerd profiles import: nothing imported:" in result.output
    assert message in result.output, result.output
    assert counts(url) == before == (0, 0, 0)


def test_a_bad_file_leaves_a_populated_database_as_it_was(exported, tmp_path, database_url):
    config = write_config(tmp_path, database=database_url)
    assert routerd(config, "profiles", "import", str(exported)).exit_code == 0
    before = counts(database_url)

    def edit(data):
        for profile in data["profiles"]:
            profile["details"]["run_id"] += "-new"  # all new rows ...
        data["profiles"][-1]["latency_ms"] = -5  # ... but the last one is bad

    result = CliRunner().invoke(
        main, ["--config", str(config), "profiles", "import", str(_edited(exported, tmp_path, edit))]
    )
    assert result.exit_code == 1 and "latency_ms: expected `float` >= 0.0" in result.output
    assert counts(database_url) == before


def test_not_json_is_refused(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "routerd.measurements", ')
    result = CliRunner().invoke(main, ["--config", str(write_config(tmp_path)), "profiles", "import", str(path)])
    assert result.exit_code == 1 and "not valid JSON" in result.output

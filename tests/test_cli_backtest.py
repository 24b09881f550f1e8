"""``sentimon alerts backtest RULE`` and ``sentimon alerts rules add … --preview``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from services.alerts.detection import DAY_S
from services.cli import main
from services.core.settings import CommonSettings
from services.core.storage.db import make_engine
from tests.alerts.test_evaluator import load_rollups
from tests.fixtures.synthetic_traffic import synthetic_timeline


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SENTIMON_DATA_DIR", "SENTIMON_DATABASE_URL", "SENTIMON_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory tracking Acme, with ten days of history up to tomorrow and a
    surge two days ago at 14:00 UTC."""
    runner = CliRunner()
    assert (
        runner.invoke(
            main, ["brands", "add", "Acme", '"acme"', "--data-dir", str(tmp_path)]
        ).exit_code
        == 0
    )
    today = int(datetime.now(UTC).timestamp()) // DAY_S * DAY_S
    tl = synthetic_timeline(days=10, seed=5)
    tl.start = today - 9 * DAY_S
    tl.mentions = {"Acme": tl.mentions["Acme"]}
    tl.negative = {"Acme": tl.negative["Acme"]}
    tl.burst("Acme", 7 * 1440 + 14 * 60, 30, 5.0, seed=3)
    engine = make_engine(CommonSettings(data_dir=tmp_path).resolved_database_url())
    load_rollups(engine, tl)
    engine.dispose()
    return tmp_path


def surge(days_ago: int = 2) -> str:
    today = int(datetime.now(UTC).timestamp()) // DAY_S * DAY_S
    return datetime.fromtimestamp(today - days_ago * DAY_S + 14 * 3600, UTC).isoformat()


def test_backtest_prints_the_windows_and_a_summary(data_dir: Path) -> None:
    runner = CliRunner()
    d = ["--data-dir", str(data_dir)]
    r = runner.invoke(
        main,
        ["alerts", "rules", "add", "Acme", "--kind", "volume_spike", "--sensitivity", "1e-3", *d],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["alerts", "backtest", "1", "--json", *d])
    assert r.exit_code == 0, r.output
    lines = [orjson.loads(x) for x in r.output.splitlines()]
    assert lines[-1]["type"] == "summary" and lines[-1]["windows_evaluated"] == 28 * 96
    assert surge() in {w["window"]["start"] for w in lines[:-1]}
    r = runner.invoke(main, ["alerts", "backtest", "1", "--from", surge(3)[:10], *d])
    assert r.exit_code == 0, r.output
    assert surge() in r.output
    assert "windows judged from" in r.output.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "2010-01-01", "--to", "2020-01-01"], "--from"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "--from"),
        (["--to", "last week"], "--to"),
    ],
)
def test_backtest_refuses_bad_periods_naming_the_option(
    data_dir: Path, args: list[str], words: str
) -> None:
    runner = CliRunner()
    d = ["--data-dir", str(data_dir)]
    assert runner.invoke(main, ["alerts", "rules", "add", "Acme", *d]).exit_code == 0
    r = runner.invoke(main, ["alerts", "backtest", "1", *args, *d])
    assert r.exit_code == 2, r.output
    assert words in r.output


def test_backtest_of_an_unknown_rule_fails(data_dir: Path) -> None:
    r = CliRunner().invoke(main, ["alerts", "backtest", "7", "--data-dir", str(data_dir)])
    assert r.exit_code == 1
    assert "7" in r.output


def test_preview_shows_what_a_rule_would_raise_and_adds_nothing(data_dir: Path) -> None:
    runner = CliRunner()
    d = ["--data-dir", str(data_dir)]
    r = runner.invoke(
        main,
        [
            "alerts",
            "rules",
            "add",
            "Acme",
            "--kind",
            "volume_spike",
            "--sensitivity",
            "1e-3",
            "--preview",
            "--preview-days",
            "7",
            *d,
        ],
    )
    assert r.exit_code == 0, r.output
    assert surge() in r.output
    assert "672 windows judged" in r.output
    assert "preview only" in r.output
    assert runner.invoke(main, ["alerts", "rules", "list", *d]).output == ""
    r = runner.invoke(main, ["alerts", "rules", "add", "Nope", "--preview", *d])
    assert r.exit_code == 1 and "brand" in r.output

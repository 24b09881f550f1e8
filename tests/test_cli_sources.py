"""``sentimon run --sources``: the file is checked with the ingest's source URL policy
before anything starts, so a refused URL gets the CLI's message, not a failed start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import services.embedded
from services.cli import main

METADATA_FEED = """\
- name: alerts
  kind: rss
  feeds:
    - url: https://93.184.215.14/alerts.atom
    - url: http://169.254.169.254/latest/meta-data/
"""


@pytest.fixture(autouse=True)
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """No SENTIMON_* of the caller's, and ``run`` never starts: the embedded service is
    replaced by one that records what it was given."""
    for name in (
        "SENTIMON_DATA_DIR",
        "SENTIMON_DATABASE_URL",
        "SENTIMON_LOG_LEVEL",
        "SENTIMON_SOURCES_FILE",
        "SENTIMON_SOURCE_ALLOW_LOOPBACK",
        "SENTIMON_SOURCE_ALLOW_PRIVATE",
        "SENTIMON_SOURCE_CREDENTIAL_HOSTS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    started: list[dict[str, Any]] = []

    async def run_embedded(**kwargs: Any) -> None:
        started.append(kwargs)

    monkeypatch.setattr(services.embedded, "run_embedded", run_embedded)
    return started


def run_with(sources_yaml: str, tmp_path: Path) -> Result:
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml)
    args = ["run", "--no-demo", "--sources", str(sources), "--data-dir", str(tmp_path / "d")]
    return CliRunner().invoke(main, args)


def test_a_feed_at_the_metadata_address_is_refused_naming_entry_and_field(
    tmp_path: Path, started: list[dict[str, Any]]
) -> None:
    result = run_with(METADATA_FEED, tmp_path)
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "Error: " in result.output
    assert "sources.yaml: [0].feeds[1].url: " in result.output
    assert "169.254.169.254 is a link-local address" in result.output
    assert started == []


def test_platform_credentials_to_another_host_are_refused(
    tmp_path: Path, started: list[dict[str, Any]]
) -> None:
    result = run_with("- name: x\n  kind: x\n  api_base: https://x.example.com\n", tmp_path)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "[0].api_base: 'x.example.com' is not a host of x" in result.output
    assert started == []


def test_the_operator_may_allow_it_and_then_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("SENTIMON_SOURCE_ALLOW_PRIVATE", "true")
    result = run_with(METADATA_FEED, tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(started) == 1
    assert started[0]["ingest"].source_url_policy().allow_private

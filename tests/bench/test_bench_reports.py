"""The report benchmark's store is built straight with bulk SQL, not by the writer: its
rollups must still be the writer's (else the benchmark would time a report over wrong
figures, or a shortcut taken on a bound that is not one)."""

from __future__ import annotations

from pathlib import Path

from services.core.storage.db import make_engine, sqlite_url
from tests.bench.bench_reports import build_store
from tests.fixtures import report_data


def test_the_built_stores_rollups_agree_with_its_facts(tmp_path: Path) -> None:
    build_store(tmp_path, 3_000)
    engine = make_engine(sqlite_url(tmp_path))
    report_data.assert_rollups_agree(engine)
    engine.dispose()

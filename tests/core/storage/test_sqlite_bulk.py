"""Many rows a statement on SQLite: every row stored once, split under SQLite's limits, and
the rows changed counted as ``executemany`` counts them."""

from __future__ import annotations

import sqlite3

import pytest

from services.core.storage.sqlite_bulk import MAX_ROWS, insert_rows


@pytest.fixture
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER NOT NULL)")
    return conn


def test_rows_beyond_one_statement_are_all_stored_and_duplicates_skipped(
    db: sqlite3.Connection,
) -> None:
    rows = [(k, f"r{k}", k * 2) for k in range(2 * MAX_ROWS + 7)]
    cursor = db.cursor()
    assert insert_rows(cursor, "INSERT INTO t (k, name, n)", rows[::2]) == len(rows[::2])
    changed = insert_rows(cursor, "INSERT INTO t (k, name, n)", rows, "ON CONFLICT (k) DO NOTHING")
    assert changed == len(rows) - len(rows[::2])
    assert db.execute("SELECT k, name, n FROM t ORDER BY k").fetchall() == rows


def test_statements_stay_under_the_limit_on_bound_values(db: sqlite3.Connection) -> None:
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 7)  # two rows of three a statement
    rows = [(k, "x", 1) for k in range(5)]
    assert insert_rows(db.cursor(), "INSERT INTO t (k, name, n)", rows) == 5
    upsert = "ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n"
    assert insert_rows(db.cursor(), "INSERT INTO t (k, name, n)", rows, upsert) == 5
    assert db.execute("SELECT sum(n) FROM t").fetchone() == (10,)


def test_no_rows_run_no_statement(db: sqlite3.Connection) -> None:
    assert insert_rows(db.cursor(), "INSERT INTO nowhere (k)", []) == 0

"""Engines and migrations. The database is named by one SQLAlchemy URL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event

from services.core.storage.errors import MigrationRequiredError

SQLITE_BEGIN = "sqlite_begin"
"""Execution option: ``conn.execution_options(sqlite_begin="IMMEDIATE")`` for a writer."""


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it begins IMMEDIATE, taking the write
    lock before its first read, so a read-then-write never fails with "database is
    locked" when another writer got there first (it waits, up to the busy timeout)."""
    with engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) as conn, conn.begin():
        yield conn


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'sentimon.db').resolve()}"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so readers never block the writer."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Transactions are begun by SQLAlchemy (below), not implicitly by the driver.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Writers ask for IMMEDIATE: they hold the write lock from their first
            # statement, so what they read inside the transaction stays true until commit.
            mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("services.core.storage") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent)."""
    cfg = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        # "heads": a branch under development (two migrations off one parent) is applied
        # too; a released chain is linear (tests/core/storage checks there is one head).
        command.upgrade(cfg, "heads")


def check_schema_current(engine: Engine) -> None:
    """Raise ``MigrationRequiredError`` unless the database is at the newest revision."""
    cfg = _alembic_config(engine.url.render_as_string(hide_password=False))
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        raise MigrationRequiredError(
            f"database is at revision {sorted(current)!r}, code expects {sorted(heads)!r}: "
            "run `sentimon migrate`"
        )

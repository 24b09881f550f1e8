"""Owned accounts at write time, on both databases and both write paths: a mention by a
brand's own account is stored and flagged, counted for the other brands it names and not
for its owner (rollups, facts, author days, brand links, review queue), so share of voice
and net sentiment leave it out. The mentions: ``tests/fixtures/owned_accounts.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from services.core.clock import FrozenClock
from services.core.storage.analytics import brand_buckets
from services.core.storage.tables import (
    brand_author_day_rollups,
    brand_mention_facts,
    brand_minute_rollups,
    brand_role_hour_rollups,
    mention_brands,
    mention_owners,
    mentions,
    review_items,
)
from services.core.storage.writer import MentionWriter
from tests.fixtures.owned_accounts import (
    ACME_COUNTED,
    BATCH,
    END,
    GLOBEX_COUNTED,
    OWNED,
    START,
    T0,
    owned_store,
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = owned_store(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _ids(engine: Engine, table: Any, brand: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(mentions.c.mention_id)
                .join(table, table.c.mention_pk == mentions.c.pk)
                .where(table.c.brand == brand)
            ).scalars()
        )


def _sum(engine: Engine, table: Any, column: str, brand: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(table.c[column]), 0)).where(table.c.brand == brand)
            ).scalar_one()
        )


def _owned(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(mentions.c.mention_id, mention_owners.c.brand).join(
                mention_owners, mention_owners.c.mention_pk == mentions.c.pk
            )
        )
        return {(m, b) for m, b in rows}


def test_owned_mentions_are_stored_flagged_and_counted_only_for_other_brands(
    engine: Engine,
) -> None:
    writer = MentionWriter(engine, FrozenClock(T0))
    assert writer.write(BATCH).inserted == len(BATCH)
    assert writer.write(BATCH).inserted == 0  # a redelivery changes nothing below

    with engine.connect() as conn:
        stored = set(conn.execute(select(mentions.c.mention_id)).scalars())
        queued = {
            (m, b)
            for m, b in conn.execute(
                select(mentions.c.mention_id, review_items.c.brand).join(
                    review_items, review_items.c.mention_pk == mentions.c.pk
                )
            )
        }
    assert stored == {r.mention.id for r in BATCH}
    assert _owned(engine) == OWNED
    assert _ids(engine, mention_brands, "Acme") == ACME_COUNTED
    assert _ids(engine, mention_brands, "Globex") == GLOBEX_COUNTED
    assert _ids(engine, brand_mention_facts, "Acme") == ACME_COUNTED
    assert _ids(engine, brand_mention_facts, "Globex") == GLOBEX_COUNTED
    assert queued == set()  # s1 was sampled, but only for Acme, whose own it is
    for table, column in (
        (brand_minute_rollups, "mentions"),
        (brand_role_hour_rollups, "mentions"),
        (brand_author_day_rollups, "mentions"),
    ):
        assert _sum(engine, table, column, "Acme") == len(ACME_COUNTED), table.name
        assert _sum(engine, table, column, "Globex") == len(GLOBEX_COUNTED), table.name
    with engine.connect() as conn:
        authors = set(
            conn.execute(
                select(brand_author_day_rollups.c.author_id).where(
                    brand_author_day_rollups.c.brand == "Acme"
                )
            ).scalars()
        )
    assert authors == {"x-bob", "x-carol", "x-dan", "reddit-acmecare"}

    # Share of voice and net sentiment: Acme 4 mentions (3 negative, 1 positive), Globex 2.
    with engine.connect() as conn:
        sov = brand_buckets(conn, ["Acme", "Globex"], START, END, 3600)
    acme, globex = sov.totals["Acme"], sov.totals["Globex"]
    assert (acme.mentions, acme.positive, acme.negative) == (4, 1, 3)
    assert acme.net_sentiment == pytest.approx((1 - 3) / (1 + 3))
    assert (globex.mentions, globex.positive) == (2, 2)
    assert acme.reach == 4 * 5_000

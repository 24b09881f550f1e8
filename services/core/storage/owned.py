"""Owned accounts at write time: which inserted mentions a brand wrote itself.

``MentionWriter`` calls ``set_aside_owned`` in the batch's transaction, with the
mentions it really inserted, before anything is counted: a mention by an owned account
of brand B is flagged (a ``mention_owners`` row) and counted for every brand it names
except B (and any other brand that lists the same handle). The owned handles are read
from the brands table in that same transaction, so a mention is judged by the handles
listed when it was stored; changing them later does not move mentions stored before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection, insert, select

from services.core.owned import OwnedAccounts
from services.core.storage.tables import brands, mention_owners

if TYPE_CHECKING:
    from services.core.storage.writer import ScoredRecord


def owned_accounts(conn: Connection) -> OwnedAccounts:
    """The owned handles of every tracked brand, as stored."""
    rows = conn.execute(select(brands.c.name, brands.c.owned_handles))
    return OwnedAccounts.of((name, handles) for name, handles in rows if handles)


def set_aside_owned(
    conn: Connection, inserted: Sequence[tuple[ScoredRecord, int]]
) -> list[tuple[ScoredRecord, int]]:
    """Flag the inserted mentions written by an owned account, and return ``inserted``
    with each record's ``brands`` cut to the brands that count it (the order kept)."""
    accounts = owned_accounts(conn)
    if not accounts:
        return list(inserted)
    out: list[tuple[ScoredRecord, int]] = []
    flags: list[dict[str, object]] = []
    for r, pk in inserted:
        m = r.mention
        owners = accounts.owners(m.source, m.author.handle)
        if not owners:
            out.append((r, pk))
            continue
        flags.extend(
            {"mention_pk": pk, "brand": b, "created_at": m.created_at} for b in sorted(owners)
        )
        counted = tuple(b for b in r.brands if b not in owners)
        out.append((dataclasses.replace(r, brands=counted), pk))
    if flags:
        conn.execute(insert(mention_owners), flags)
    return out

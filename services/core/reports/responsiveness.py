"""The report's responsiveness: how many of a brand's negative mentions its own accounts
answered, and how fast.

A negative mention is answered when a stored mention by an owned account of the brand
(flagged as it was written: ``mention_owners``) replies to it (same source,
``in_reply_to_id``), whenever that reply came; the time to answer is from the mention to
the first such reply. The negative mentions are the brand's (its own accounts' left out,
like every figure), from the same rollups as the report's net sentiment.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.orm import aliased

from services.core.reports import figures
from services.core.reports.model import Denominator, Responsiveness
from services.core.reports.queries import ts
from services.core.storage.tables import brand_mention_facts, mention_owners, mentions


def first_answers(
    conn: Connection, brand: str, start: int, end: int
) -> list[tuple[datetime, datetime]]:
    """``(created_at, first answer)`` of each negative mention of ``brand`` in
    ``[start, end)`` that an owned account of ``brand`` replied to."""
    f, o = brand_mention_facts.c, mention_owners.c
    if not has_owned_mentions(conn, brand):
        # Nothing can be an answer: skip joining every negative mention of the period.
        return []
    reply = aliased(mentions)
    stmt = (
        select(f.created_at, func.min(reply.c.created_at))
        .select_from(brand_mention_facts)
        .join(mentions, mentions.c.pk == f.mention_pk)
        .join(
            reply,
            and_(
                reply.c.in_reply_to_id == mentions.c.mention_id,
                reply.c.source == mentions.c.source,
            ),
        )
        .join(mention_owners, and_(o.mention_pk == reply.c.pk, o.brand == brand))
        .where(
            f.brand == brand,
            f.label == "negative",
            f.created_at >= ts(start),
            f.created_at < ts(end),
        )
        .group_by(f.mention_pk, f.created_at)
    )
    return [(created, answered) for created, answered in conn.execute(stmt)]


def has_owned_mentions(conn: Connection, brand: str) -> bool:
    """Whether any stored mention, of any time, was written by an owned account of
    ``brand`` (one index probe)."""
    o = mention_owners.c
    found = conn.execute(select(o.mention_pk).where(o.brand == brand).limit(1)).first()
    return found is not None


def owned_mentions(conn: Connection, brand: str, start: int, end: int) -> int:
    """Mentions by owned accounts of ``brand`` written in ``[start, end)``."""
    o = mention_owners.c
    return int(
        conn.execute(
            select(func.count()).where(
                o.brand == brand, o.created_at >= ts(start), o.created_at < ts(end)
            )
        ).scalar_one()
    )


def median_seconds(answers: Sequence[tuple[datetime, datetime]]) -> float | None:
    """The median time from mention to first answer (a reply stamped before the mention,
    a clock skew between platforms, counts as 0); ``None`` without answers. Pure."""
    if not answers:
        return None
    return float(statistics.median(max(0.0, (a - c).total_seconds()) for c, a in answers))


def build_responsiveness(
    conn: Connection,
    brand: str,
    start: int,
    end: int,
    *,
    negative_mentions: int,
    owned_handles: Sequence[str],
) -> Responsiveness:
    """The section for ``brand`` over ``[start, end)``; ``negative_mentions``: the
    brand's negative mentions there, from the rollups."""
    answers = first_answers(conn, brand, start, end)
    answered = len(answers)
    owned = owned_mentions(conn, brand, start, end)
    note = None
    share = figures.ratio(answered, negative_mentions)
    if not owned_handles and not answered:
        note = (
            f"{brand} lists no owned accounts: add its handles (owned_handles) to measure "
            "how it answers"
        )
        share = None
    elif negative_mentions == 0:
        note = f"no negative mentions of {brand} in the period"
    elif answered == 0:
        note = "no negative mention was answered by an owned account"
    return Responsiveness(
        owned_handles=list(owned_handles),
        owned_mentions=owned,
        negative_mentions=negative_mentions,
        answered=answered,
        share_answered=share,
        median_seconds_to_first_answer=median_seconds(answers),
        denominators={
            "share_answered": Denominator(
                of="negative mentions",
                total=negative_mentions,
                description=f"mentions of {brand} in the period scored negative (those by "
                "its own accounts are left out)",
            ),
            "median_seconds_to_first_answer": Denominator(
                of="answered negative mentions",
                total=answered,
                description=f"negative mentions of {brand} in the period that one of its own "
                "accounts replied to; the time is from the mention to its first such reply",
            ),
        },
        note=note,
    )

"""The report's language mix: which languages a brand's mentions are written in, from the
per-(brand, hour, language) rollups and the facts of the period's partial hours."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, case, func, literal_column, select

from services.core.languages import is_scorable
from services.core.reports.model import Denominator, LanguageMix, LanguageShare
from services.core.reports.queries import ts
from services.core.storage.report_rows import HOUR
from services.core.storage.tables import brand_language_hour_rollups, brand_mention_facts

TOP_LANGUAGES = 8


def _fact_counts(conn: Connection, brand: str, start: int, end: int) -> Iterable[Any]:
    f = brand_mention_facts.c
    return conn.execute(
        select(
            func.coalesce(f.language, literal_column("''")),
            func.count(),
            func.sum(case((f.label == "unscored", 1), else_=0)),
        )
        .where(f.brand == brand, f.created_at >= ts(start), f.created_at < ts(end))
        .group_by(func.coalesce(f.language, literal_column("''")))
    )


def language_counts(
    conn: Connection, brand: str, start: int, end: int
) -> list[tuple[str | None, int, int]]:
    """``(language, mentions, unscored mentions)`` of ``brand`` in [start, end), most
    mentions first (then by code). The period's whole hours are read from
    ``brand_language_hour_rollups``, its partial first and last hours from the facts."""
    first = -(-start // HOUR) * HOUR  # the first whole hour's start
    last = end - end % HOUR  # the end of the last whole hour
    parts: list[Iterable[Any]] = []
    if first < last:
        g = brand_language_hour_rollups.c
        parts.append(
            conn.execute(
                select(g.language, func.sum(g.mentions), func.sum(g.unscored))
                .where(g.brand == brand, g.hour >= first, g.hour < last)
                .group_by(g.language)
            )
        )
        edges = ((start, first), (last, end))
        parts += [_fact_counts(conn, brand, s, e) for s, e in edges if s < e]
    else:
        parts.append(_fact_counts(conn, brand, start, end))
    totals: dict[str, list[int]] = {}
    for part in parts:
        for lang, n, u in part:
            t = totals.setdefault(lang, [0, 0])
            t[0] += int(n)
            t[1] += int(u or 0)
    rows = [(lang or None, n, u) for lang, (n, u) in totals.items() if n]
    return sorted(rows, key=lambda r: (-r[1], r[0] or ""))


def language_mix(
    conn: Connection, brand: str, start: int, end: int, top: int = TOP_LANGUAGES
) -> LanguageMix:
    """The ``top`` languages of ``brand``'s mentions in [start, end), the rest summed."""
    counts = language_counts(conn, brand, start, end)
    total = sum(n for _, n, _ in counts)
    return LanguageMix(
        languages=[
            LanguageShare(
                language=lang,
                mentions=n,
                share=n / total if total else None,
                scored=is_scorable(lang),
            )
            for lang, n, _ in counts[:top]
        ],
        other_languages=sum(n for _, n, _ in counts[top:]),
        unscored=sum(u for _, _, u in counts),
        denominator=Denominator(
            of="mentions",
            total=total,
            description=f"all mentions of {brand} in the period; a language the scorer "
            "cannot read leaves its mentions unscored (no language: undetermined, read as "
            "English)",
        ),
    )

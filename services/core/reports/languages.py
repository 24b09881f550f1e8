"""The report's language mix: which languages a brand's mentions are written in, from one
range scan of the period's per-(mention, brand) facts."""

from __future__ import annotations

from sqlalchemy import Connection, case, func, select

from services.core.languages import is_scorable
from services.core.reports.model import Denominator, LanguageMix, LanguageShare
from services.core.reports.queries import ts
from services.core.storage.tables import brand_mention_facts

TOP_LANGUAGES = 8


def language_counts(
    conn: Connection, brand: str, start: int, end: int
) -> list[tuple[str | None, int, int]]:
    """``(language, mentions, unscored mentions)`` of ``brand`` in [start, end), most
    mentions first (then by code)."""
    f = brand_mention_facts.c
    stmt = (
        select(
            f.language,
            func.count(),
            func.sum(case((f.label == "unscored", 1), else_=0)),
        )
        .where(f.brand == brand, f.created_at >= ts(start), f.created_at < ts(end))
        .group_by(f.language)
    )
    rows = [(lang, int(n), int(u or 0)) for lang, n, u in conn.execute(stmt)]
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

"""Author roles from bios and titles, and the influence score."""

from __future__ import annotations

import time

import pytest

from services.core.authors import (
    MAX_BIO_CHARS,
    AuthorRole,
    author_role,
    classify_bio,
    in_conversation,
    influence,
)

DM = AuthorRole.DECISION_MAKER
MK = AuthorRole.MARKETING_PR
OTHER = AuthorRole.OTHER


@pytest.mark.parametrize(
    ("bio", "role"),
    [
        # English titles, in the ways bios spell them
        ("CEO at Initech", DM),
        ("cto & co-founder @ acme", DM),
        ("Chief Revenue Officer, Globex", DM),
        ("Chief Information Security Officer", DM),
        ("SVP Sales EMEA", DM),
        ("Vice-President, Operations", DM),
        ("Director of IT", DM),
        ("Managing Director | Europe", DM),
        ("Head of Customer Support", DM),
        ("Founder. Builder. Dad.", DM),
        ("Co-owner of a small bakery", DM),
        ("General Manager, Northwind", DM),
        ("Board member, ACME Foundation", DM),
        # seniority wins over function: budget holders in marketing are decision makers
        ("VP Marketing at Initech", DM),
        ("CMO", DM),
        ("Marketing Director", DM),
        # marketing and PR below that level
        ("Marketing Manager | B2B SaaS", MK),
        ("Senior Product Marketer", MK),
        ("PR & comms lead", MK),
        ("Public Relations at Globex", MK),
        ("Community Manager", MK),
        ("Social media for @acme", MK),
        ("Brand Manager, snacks", MK),
        ("Demand generation specialist", MK),
        ("Spokesperson for the city", MK),
        # other languages
        ("Geschäftsführerin bei Müller GmbH", DM),
        ("Gründer & Inhaber", DM),
        ("Abteilungsleiter Einkauf", DM),
        ("Pressesprecherin der Stadtwerke", MK),
        ("Fondatrice et PDG", DM),
        ("Directrice commerciale", DM),
        ("Chargée de communication", MK),
        ("Fundadora de Tiendas Sol", DM),
        ("Jefe de compras", DM),
        ("Relaciones públicas y prensa", MK),
        ("Amministratore delegato", DM),
        ("Ufficio stampa", MK),
        ("Diretora de operações", DM),
        ("Oprichter en eigenaar", DM),
        ("代表取締役社長", DM),
        ("広報担当です", MK),
        ("创始人兼首席执行官", DM),
        ("公关经理", MK),
        # nothing stated, or a title that is not one
        ("", OTHER),
        ("Software engineer. Opinions my own.", OTHER),
        ("Product Owner @ bank", OTHER),
        ("proud dog owner", OTHER),
        ("I review PRs for a living", OTHER),
        ("pr reviews all day", OTHER),
        ("Former CEO, now gardening", OTHER),
        ("ex-founder, happy employee", OTHER),
        ("aspiring founder", OTHER),
        ("Ehemaliger Geschäftsführer", OTHER),
        # a negation covers only the title it precedes
        ("Ex-CEO. Head of Growth at X", DM),
    ],
)
def test_roles_from_bios(bio: str, role: AuthorRole) -> None:
    assert classify_bio(bio) == role


def test_the_name_can_carry_the_title_and_both_may_be_missing() -> None:
    assert author_role("Dana Smith | CEO @ Initech", None) == DM
    assert author_role(None, "Head of PR") == DM
    assert author_role(None, None) == OTHER
    assert author_role("Dana", "growth marketer") == MK


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 1_000_000,
        "chief " * 200_000,  # the one bounded repetition in the patterns
        "former " * 200_000 + "CEO",
        "<script>alert(1)</script> CEO" * 10_000,
        "\u0000\ud7ff\U0010ffff" * 100_000,
        "ex-" * 300_000,
    ],
)
def test_hostile_and_huge_bios_are_bounded(hostile: str) -> None:
    t0 = time.perf_counter()
    role = author_role(hostile, hostile)
    classify_bio(hostile)
    # Bounded input (MAX_BIO_CHARS of each field): a generous bound, far from flaky.
    assert time.perf_counter() - t0 < 2.0
    assert role in AuthorRole


def test_only_the_start_of_a_long_bio_is_read() -> None:
    assert author_role(None, "x" * MAX_BIO_CHARS + " CEO") == OTHER
    assert author_role(None, "CEO " + "x" * 10 * MAX_BIO_CHARS) == DM


def test_conversation_is_a_reply_a_thread_by_another_or_answered() -> None:
    assert not in_conversation("m1", None, None, 0)
    assert not in_conversation("m1", None, "m1", 0)  # starts its own thread: a broadcast
    assert in_conversation("m1", "m0", None, 0)
    assert in_conversation("m1", None, "m0", 0)
    assert in_conversation("m1", None, "m1", 2)  # others replied to it


def test_influence_follows_its_documented_formula() -> None:
    import math

    def documented(f: int, n: int, e: int, r: int) -> float:
        reach = min(1.0, math.log10(1 + f) / 8)
        eng = min(1.0, math.log10(1 + e / n) / 5)
        conv = min(1.0, math.log10(1 + r / n) / 3)
        return round(100 * (0.5 * reach + 0.3 * eng + 0.2 * conv), 1)

    for args in [
        (0, 1, 0, 0),
        (1200, 3, 40, 2),
        (10**6, 10, 10**5, 300),
        (10**12, 1, 10**9, 10**6),
    ]:
        assert influence(*args) == documented(*args)
    assert influence(10**12, 1, 10**12, 10**12) == 100.0
    assert influence(0, 1, 0, 0) == 0.0
    assert influence(5000, 0, 10, 1) == 0.0  # no mention, no influence
    # More followers, engagement or replies never lowers it.
    assert influence(1000, 2, 10, 1) < influence(100_000, 2, 10, 1)
    assert influence(1000, 2, 10, 1) < influence(1000, 2, 1000, 1)
    assert influence(1000, 2, 10, 1) < influence(1000, 2, 10, 50)

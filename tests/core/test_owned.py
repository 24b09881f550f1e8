"""Owned handles: what is a handle, how an entry that is not one is named, and which
brands own the author of a mention (case-insensitive, on any platform or on one)."""

from __future__ import annotations

import pytest

from services.core.owned import (
    MAX_OWNED_HANDLES,
    OwnedAccounts,
    OwnedHandleError,
    checked_owned_handles,
    owned_handle,
)

GOOD = ["AcmeSupport", "@acmehq", "x:AcmeCare", "mastodon:acme@mastodon.social", "acme.bsky.social"]

BAD = [
    pytest.param("Acme Support", "contains a space", id="space"),
    pytest.param("https://x.com/acme", "is a URL", id="url"),
    pytest.param("x.com/acme", "is a URL", id="path"),
    pytest.param("a" * 101, "at most 100 characters", id="too-long"),
    pytest.param("acme\x07", "control character U+0007 at position 4", id="control"),
    pytest.param("acme\u202e", "control character U+202E", id="bidi"),
    pytest.param("   ", "empty", id="blank"),
    pytest.param("myspace:acme", "unknown source 'myspace'", id="unknown-source"),
    pytest.param("acme!", "is not a handle", id="punctuation"),
    pytest.param("#acme", "is not a handle", id="hashtag"),
]


def test_handles_are_stored_without_the_at_sign_and_with_the_source_in_lower_case() -> None:
    assert [owned_handle(h) for h in GOOD] == [
        "AcmeSupport",
        "acmehq",
        "x:AcmeCare",
        "mastodon:acme@mastodon.social",
        "acme.bsky.social",
    ]
    assert owned_handle("  X:@AcmeCare ") == "x:AcmeCare"


@pytest.mark.parametrize(("bad", "why"), BAD)
def test_an_entry_that_is_not_a_handle_is_refused_naming_it(bad: str, why: str) -> None:
    with pytest.raises(OwnedHandleError) as e:
        checked_owned_handles(["acme", "acmehq", "x:acmecare", bad])
    assert str(e.value).startswith("owned_handles[3]: ")
    assert why in str(e.value)


def test_at_most_50_handles_and_duplicates_are_dropped() -> None:
    with pytest.raises(OwnedHandleError, match=r"^owned_handles: .*at most 50"):
        checked_owned_handles([f"acme{i}" for i in range(MAX_OWNED_HANDLES + 1)])
    assert len(checked_owned_handles([f"acme{i}" for i in range(MAX_OWNED_HANDLES)])) == 50
    assert checked_owned_handles(["AcmeHQ", "@acmehq", "acmehq", "x:acmehq"]) == [
        "AcmeHQ",
        "x:acmehq",
    ]


def test_owners_match_the_author_handle_case_insensitively_per_source() -> None:
    accounts = OwnedAccounts.of(
        [
            ("Acme", checked_owned_handles(["AcmeSupport", "x:AcmeCare"])),
            ("Globex", ["globexcorp"]),
            ("Acme Group", ["acmesupport"]),
        ]
    )
    assert accounts.owners("x", "@ACMESUPPORT") == {"Acme", "Acme Group"}
    assert accounts.owners("reddit", "acmesupport") == {"Acme", "Acme Group"}
    assert accounts.owners("x", "acmecare") == {"Acme"}
    # x:AcmeCare is Acme's on X only: on Reddit the name may be someone else's.
    assert accounts.owners("reddit", "AcmeCare") == frozenset()
    assert accounts.owners("x", "acme") == frozenset()
    assert not OwnedAccounts.of([("Acme", [])])

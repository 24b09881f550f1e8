"""The trusted messages: found by the identity of the bytes sent, never by equality, and
bounded."""

from __future__ import annotations

import pytest

from services.core.stream.trusted import TrustedMessages


def copy_of(value: bytes) -> bytes:
    """An equal ``bytes`` object that is not ``value``."""
    copy = bytes(bytearray(value))
    assert copy == value and copy is not value
    return copy


def test_the_object_sent_is_found_once_and_an_equal_copy_never() -> None:
    trusted = TrustedMessages[str](10)
    value = b'{"id": "m1"}'
    trusted.register(value, "validated m1")
    assert trusted.take(copy_of(value)) is None
    assert len(trusted) == 1
    assert trusted.take(value) == "validated m1"
    assert len(trusted) == 0
    assert trusted.take(value) is None  # delivered again (a redelivery): parsed then


def test_a_discarded_send_is_forgotten_and_a_copy_discards_nothing() -> None:
    trusted = TrustedMessages[str](10)
    value = b'{"id": "m1"}'
    trusted.register(value, "validated m1")
    trusted.discard(copy_of(value))
    assert len(trusted) == 1
    trusted.discard(value)
    assert len(trusted) == 0
    trusted.discard(value)  # not registered: nothing happens
    assert trusted.take(value) is None


def test_messages_never_consumed_cannot_grow_it_beyond_its_capacity() -> None:
    trusted = TrustedMessages[int](100)
    sent = [f'{{"id": "m{i}"}}'.encode() for i in range(1_000)]
    for i, value in enumerate(sent):
        trusted.register(value, i)
        assert len(trusted) <= 100
    assert len(trusted) == 100
    assert trusted.evicted == 900
    # The oldest were forgotten (a consumer parses them); the newest are still found.
    assert trusted.take(sent[0]) is None
    assert trusted.take(sent[899]) is None
    assert trusted.take(sent[900]) == 900
    assert trusted.take(sent[-1]) == 999
    assert len(trusted) == 98


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        TrustedMessages[str](0)

"""The shared text helpers: HTML to text, caps and the schema's limits."""

from __future__ import annotations

from datetime import UTC, datetime

from services.core.models import MAX_TEXT_CHARS
from services.ingest.sources.http import retry_after_seconds
from services.ingest.sources.text import (
    bounded_id,
    count,
    html_to_text,
    http_url,
    lang_tag,
    mention_text,
    parse_time,
)


def test_html_is_reduced_to_its_readable_text() -> None:
    html = (
        "<p>Hello <b>Acme</b> &amp; friends&nbsp;!</p><script>alert('x')</script>"
        "<style>p{}</style><ul><li>one</li><li>two</li></ul><img src=x onerror=alert(1)>"
        "<iframe src='https://evil.example'>frame text</iframe>&lt;script&gt;"
    )
    assert html_to_text(html) == "Hello Acme & friends !\n\none\n\ntwo\n\n<script>"


def test_malformed_html_never_raises() -> None:
    for html in ("<p", "<<<>>>", "</div></div>", "<a href='", "&#xZZZ;", "<script>never closed"):
        html_to_text(html)
    assert html_to_text("<b>unclosed <i>tags") == "unclosed tags"


def test_control_characters_are_dropped_and_text_is_nfc() -> None:
    assert html_to_text("cafe\u0301\x00\x07 ok") == "café ok"


def test_long_text_is_capped_to_the_schema_limit_with_an_ellipsis() -> None:
    text = mention_text("x" * (MAX_TEXT_CHARS * 3))
    assert len(text) == MAX_TEXT_CHARS
    assert text.endswith("…")
    assert mention_text("a", "", None, "b") == "a\n\nb"


def test_ids_longer_than_the_schema_allows_become_stable_digests() -> None:
    long = "https://example.com/" + "a" * 400
    assert bounded_id(long) == bounded_id(long)
    assert len(bounded_id(long)) <= 256
    assert bounded_id(long) != bounded_id(long + "b")
    assert bounded_id("short", "p:") == "p:short"


def test_values_the_schema_would_refuse_become_none_or_zero() -> None:
    assert lang_tag("en-US") == "en-US"
    assert lang_tag("not a language!") is None
    assert lang_tag(None) is None
    assert http_url("javascript:alert(1)") is None
    assert http_url("https://ok.example/a") == "https://ok.example/a"
    assert count(-5) == 0
    assert count(10**15) == 10**12
    assert count("12") == 0
    assert count(True) == 0
    assert parse_time("2026-11-20T12:00:00Z") == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert parse_time("2026-11-20T12:00:00") is None  # naive
    assert parse_time("yesterday") is None


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Fri, 20 Nov 2026 12:01:30 GMT", now) == 90.0
    assert retry_after_seconds("Fri, 20 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
    assert retry_after_seconds("99999999", now) == 3600.0

"""Turning platform text (HTML, oversized, odd characters) into what ``mention.v1`` allows.

Pure functions; every connector maps its payloads through these, so the limits of the
schema (``services/core/models.py``) are enforced in one place.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from services.core.models import MAX_TEXT_CHARS

MAX_ID_CHARS = 256
MAX_NAME_CHARS = 512
MAX_DESCRIPTION_CHARS = 2000
MAX_URL_CHARS = 2048
# HTML larger than this is cut before parsing: the text of a mention is capped far below,
# and parsing cost must not depend on what a hostile feed sends.
MAX_HTML_CHARS = 200_000
ELLIPSIS = "…"

_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_URL = re.compile(r"^https?://\S+$")
# C0/C1 controls except tab and newline, and the Unicode non-characters U+FFFE/U+FFFF.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_BLOCK_TAGS = frozenset(
    {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption"}
    | {"figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main"}
    | {"nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul"}
)
# Their content is never text a person wrote for readers.
_SKIPPED_TAGS = frozenset(
    {"script", "style", "template", "noscript", "iframe", "object", "head", "title", "svg"}
)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML fragment: tags dropped, entities decoded, scripts and
    styles removed, block elements as line breaks. Never raises on malformed HTML."""
    parser = _TextExtractor()
    parser.feed(html[:MAX_HTML_CHARS])
    parser.close()
    return clean_text("".join(parser.parts))


def clean_text(text: str) -> str:
    """NFC-normalised text without control characters, with runs of spaces collapsed and
    at most one blank line in a row, stripped."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text.replace("\r\n", "\n")))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def mention_text(*parts: str | None) -> str:
    """The non-empty parts joined by blank lines, capped to the schema's text limit."""
    return cap("\n\n".join(p for p in parts if p), MAX_TEXT_CHARS)


def short(text: str | None, limit: int) -> str | None:
    """Optional display text (a name, a bio) cleaned and capped; ``None`` if empty."""
    if not text:
        return None
    cleaned = clean_text(text)
    return cap(cleaned, limit) if cleaned else None


def lang_tag(value: object) -> str | None:
    """A BCP 47-shaped language tag, or ``None`` for anything the schema would refuse."""
    if isinstance(value, str) and _LANG.match(value.strip()):
        return value.strip()
    return None


def http_url(value: object) -> str | None:
    """An http(s) URL the schema accepts, or ``None``."""
    if isinstance(value, str) and len(value) <= MAX_URL_CHARS and _URL.match(value):
        return value
    return None


def bounded_id(raw: str, prefix: str = "") -> str:
    """``prefix + raw`` if it fits the schema's 256 characters, else a stable digest of it."""
    whole = prefix + raw
    if len(whole) <= MAX_ID_CHARS:
        return whole
    return prefix[:64] + "sha256:" + hashlib.sha256(whole.encode()).hexdigest()


def count(value: object) -> int:
    """A non-negative engagement counter (the schema's range) from whatever was sent."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(min(max(value, 0), 10**12))


def parse_time(value: object) -> datetime | None:
    """An aware datetime from ISO 8601 / RFC 3339 text (``Z`` allowed); ``None`` if the
    value is missing, malformed or naive."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def obj(value: object) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one (payload fields are untrusted)."""
    return value if isinstance(value, Mapping) else {}


def from_epoch(seconds: object) -> datetime | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        return datetime.fromtimestamp(float(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        return None

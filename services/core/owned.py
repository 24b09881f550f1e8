"""Owned accounts: the handles a brand posts from (its own account, its support desk).

A brand lists them as ``owned_handles`` (the brands file, ``/api/v1/brands``,
``sentimon brands owned``). A mention whose author is one of them is the brand talking,
not the market talking about it: it is stored and flagged, but left out of that brand's
figures, and a reply from one answers the mention it replies to (responsiveness).

A handle is ``name`` (on any platform) or ``source:name`` (only there, e.g.
``x:AcmeSupport``; the same name on another platform may be someone else). A leading
``@`` is dropped; Mastodon's ``name@instance`` is one handle. Matching is on the
mention's ``author.handle``, case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from services.core.models import SOURCES
from services.core.validation import describe

MAX_OWNED_HANDLES = 50
MAX_HANDLE_CHARS = 100

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAME = re.compile(r"\w[\w.\-]*(?:@\w[\w.\-]*)?")


class OwnedHandleError(ValueError):
    """A list of owned handles that are not all handles (the entry is named)."""


def owned_handle(value: str) -> str:
    """``value`` as stored (stripped, without a leading ``@``, the source in lower case);
    ``ValueError`` saying why it is not a handle."""
    if (m := _CONTROL.search(value)) is not None:
        raise ValueError(f"control character U+{ord(m.group()):04X} at position {m.start()}")
    text = value.strip()
    if not text:
        raise ValueError("empty: give a handle, e.g. AcmeSupport")
    if len(text) > MAX_HANDLE_CHARS:
        raise ValueError(f"at most {MAX_HANDLE_CHARS} characters")
    if "://" in text or text.lower().startswith(("www.", "http:", "https:")) or "/" in text:
        raise ValueError(f"{text!r} is a URL: give the account's handle, e.g. AcmeSupport")
    if any(c.isspace() for c in text):
        raise ValueError(f"{text!r} contains a space: one handle per entry")
    source, sep, name = text.rpartition(":") if ":" in text else ("", "", text)
    if sep:
        source = source.lower()
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r} before ':' (one of {', '.join(SOURCES)})")
    name = name.removeprefix("@")
    if _NAME.fullmatch(name) is None:
        raise ValueError(
            f"{text!r} is not a handle: letters, digits, '_', '.' and '-' "
            "(Mastodon: name@instance), optionally after 'source:'"
        )
    return f"{source}:{name}" if sep else name


def _distinct(handles: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for h in handles:
        if (key := h.casefold()) not in seen:
            seen.add(key)
            out.append(h)
    return out


OwnedHandle = Annotated[str, AfterValidator(owned_handle)]
OwnedHandles = Annotated[
    list[OwnedHandle], Field(max_length=MAX_OWNED_HANDLES), AfterValidator(_distinct)
]
"""A brand's owned handles in a request model or a file: each checked, duplicates
(case-insensitive) dropped, at most ``MAX_OWNED_HANDLES``."""


class _Owned(BaseModel):
    owned_handles: OwnedHandles


def checked_owned_handles(handles: Sequence[str]) -> list[str]:
    """``handles`` as stored (see ``owned_handle``), duplicates dropped; raises
    ``OwnedHandleError`` naming the entry (``owned_handles[3]: …``) otherwise."""
    try:
        return _Owned(owned_handles=list(handles)).owned_handles
    except ValidationError as e:
        raise OwnedHandleError(describe(e)) from e


def _key(handle: str) -> str:
    return handle.strip().removeprefix("@").casefold()


@dataclass(frozen=True, slots=True)
class OwnedAccounts:
    """Which brands own which handles, for telling who wrote a mention."""

    by_handle: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, brands: Iterable[tuple[str, Sequence[str]]]) -> OwnedAccounts:
        """From ``(brand, owned handles)`` pairs (stored handles: see ``owned_handle``)."""
        found: dict[tuple[str, str], set[str]] = {}
        for brand, handles in brands:
            for h in handles:
                source, _, name = h.rpartition(":")
                found.setdefault((source, _key(name)), set()).add(brand)
        return cls({k: frozenset(v) for k, v in found.items()})

    def __bool__(self) -> bool:
        return bool(self.by_handle)

    def owners(self, source: str, author_handle: str) -> frozenset[str]:
        """The brands whose account wrote a mention on ``source`` by ``author_handle``."""
        if not self.by_handle:
            return frozenset()
        key = _key(author_handle)
        anywhere = self.by_handle.get(("", key), frozenset())
        there = self.by_handle.get((source, key))
        return anywhere if there is None else anywhere | there

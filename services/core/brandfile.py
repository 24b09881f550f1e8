"""Brands from a YAML file: a list of ``{name, query, competitors, owned_handles}``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from services.core.brands import BrandDefinition, BrandError, parse_query
from services.core.owned import OwnedHandles
from services.core.validation import describe


class BrandFileError(ValueError):
    """The brands file is unreadable or one of its entries is wrong (the entry is named)."""


MAX_COMPETITORS = 50
CompetitorName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[^/,]+$"),
]
_COMPETITORS = TypeAdapter(list[CompetitorName])


def checked_competitors(name: str, competitors: Sequence[str]) -> list[str]:
    """A brand's competitive set, stripped and deduplicated (the brand itself dropped);
    ``BrandFileError`` naming the bad entry for a name the API would refuse."""
    if len(competitors) > MAX_COMPETITORS:
        raise BrandFileError(f"competitors: at most {MAX_COMPETITORS} per brand")
    try:
        names = _COMPETITORS.validate_python(list(competitors))
    except ValidationError as e:
        raise BrandFileError(f"competitors: {describe(e)}") from e
    return [c for c in dict.fromkeys(names) if c != name.strip()]


class BrandEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    query: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    # The brand's competitive set (executive reports compare against it): names of other
    # brands, as the API takes them.
    competitors: list[CompetitorName] = Field(default_factory=list, max_length=MAX_COMPETITORS)
    # The brand's own accounts (services/core/owned.py); absent: those stored are kept.
    owned_handles: OwnedHandles | None = None


_ENTRIES = TypeAdapter(list[BrandEntry])


def parse_brands_yaml(text: str, origin: str = "brands file") -> list[BrandEntry]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BrandFileError(f"{origin}: not valid YAML: {e}") from e
    if isinstance(data, dict) and "brands" in data:
        data = data["brands"]
    try:
        entries = _ENTRIES.validate_python(data)
    except ValidationError as e:
        raise BrandFileError(f"{origin}: {describe(e)}") from e
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        try:
            BrandDefinition(entry.name, entry.query)
            parse_query(entry.query)
        except BrandError as e:
            raise BrandFileError(f"{origin}: [{i}] {entry.name!r}: {e}") from e
        if entry.name in seen:
            raise BrandFileError(f"{origin}: [{i}] {entry.name!r}: defined twice")
        seen.add(entry.name)
    return entries


def load_brands_file(path: Path) -> list[BrandEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise BrandFileError(f"{path}: {e.strerror}") from e
    return parse_brands_yaml(text, str(path))

"""Source configurations from ``sources.yaml``. The models live in
:mod:`services.core.sources` (the API validates its bodies with them too) and are
re-exported here for the connectors."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from services.core.sources import (
    MAX_SOURCES,
    SOURCE_CONFIG,
    BlueskyConfig,
    Feed,
    MastodonConfig,
    RedditConfig,
    RssConfig,
    SourceConfig,
    SourceUrlError,
    SourceUrlPolicy,
    XConfig,
    check_source_urls,
)
from services.core.validation import describe
from services.ingest.sources.errors import SourceConfigError

__all__ = [
    "MAX_SOURCES",
    "SOURCE_CONFIG",
    "BlueskyConfig",
    "Feed",
    "MastodonConfig",
    "RedditConfig",
    "RssConfig",
    "SourceConfig",
    "XConfig",
    "load_sources_file",
    "parse_sources_yaml",
]

_SOURCE_CONFIGS: TypeAdapter[list[SourceConfig]] = TypeAdapter(list[SourceConfig])


def parse_sources_yaml(
    text: str, origin: str = "sources file", policy: SourceUrlPolicy | None = None
) -> list[SourceConfig]:
    """Source configurations from YAML (a list, or ``{sources: [...]}``); with ``policy``,
    every URL is checked against it too (``check_source_urls``: resolves the hosts).

    Raises ``SourceConfigError`` naming the file, the entry and the field.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SourceConfigError(f"{origin}: not valid YAML: {e}") from e
    if isinstance(data, dict) and "sources" in data:
        data = data["sources"]
    if data is None:
        return []
    try:
        configs = _SOURCE_CONFIGS.validate_python(data)
    except ValidationError as e:
        raise SourceConfigError(f"{origin}: {describe(e)}") from e
    if len(configs) > MAX_SOURCES:
        raise SourceConfigError(f"{origin}: more than {MAX_SOURCES} sources")
    seen: set[str] = set()
    for i, config in enumerate(configs):
        if config.name in seen:
            raise SourceConfigError(f"{origin}: [{i}].name: {config.name!r} is defined twice")
        seen.add(config.name)
        if policy is not None:
            try:
                check_source_urls(config, policy)
            except SourceUrlError as e:
                raise SourceConfigError(f"{origin}: [{i}].{e}") from e
    return configs


def load_sources_file(path: Path, policy: SourceUrlPolicy | None = None) -> list[SourceConfig]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SourceConfigError(f"{path}: {e.strerror}") from e
    return parse_sources_yaml(text, str(path), policy)

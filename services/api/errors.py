"""The API's errors: the one shape every process answers in (``services.runtime.http``)."""

from __future__ import annotations

from services.runtime.http import TOO_LARGE, UNPROCESSABLE, install

__all__ = ["TOO_LARGE", "UNPROCESSABLE", "install"]

"""Errors raised while reading brand definitions and their queries."""

from __future__ import annotations


class BrandError(ValueError):
    """Base class of every brand error: a brand definition the service cannot use."""


class BrandDefinitionError(BrandError):
    """A brand definition is unusable for a reason other than its query (name, duplicate)."""


class BrandQueryError(BrandError):
    """A brand query cannot be parsed, or is outside the limits of the query language.

    ``position`` is the 0-based character offset in the query where the problem is,
    ``reason`` says what is wrong and ``hint`` (optional) what was expected instead.
    ``brand`` names the brand whose query it is, once the error has passed through
    ``BrandMatcher.compile``.
    """

    def __init__(
        self,
        reason: str,
        position: int,
        *,
        hint: str | None = None,
        brand: str | None = None,
    ) -> None:
        self.reason = reason
        self.position = position
        self.hint = hint
        self.brand = brand
        message = f"query: {reason} at position {position}"
        if hint is not None:
            message = f"{message}: {hint}"
        if brand is not None:
            message = f"brand {brand!r}: {message}"
        super().__init__(message)

    def for_brand(self, brand: str) -> BrandQueryError:
        """The same error, naming the brand whose query it is."""
        return BrandQueryError(self.reason, self.position, hint=self.hint, brand=brand)

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are not replayed by the default Exception pickling, and
        # errors do cross process boundaries (worker pools, test runners).
        return (_rebuild, (self.reason, self.position, self.hint, self.brand))


def _rebuild(reason: str, position: int, hint: str | None, brand: str | None) -> BrandQueryError:
    return BrandQueryError(reason, position, hint=hint, brand=brand)

"""Tracked brands in the database. Queries are validated before they are stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.core.brands import BrandDefinition, parse_query
from services.core.brands.errors import BrandDefinitionError
from services.core.clock import Clock
from services.core.owned import checked_owned_handles
from services.core.storage.db import writing
from services.core.storage.errors import ConflictError, NotFoundError
from services.core.storage.tables import brands

# Each brand is a column of every share-of-voice answer and a series of every gauge: 300
# made share of voice a 6 MB, 5.5 s answer. Competitive sets are a handful of brands.
MAX_BRANDS = 100


class TooManyBrandsError(BrandDefinitionError):
    """The instance tracks ``MAX_BRANDS`` brands already."""


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    query: str
    competitors: tuple[str, ...] = field(default=())
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # The brand's own accounts (``services.core.owned``).
    owned_handles: tuple[str, ...] = field(default=())

    @property
    def definition(self) -> BrandDefinition:
        return BrandDefinition(name=self.name, query=self.query)


class BrandStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def list(self) -> list[Brand]:
        with self._engine.connect() as conn:
            return [_to_brand(r) for r in conn.execute(select(brands).order_by(brands.c.name))]

    def get(self, name: str) -> Brand:
        with self._engine.connect() as conn:
            row = conn.execute(select(brands).where(brands.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"brand {name!r} does not exist")
        return _to_brand(row)

    def create(
        self,
        name: str,
        query: str,
        competitors: Sequence[str] = (),
        owned_handles: Sequence[str] = (),
    ) -> Brand:
        """Store a new brand; ``BrandError`` for a bad name or query, ``OwnedHandleError``
        for a handle that is not one, ``ConflictError`` if the name is taken."""
        name = _checked(name, query)
        owned = checked_owned_handles(owned_handles)
        now = self._clock.now()
        try:
            with writing(self._engine) as conn:
                if (
                    conn.execute(select(func.count()).select_from(brands)).scalar_one()
                    >= MAX_BRANDS
                ):
                    raise TooManyBrandsError(
                        f"at most {MAX_BRANDS} brands can be tracked; remove one first"
                    )
                conn.execute(
                    insert(brands).values(
                        name=name,
                        query=query,
                        competitors=list(competitors),
                        created_at=now,
                        updated_at=now,
                        owned_handles=owned,
                    )
                )
        except IntegrityError as e:
            raise ConflictError(f"brand {name!r} exists already") from e
        return Brand(name, query, tuple(competitors), now, now, tuple(owned))

    def update(
        self,
        name: str,
        query: str,
        competitors: Sequence[str] = (),
        owned_handles: Sequence[str] | None = None,
    ) -> Brand:
        """Change a brand's query and competitors, and its owned handles unless
        ``owned_handles`` is ``None`` (kept as they are)."""
        name = _checked(name, query)
        values: dict[str, Any] = {"query": query, "competitors": list(competitors)}
        if owned_handles is not None:
            values["owned_handles"] = checked_owned_handles(owned_handles)
        now = self._clock.now()
        with self._engine.begin() as conn:
            done = conn.execute(
                update(brands).where(brands.c.name == name).values(**values, updated_at=now)
            ).rowcount
        if done == 0:
            raise NotFoundError(f"brand {name!r} does not exist")
        return self.get(name)

    def upsert(
        self,
        name: str,
        query: str,
        competitors: Sequence[str] = (),
        owned_handles: Sequence[str] | None = None,
    ) -> Brand:
        """``update``, or ``create`` a brand not tracked yet (``None``: no owned handles)."""
        try:
            return self.update(name, query, competitors, owned_handles)
        except NotFoundError:
            return self.create(name, query, competitors, owned_handles or ())

    def delete(self, name: str) -> None:
        """Stop tracking a brand; mentions stored for it are kept."""
        with self._engine.begin() as conn:
            if conn.execute(delete(brands).where(brands.c.name == name)).rowcount == 0:
                raise NotFoundError(f"brand {name!r} does not exist")

    def version(self) -> tuple[int, object]:
        """Changes whenever a brand is added, changed or removed: scorers poll it to reload."""
        with self._engine.connect() as conn:
            n, newest = conn.execute(select(func.count(), func.max(brands.c.updated_at))).one()
        return int(n), newest


def _checked(name: str, query: str) -> str:
    """The stripped name, once name and query are valid (else a ``BrandError``)."""
    definition = BrandDefinition(name=name, query=query)
    parse_query(query)
    return definition.name


def _to_brand(r: Row[Any]) -> Brand:
    return Brand(
        name=r.name,
        query=r.query,
        competitors=tuple(r.competitors or ()),
        created_at=r.created_at,
        updated_at=r.updated_at,
        owned_handles=tuple(r.owned_handles or ()),
    )

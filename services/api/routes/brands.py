"""``/api/v1/brands``: the brands Sentimon tracks and their Boolean queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, Field, StringConstraints

from services.api.deps import Manager, Reader, State
from services.api.errors import UNPROCESSABLE
from services.core.brands import BrandError, BrandQueryError
from services.core.owned import MAX_OWNED_HANDLES, OwnedHandles
from services.core.storage.brands import Brand
from services.core.storage.errors import ConflictError, NotFoundError

router = APIRouter(prefix="/api/v1/brands", tags=["brands"])

BrandName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[^/,]+$"),
]


_OWNED = (
    "The brand's own accounts: `handle` (any platform) or `source:handle` (e.g. "
    f"`x:AcmeSupport`), at most {MAX_OWNED_HANDLES}. Their mentions are stored and flagged "
    "but left out of this brand's figures; their replies answer what they reply to."
)


class BrandCreate(BaseModel):
    name: BrandName
    query: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description='Boolean query: AND, OR, NOT, ( ), "phrases", @handles, #hashtags',
        examples=['("acme" OR @acmehq) AND NOT "acme anvils"'],
    )
    competitors: list[BrandName] = Field(default_factory=list, max_length=50)
    owned_handles: OwnedHandles = Field(default_factory=list, description=_OWNED)


class BrandUpdate(BaseModel):
    query: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    competitors: list[BrandName] = Field(default_factory=list, max_length=50)
    owned_handles: OwnedHandles | None = Field(
        default=None, description=f"{_OWNED} Absent or null: kept as they are."
    )


class BrandPublic(BaseModel):
    name: str
    query: str
    competitors: list[str]
    owned_handles: list[str]
    created_at: datetime | None
    updated_at: datetime | None


def _public(b: Brand) -> BrandPublic:
    return BrandPublic(
        name=b.name,
        query=b.query,
        competitors=list(b.competitors),
        owned_handles=list(b.owned_handles),
        created_at=b.created_at,
        updated_at=b.updated_at,
    )


def _brand_error(e: BrandError) -> HTTPException:
    if isinstance(e, BrandQueryError):
        return HTTPException(UNPROCESSABLE, str(e))  # "query: <why> at position N[: hint]"
    return HTTPException(UNPROCESSABLE, f"name: {e}")


@router.get("", summary="All tracked brands")
def list_brands(state: State, _key: Reader) -> list[BrandPublic]:
    return [_public(b) for b in state.brands.list()]


@router.get("/{name}")
def get_brand(
    state: State, _key: Reader, name: Annotated[str, Path(max_length=128)]
) -> BrandPublic:
    try:
        return _public(state.brands.get(name))
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A brand of that name is tracked"}},
)
def create_brand(state: State, _key: Manager, body: BrandCreate) -> BrandPublic:
    try:
        return _public(
            state.brands.create(body.name, body.query, body.competitors, body.owned_handles)
        )
    except BrandError as e:
        raise _brand_error(e) from e
    except ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, f"name: {e}") from e


@router.put("/{name}")
def update_brand(
    state: State, _key: Manager, name: Annotated[str, Path(max_length=128)], body: BrandUpdate
) -> BrandPublic:
    try:
        return _public(state.brands.update(name, body.query, body.competitors, body.owned_handles))
    except BrandError as e:
        raise _brand_error(e) from e
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_brand(
    state: State, _key: Manager, name: Annotated[str, Path(max_length=128)]
) -> Response:
    """Stop tracking a brand. Its stored mentions and figures are kept."""
    try:
        state.brands.delete(name)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)

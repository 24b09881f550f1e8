"""The analysts' review page (``/review``): session-cookie login like the dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.api.deps import State
from services.api.routes.pages import PageKey, templates
from services.core.auth import Permission, allows

router = APIRouter(include_in_schema=False)


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, state: State, key: PageKey) -> Response:
    if key is None:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    if not allows(key.role, Permission.REVIEW):
        return HTMLResponse(
            "<!doctype html><title>Sentimon</title><p>This key cannot review mentions: "
            f'its role is {key.role.value}. <a href="/login">Log in with an analyst key</a>.</p>',
            status_code=status.HTTP_403_FORBIDDEN,
        )
    return templates.TemplateResponse(
        request,
        "review.html",
        {"role": key.role.value, "key_name": key.name, "lease_s": state.settings.review_lease_s},
    )

"""Browser pages and their session login.

The key never travels in a URL the server sees: the login link carries it in the
fragment (``/login#key=…``), which browsers do not send; the login page posts it,
gets an HttpOnly session cookie, and drops the fragment from the address bar.
"""

from __future__ import annotations

from datetime import timedelta
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from services.api.deps import SESSION_COOKIE, State, authenticate
from services.core.auth import Permission, allows
from services.core.storage.keys import ApiKey

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(files("services.api") / "templates"))


class LoginBody(BaseModel):
    key: str = Field(min_length=1, max_length=200)


def page_key(request: Request, state: State) -> ApiKey | None:
    try:
        return authenticate(request, state)
    except HTTPException:
        return None


PageKey = Annotated[ApiKey | None, Depends(page_key)]


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {})


@router.post("/login", status_code=status.HTTP_204_NO_CONTENT)
def login(state: State, body: LoginBody, response: Response) -> Response:
    key = state.keys.authenticate(body.key.strip())
    if key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "key: unknown or revoked API key")
    ttl = timedelta(hours=state.settings.session_ttl_hours)
    token = state.keys.open_session(key, ttl)
    response.status_code = status.HTTP_204_NO_CONTENT
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=state.settings.cookie_secure,
        path="/",
    )
    return response


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, state: State) -> Response:
    if token := request.cookies.get(SESSION_COOKIE):
        state.keys.close_session(token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, state: State, key: PageKey) -> Response:
    if key is None:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    if not allows(key.role, Permission.READ):
        return HTMLResponse(
            "<!doctype html><title>Sentimon</title><p>This key cannot open the dashboard: "
            f'its role is {key.role.value}. <a href="/login">Log in with another key</a>.</p>',
            status_code=status.HTTP_403_FORBIDDEN,
        )
    brands = state.brands.list()
    return templates.TemplateResponse(
        request,
        "index.html",
        {"brands": [b.name for b in brands], "role": key.role.value, "key_name": key.name},
    )

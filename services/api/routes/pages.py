"""Browser pages and their session login.

The key never travels in a URL the server sees: the login link carries it in the
fragment (``/login#key=…``), which browsers do not send; the login page posts it,
gets an HttpOnly session cookie, and drops the fragment from the address bar.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from services.api.deps import SESSION_COOKIE, State, authenticate
from services.core.auth import Permission, allows
from services.core.explanation import rarity, summarise
from services.core.reports.charts import expectation_chart
from services.core.storage.alerts import get_alert
from services.core.storage.analytics import brand_buckets
from services.core.storage.errors import NotFoundError
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


def _refused(key: ApiKey) -> Response | None:
    if not allows(key.role, Permission.READ):
        return HTMLResponse(
            "<!doctype html><title>Sentimon</title><p>This key cannot open alerts: its role "
            f'is {key.role.value}. <a href="/login">Log in with another key</a>.</p>',
            status_code=status.HTTP_403_FORBIDDEN,
        )
    return None


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(
    request: Request,
    state: State,
    key: PageKey,
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> Response:
    """One alert explained: its sentence, story, drivers, rising terms and the windows
    around it against what the baseline expected."""
    if key is None:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    if (refused := _refused(key)) is not None:
        return refused
    try:
        with state.engine.connect() as conn:
            alert = get_alert(conn, alert_id)
            doc = alert.doc
            window_s = int(doc["rule"]["window_minutes"]) * 60
            expected = {e["start"]: float(e["expected"]) for e in doc.get("expectation") or []}
            start = int(alert.window_start.timestamp())
            starts = (
                sorted(int(datetime.fromisoformat(s).timestamp()) for s in expected)
                if expected
                else [start + k * window_s for k in range(-24, 9)]
            )
            buckets = brand_buckets(conn, [alert.brand], starts[0], starts[-1] + window_s, window_s)
    except NotFoundError:
        return HTMLResponse(
            f"<!doctype html><title>Sentimon</title><p>Alert {alert_id} does not exist.</p>",
            status_code=status.HTTP_404_NOT_FOUND,
        )
    share = doc["kind"] == "negative_share"
    points: list[tuple[str, float, float | None]] = []
    for s, c in zip(buckets.bucket_starts, buckets.buckets[alert.brand], strict=True):
        iso = datetime.fromtimestamp(s, UTC).isoformat()
        if share:
            value = c.negative / c.mentions if c.mentions else 0.0
        else:
            value = float(c.negative if doc["kind"] == "negative_spike" else c.mentions)
        points.append((iso, value, expected.get(iso)))
    what = {"negative_spike": "Negative mentions", "volume_spike": "Mentions"}.get(
        doc["kind"], "Negative share"
    )
    chart = expectation_chart(
        points,
        datetime.fromtimestamp(start, UTC).isoformat(),
        f"{what} of {alert.brand} per window around the alert, against the expected",
        share=share,
    )
    ctx: dict[str, Any] = {
        "alert": doc,
        "summary": doc.get("summary") or summarise(doc),
        "rarity": rarity(float(doc["p_value"]), window_s),
        "chart": chart,
        "what": what,
        "role": key.role.value,
    }
    return templates.TemplateResponse(request, "alert.html", ctx)

"""The executive report: ``GET /api/v1/reports/executive`` (JSON), the same as a page
(``/reports/executive``) and as a self-contained HTML file to mail
(``/reports/executive/download``). The page is rendered on the server, charts included
(inline SVG), so it needs no script; print it for a PDF (print CSS is part of it)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.deps import Reader, State
from services.api.errors import UNPROCESSABLE
from services.api.routes.analytics import resolve_range
from services.api.routes.pages import PageKey, templates
from services.api.state import AppState
from services.core.auth import Permission, allows
from services.core.models import Rfc3339Time, storable_time
from services.core.reports import (
    AccuracySource,
    AlertsSource,
    ExecutiveReport,
    ReportRequest,
    build_executive_report,
    charts,
)
from services.core.reports.executive import DEFAULT_MIN_REACH
from services.core.reports.sources import spot_check_accuracy, stored_alerts
from services.core.storage.errors import NotFoundError
from services.core.storage.report_rows import HOUR

router = APIRouter(tags=["reports"])

MAX_RANGE = timedelta(days=400)
# resolve_range caps the number of buckets; the report picks its own (at most weekly).
_RANGE_CHECK_INTERVAL = 7 * 86_400
MAX_REACH = 10**12
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Compare = Literal["previous", "none"]


def report_sources(state: AppState) -> tuple[AlertsSource | None, AccuracySource | None]:
    """The alerts store and the spot-check accuracy: both live in this instance's database."""
    return stored_alerts, spot_check_accuracy


def make_report(
    state: State,
    brand: str,
    start: datetime | None,
    end: datetime | None,
    compare: str,
    min_reach: int,
) -> ExecutiveReport:
    """Resolve the request and build the report; ``HTTPException`` (404/422) naming the field."""
    try:
        stored = state.brands.get(brand)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"brand: {e}") from e
    if compare not in ("previous", "none"):
        raise HTTPException(UNPROCESSABLE, "compare: must be 'previous' or 'none'")
    if not 0 <= min_reach <= MAX_REACH:
        raise HTTPException(UNPROCESSABLE, f"min_reach: must be between 0 and {MAX_REACH}")
    # Mentions are stored for 1900-2099 only, and a bound near year 9999 would overflow
    # once widened to whole hours: say which field, rather than fail.
    for field, when in (("from", start), ("to", end)):
        if when is not None:
            try:
                storable_time(when)
            except ValueError as e:
                raise HTTPException(UNPROCESSABLE, f"{field}: {e}") from e
    now = state.clock.now()
    first, last = resolve_range(start, end, _RANGE_CHECK_INTERVAL, now)
    # The report reads hourly rollups: its period is widened to whole hours (UTC).
    first -= first % HOUR
    last += -last % HOUR
    if last - first > MAX_RANGE.total_seconds():
        raise HTTPException(
            UNPROCESSABLE, f"from: the period may span at most {MAX_RANGE.days} days"
        )
    req = ReportRequest(
        brand=stored.name,
        competitors=tuple(c for c in stored.competitors if c != stored.name),
        start=first,
        end=last,
        compare_previous=compare == "previous",
        min_reach=min_reach,
        owned_handles=stored.owned_handles,
    )
    alerts, accuracy = report_sources(state)
    with state.engine.connect() as conn:
        return build_executive_report(conn, req, now=now, alerts=alerts, accuracy=accuracy)


@router.get(
    "/api/v1/reports/executive",
    summary="Executive report of a brand against its competitive set",
    responses={404: {"description": "The brand is not tracked"}},
    response_model_by_alias=True,
)
def executive_report(
    state: State,
    _key: Reader,
    brand: Annotated[str, Query(min_length=1, max_length=128)],
    from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
    to: Rfc3339Time | None = None,
    compare: Annotated[
        Compare, Query(description="'previous': changes against the previous period")
    ] = "previous",
    min_reach: Annotated[
        int, Query(ge=0, le=MAX_REACH, description="Followers from which an author is high-reach")
    ] = DEFAULT_MIN_REACH,
) -> ExecutiveReport:
    """Volume; share of voice by mentions, reach and engagement; net sentiment and its
    change; sentiment over time; spikes and alerts; top mentions and voices; decision
    makers; conversations; rising terms; measured accuracy. Default period: the last 7 days."""
    return make_report(state, brand, from_, to, compare, min_reach)


# --- the page and the download ---------------------------------------------------------


def _when(field: str, text: str | None, *, end: bool) -> datetime | None:
    """A page parameter: a date (``2026-11-01``; as an end, the whole day is included) or
    an RFC 3339 time with an offset."""
    if text is None or text.strip() == "":
        return None
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            d = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return d + timedelta(days=1) if end else d
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except OverflowError:
        raise HTTPException(UNPROCESSABLE, f"{field}: the date is out of range") from None
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise HTTPException(
            UNPROCESSABLE, f"{field}: give a date (2026-11-01) or a time with an offset"
        )
    return t


def _min_reach(text: str | None) -> int:
    if text is None or text.strip() == "":
        return DEFAULT_MIN_REACH
    if not text.strip().isdigit() or len(text.strip()) > 13:
        raise HTTPException(UNPROCESSABLE, "min_reach: must be a whole number of followers")
    return int(text.strip())


@cache
def report_css() -> str:
    """The page's stylesheets, as the download inlines them: theme.css, then report.css."""
    static = files("services.api") / "static"
    return "\n".join(
        (static / name).read_text(encoding="utf-8") for name in ("theme.css", "report.css")
    )


@dataclass(frozen=True, slots=True)
class _Form:
    brand: str
    from_: str
    to: str
    compare: str
    min_reach: str


def _query(form: _Form) -> str:
    params = {"brand": form.brand, "from": form.from_, "to": form.to, "compare": form.compare}
    if form.min_reach:
        params["min_reach"] = form.min_reach
    return urlencode({k: v for k, v in params.items() if v})


def _context(report: ExecutiveReport) -> dict[str, Any]:
    names = [b.brand for b in report.share_of_voice.brands]
    measures = [
        ("Mentions", [(b.brand, b.share_of_mentions) for b in report.share_of_voice.brands]),
        ("Reach", [(b.brand, b.share_of_reach) for b in report.share_of_voice.brands]),
        ("Engagement", [(b.brand, b.share_of_engagement) for b in report.share_of_voice.brands]),
        (
            "Decision makers",
            [(b.brand, b.share_of_mentions) for b in report.decision_makers.share_of_voice],
        ),
    ]
    points = report.sentiment_over_time.series
    return {
        "report": report,
        "colours": {n: charts.colour(i) for i, n in enumerate(names)},
        "sov_chart": charts.share_bars(measures, "Share of voice"),
        "sov_chart_narrow": charts.share_bars(measures, "Share of voice", charts.NARROW),
        "volume_chart": charts.volume_columns(points, "Mentions per period, by sentiment"),
        "volume_chart_narrow": charts.volume_columns(
            points, "Mentions per period, by sentiment", charts.NARROW
        ),
        "net_chart": charts.net_line(points, "Net sentiment over time"),
        "net_chart_narrow": charts.net_line(points, "Net sentiment over time", charts.NARROW),
    }


def _render(
    request: Request,
    state: State,
    key_name: str,
    form: _Form,
    *,
    download: bool,
) -> Response:
    brands = [b.name for b in state.brands.list()]
    ctx: dict[str, Any] = {
        "brands": brands,
        "form": form,
        "key_name": key_name,
        "download": download,
        "error": None,
        "report": None,
    }
    code = status.HTTP_200_OK
    if not form.brand and brands:
        form = _Form(brands[0], form.from_, form.to, form.compare, form.min_reach)
        ctx["form"] = form
    if form.brand:
        try:
            report = make_report(
                state,
                form.brand,
                _when("from", form.from_, end=False),
                _when("to", form.to, end=True),
                form.compare or "previous",
                _min_reach(form.min_reach),
            )
            ctx |= _context(report)
        except StarletteHTTPException as e:
            if download:
                raise
            code, ctx["error"] = e.status_code, str(e.detail)
    if download and ctx["report"] is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "brand: no brand is tracked")
    ctx["query"] = _query(form)
    if download:
        css = report_css()
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        ctx["inline_css"] = css
        ctx["csp"] = f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:"
        body = templates.get_template("report_executive.html").render(ctx)
        report = ctx["report"]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", report.brand).strip("-").lower() or "brand"
        name = f"sentimon-executive-{slug}-{report.period.from_[:10]}-{report.period.to[:10]}.html"
        return HTMLResponse(body, headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return templates.TemplateResponse(request, "report_executive.html", ctx, status_code=code)


def _page_guard(key: Any) -> Response | None:
    if key is None:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    if not allows(key.role, Permission.READ):
        return HTMLResponse(
            "<!doctype html><title>Sentimon</title><p>This key cannot open reports: its role "
            f'is {key.role.value}. <a href="/login">Log in with another key</a>.</p>',
            status_code=status.HTTP_403_FORBIDDEN,
        )
    return None


def _page_form(
    brand: Annotated[str, Query(max_length=200)] = "",
    from_: Annotated[str, Query(alias="from", max_length=64)] = "",
    to: Annotated[str, Query(max_length=64)] = "",
    compare: Annotated[str, Query(max_length=16)] = "previous",
    min_reach: Annotated[str, Query(max_length=16)] = "",
) -> _Form:
    """The report page's and the download's query parameters, as the form shows them."""
    return _Form(brand.strip(), from_, to, compare, min_reach)


PageForm = Annotated[_Form, Depends(_page_form)]


@router.get("/reports/executive", response_class=HTMLResponse, include_in_schema=False)
def executive_page(request: Request, state: State, key: PageKey, form: PageForm) -> Response:
    if (refused := _page_guard(key)) is not None:
        return refused
    assert key is not None
    return _render(request, state, key.name, form, download=False)


@router.get("/reports/executive/download", response_class=HTMLResponse, include_in_schema=False)
def executive_download(request: Request, state: State, key: PageKey, form: PageForm) -> Response:
    """The page as one HTML file with its CSS inline and no external reference at all."""
    if (refused := _page_guard(key)) is not None:
        return refused
    assert key is not None
    return _render(request, state, key.name, form, download=True)

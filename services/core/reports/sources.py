"""The report's sections that other parts of Sentimon own, read through their documented
functions: alerts raised in the period (the alerts store, ``list_alerts``) and the measured
accuracy from analysts' spot checks (``measured_accuracy``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection

from services.core.explanation import summarise
from services.core.reports.model import Accuracy, Alert
from services.core.storage.alerts import AlertRecord, list_alerts
from services.core.storage.review import measured_accuracy

MAX_ALERTS = 50


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _summary(a: AlertRecord) -> str:
    """The sentence stored with the alert (``services.core.explanation``), or made from
    its document for an alert raised before sentences were stored; figures alone for a
    document that cannot say more."""
    if isinstance(stored := a.doc.get("summary"), str):
        return stored
    try:
        return summarise(a.doc)
    except (KeyError, TypeError, ValueError):
        return f"{a.observed:g} observed where {a.expected:.1f} was expected (p = {a.p_value:.1e})"


def stored_alerts(conn: Connection, brand: str, start: datetime, end: datetime) -> list[Alert]:
    """Alerts of ``brand`` whose window starts in ``[start, end)``, newest first."""
    return [
        Alert(
            id=str(a.id),
            kind=a.kind,
            raised_at=_iso(a.created_at),
            window_start=_iso(a.window_start),
            window_end=_iso(a.window_end),
            observed=a.observed,
            expected=a.expected,
            summary=_summary(a),
            severity=str(a.doc.get("severity", "medium")),
        )
        for a in list_alerts(conn, brand=brand, since=start, until=end, limit=MAX_ALERTS)
    ]


def spot_check_accuracy(
    conn: Connection, brand: str, start: datetime, end: datetime
) -> Accuracy | None:
    """Accuracy of the automated sentiment on spot-checked mentions of ``brand`` created in
    the period; ``None`` before any of them was labelled."""
    estimate = measured_accuracy(conn, brands=[brand], since=start, until=end)
    if estimate is None:
        return None
    low, high = estimate.ci95
    return Accuracy(
        accuracy=estimate.value,
        low=low,
        high=high,
        reviewed=estimate.n,
        note="The weighted share of spot-checked mentions of this brand in the period whose "
        "automated sentiment an analyst confirmed (95 % Wilson interval).",
    )

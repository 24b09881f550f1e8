"""What a Slack, Microsoft Teams or email channel shows of an alert, or of a digest of
alerts. Pure: each function takes the envelope the outbox stores (``schemas/alert.v1.json``,
or a digest's ``{"type": "alert.digest", "data": {"minutes", "alerts": [...]}}``) and
returns the body to send.

Every message names the brand, the kind, the window, observed against expected, the
p-value and the link to the alert's page; the alert's ``summary`` sentence and its
``story`` are shown when the document carries them (older alerts do not).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DIGEST_TYPE = "alert.digest"
KIND_LABELS = {
    "negative_spike": "Negative spike",
    "volume_spike": "Volume spike",
    "negative_share": "Negative share",
}
MAX_STORY_CHARS = 280


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class AlertView:
    """The facts every channel shows of one alert, as plain text."""

    id: int | None
    title: str  # "Negative spike: Acme"
    window: str  # "2026-03-02 10:00–10:15 UTC"
    observed: str
    expected: str
    p_value: str
    summary: str | None
    story: str | None
    link: str | None  # absolute when the public URL is set, else the page's path

    @property
    def line(self) -> str:
        """One line for a digest: the alert's own summary, or the facts in short."""
        if self.summary:
            return self.summary
        return (
            f"{self.title}, {self.window}: {self.observed} against {self.expected} expected "
            f"(p = {self.p_value})"
        )


def alerts_of(envelope: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    """The alert documents an envelope carries, and the digest's minutes (``None`` for a
    single alert)."""
    data = envelope.get("data") or {}
    if envelope.get("type") == DIGEST_TYPE:
        return list(data.get("alerts") or []), int(data.get("minutes") or 0)
    return [data], None


def digest_envelope(minutes: int, envelopes: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
    """The body of a digest delivery: the alerts' documents, oldest first."""
    return {
        "type": DIGEST_TYPE,
        "timestamp": at.isoformat(),
        "data": {"minutes": minutes, "alerts": [e.get("data") or {} for e in envelopes]},
    }


def _number(x: Any, unit: str) -> str:
    if not isinstance(x, int | float):
        return "?"
    if unit == "share":
        return f"{100 * x:.1f} %"
    if float(x).is_integer():
        return f"{int(x)}"
    return f"{x:.1f}"


def _window(window: Any) -> str:
    if not isinstance(window, dict):
        return "?"
    try:
        start = datetime.fromisoformat(str(window.get("start")))
        end = datetime.fromisoformat(str(window.get("end")))
    except ValueError:
        return "?"
    same_day = start.date() == end.date()
    tail = end.strftime("%H:%M") if same_day else end.strftime("%Y-%m-%d %H:%M")
    return f"{start.strftime('%Y-%m-%d %H:%M')}–{tail} UTC"


def _reach(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} M"
    if n >= 10_000:
        return f"{n / 1000:.0f} k"
    return f"{n:,}"


def _story(story: Any) -> str | None:
    # The largest cluster of near-duplicate mentions (``schemas/alert.v1.json``: size,
    # first_author without @, combined_reach, sample_text); shown as far as it is there.
    if not isinstance(story, dict):
        return None
    parts = []
    size = story.get("size")
    if isinstance(size, int):
        parts.append(f"{size} mentions repeat one story")
    first = story.get("first_author")
    if isinstance(first, str) and first:
        parts.append(f"first posted by @{first.removeprefix('@')}")
    reach = story.get("combined_reach")
    if isinstance(reach, int):
        parts.append(f"combined reach {_reach(reach)}")
    text = ", ".join(parts)
    sample = story.get("sample_text")
    if isinstance(sample, str) and sample.strip():
        text += (": " if text else "") + f"“{' '.join(sample.split())}”"
    if len(text) > MAX_STORY_CHARS:
        text = text[: MAX_STORY_CHARS - 1] + "…"
    return text or None


def view(doc: dict[str, Any], public_url: str | None) -> AlertView:
    """The facts of one alert document, formatted."""
    unit = str(doc.get("unit", "mentions"))
    kind = str(doc.get("kind", ""))
    alert_id = doc.get("id") if isinstance(doc.get("id"), int) else None
    p = doc.get("p_value")
    summary = doc.get("summary")
    link = None
    if alert_id is not None:
        path = f"/alerts/{alert_id}"
        link = public_url.rstrip("/") + path if public_url else path
    severity = doc.get("severity")
    label = KIND_LABELS.get(kind, kind or "Alert")
    if isinstance(severity, str) and severity:
        label = f"{label} ({severity})"
    return AlertView(
        id=alert_id,
        title=f"{label}: {doc.get('brand', '?')}",
        window=_window(doc.get("window")),
        observed=_number(doc.get("observed"), unit),
        expected=_number(doc.get("expected"), unit),
        p_value=f"{p:.2g}" if isinstance(p, int | float) else "?",
        summary=" ".join(summary.split()) if isinstance(summary, str) and summary else None,
        story=_story(doc.get("story")),
        link=link,
    )


def _views(envelope: dict[str, Any], public_url: str | None) -> tuple[list[AlertView], int | None]:
    docs, minutes = alerts_of(envelope)
    return [view(d, public_url) for d in docs], minutes


def _digest_title(n: int, minutes: int) -> str:
    return f"{n} alert{'s' if n != 1 else ''} in the last {minutes} minutes"


# --- Slack ------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(v: AlertView) -> str:
    if v.link and v.link.startswith("http"):
        return f"<{v.link}|{_slack_escape(v.title)}>"
    return _slack_escape(v.title) + (f" ({v.link})" if v.link else "")


def slack_message(envelope: dict[str, Any], public_url: str | None) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (notifications, old clients) and blocks."""
    views, minutes = _views(envelope, public_url)
    if minutes is not None:
        title = _digest_title(len(views), minutes)
        lines = [f"• {_slack_link(v)} — {_slack_escape(v.line)}" for v in views]
        return {
            "text": f"Sentimon: {title}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
            ],
        }
    (v,) = views
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": v.title[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Window*\n{v.window}"},
                {"type": "mrkdwn", "text": f"*Observed*\n{v.observed}"},
                {"type": "mrkdwn", "text": f"*Expected*\n{v.expected}"},
                {"type": "mrkdwn", "text": f"*p-value*\n{v.p_value}"},
            ],
        },
    ]
    if v.summary:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(v.summary)}}
        )
    if v.story:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "*Story:* " + _slack_escape(v.story)}],
            }
        )
    if v.link:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "Alert page: " + _slack_link(v)}],
            }
        )
    return {"text": f"Sentimon: {v.line}", "blocks": blocks}


# --- Microsoft Teams --------------------------------------------------------------------


def teams_message(envelope: dict[str, Any], public_url: str | None) -> dict[str, Any]:
    """A Teams incoming-webhook body: one Adaptive Card (1.4) in a message, the form both
    Workflows webhooks and the older connectors take."""
    views, minutes = _views(envelope, public_url)
    body: list[dict[str, Any]]
    actions: list[dict[str, Any]] = []
    if minutes is not None:
        body = [
            {
                "type": "TextBlock",
                "text": _digest_title(len(views), minutes),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            }
        ]
        for v in views:
            link = f" [{v.link}]({v.link})" if v.link and v.link.startswith("http") else ""
            body.append({"type": "TextBlock", "text": f"- {v.line}{link}", "wrap": True})
    else:
        (v,) = views
        body = [
            {"type": "TextBlock", "text": v.title, "weight": "Bolder", "size": "Medium"},
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Window", "value": v.window},
                    {"title": "Observed", "value": v.observed},
                    {"title": "Expected", "value": v.expected},
                    {"title": "p-value", "value": v.p_value},
                ],
            },
        ]
        if v.summary:
            body.append({"type": "TextBlock", "text": v.summary, "wrap": True})
        if v.story:
            body.append(
                {"type": "TextBlock", "text": f"Story: {v.story}", "wrap": True, "isSubtle": True}
            )
        if v.link and v.link.startswith("http"):
            actions.append({"type": "Action.OpenUrl", "title": "Open the alert", "url": v.link})
        elif v.link:
            body.append({"type": "TextBlock", "text": f"Alert page: {v.link}", "isSubtle": True})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


# --- email ------------------------------------------------------------------------------


def _text_block(v: AlertView) -> list[str]:
    lines = [
        v.title,
        f"Window:   {v.window}",
        f"Observed: {v.observed}",
        f"Expected: {v.expected}",
        f"p-value:  {v.p_value}",
    ]
    if v.summary:
        lines += ["", v.summary]
    if v.story:
        lines += ["", f"Story: {v.story}"]
    if v.link:
        lines += ["", f"Alert page: {v.link}"]
    return lines


def _html_block(v: AlertView) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><th align='left'>{k}</th><td>{e(val)}</td></tr>"
        for k, val in (
            ("Window", v.window),
            ("Observed", v.observed),
            ("Expected", v.expected),
            ("p-value", v.p_value),
        )
    )
    parts = [f"<h2>{e(v.title)}</h2>", f"<table>{rows}</table>"]
    if v.summary:
        parts.append(f"<p>{e(v.summary)}</p>")
    if v.story:
        parts.append(f"<p><em>Story:</em> {e(v.story)}</p>")
    if v.link:
        target = e(v.link, quote=True)
        parts.append(f'<p><a href="{target}">Open the alert</a> ({e(v.link)})</p>')
    return "".join(parts)


def email_message(envelope: dict[str, Any], public_url: str | None) -> Email:
    """Subject, plain text and HTML of an alert (or a digest) email."""
    views, minutes = _views(envelope, public_url)
    if minutes is not None:
        title = _digest_title(len(views), minutes)
        text = [title, ""]
        for v in views:
            text.append(f"- {v.line}" + (f"  ({v.link})" if v.link else ""))
        items = "".join(
            f"<li>{html.escape(v.line)}"
            + (
                f' — <a href="{html.escape(v.link, quote=True)}">{html.escape(v.title)}</a>'
                if v.link
                else ""
            )
            + "</li>"
            for v in views
        )
        body = f"<h2>{html.escape(title)}</h2><ul>{items}</ul>"
        subject = f"[Sentimon] {title}"
    else:
        (v,) = views
        text = _text_block(v)
        body = _html_block(v)
        subject = f"[Sentimon] {v.title} ({v.observed} against {v.expected} expected)"
    page = f"<!doctype html><html><body>{body}</body></html>"
    return Email(subject=" ".join(subject.split()), text="\n".join(text) + "\n", html=page)

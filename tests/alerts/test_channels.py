"""Slack, Teams and email channels through the outbox, against local stand-ins: a real
HTTP receiver on 127.0.0.1 for the chat webhooks and a real SMTP server (aiosmtpd) for
email. The retry schedule runs on an injected clock; only the network is real."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.alerts.delivery import DeliveryWorker
from services.alerts.messages import email_message, slack_message, teams_message
from services.alerts.settings import AlertSettings
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.storage.db import make_engine, migrate
from services.core.storage.webhooks import Delivery, WebhookStore, enqueue_deliveries
from services.core.urls import WebhookUrlError, check_channel_url, mask_url
from tests.fixtures.webhook_receiver import Answer, WebhookReceiver

NOW = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)
SECRET_PATH = "/services/T0SENTI/B0MON/xoxSecretToken42"
SMTP_PASSWORD = "smtp-pass-Zq9!"
PUBLIC = "https://sentimon.example.com"
SETTINGS = AlertSettings(webhook_allow_loopback=True, webhook_timeout_s=2.0, public_url=PUBLIC)


def alert_doc(alert_id: int, brand: str = "Acme", **extra: Any) -> dict[str, Any]:
    return {
        "id": alert_id,
        "rule_id": 1,
        "kind": "negative_spike",
        "brand": brand,
        "window": {"start": "2026-03-02T10:00:00+00:00", "end": "2026-03-02T10:15:00+00:00"},
        "observed": 42.0 + alert_id,
        "expected": 6.5,
        "unit": "mentions",
        "p_value": 3.2e-9,
        **extra,
    }


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The outbox on SQLite and on PostgreSQL (the digest's conditional claim, JSON config)."""
    e = make_engine(database_url)
    migrate(e)
    yield e
    e.dispose()


def enqueue(engine: Engine, clock: FrozenClock, *docs: dict[str, Any]) -> None:
    with engine.begin() as conn:
        for doc in docs:
            body = {
                "type": "alert.negative_spike",
                "timestamp": clock.now().isoformat(),
                "data": doc,
            }
            enqueue_deliveries(
                conn,
                alert_id=doc["id"],
                event_type="alert.negative_spike",
                payload=orjson.dumps(body),
                now=clock.now(),
                give_up_at=clock.now() + timedelta(hours=24),
            )


def worker(
    engine: Engine, clock: FrozenClock, settings: AlertSettings = SETTINGS
) -> DeliveryWorker:
    return DeliveryWorker(
        WebhookStore(engine, clock), settings, clock, Metrics(CollectorRegistry())
    )


async def advance_and_deliver(w: DeliveryWorker, store: WebhookStore, clock: FrozenClock) -> int:
    due = store.next_due()
    if due is not None and due > clock.now():
        clock.advance(due - clock.now())
    return await w.deliver_due()


def deliveries(store: WebhookStore, endpoint_id: int) -> list[Delivery]:
    return sorted(store.deliveries(endpoint_id, limit=200), key=lambda d: d.id)


def chat_url(receiver: WebhookReceiver) -> str:
    return f"http://127.0.0.1:{receiver.port}{SECRET_PATH}"


# --- an SMTP server on 127.0.0.1 -----------------------------------------------------------


@dataclass
class SmtpReply:
    reply: str = "250 OK"
    hang: threading.Event | None = None  # answer DATA only once this is set


@dataclass
class SmtpServer:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    script: list[SmtpReply] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())

    class Handler:
        async def handle_DATA(self, _srv: Any, _session: Session, envelope: Envelope) -> str:
            answer = server.script.pop(0) if server.script else SmtpReply()
            if answer.hang is not None:
                # Off its own loop, so the server stays responsive while this one hangs.
                await asyncio.to_thread(answer.hang.wait, 10)
            if answer.reply.startswith("250"):
                content = envelope.content
                raw = content if isinstance(content, bytes) else str(content).encode()
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(msg, EmailMessage)
                server.messages.append(msg)
                server.recipients.append(list(envelope.rcpt_tos))
            return answer.reply

    def authenticate(
        _srv: Any, _session: Session, _env: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        login, password = data.login.decode(), data.password.decode()
        server.logins.append((login, password))
        return AuthResult(success=password == SMTP_PASSWORD, handled=False)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=server.port,
        authenticator=authenticate,
        auth_require_tls=False,  # a local stand-in: no certificate to offer
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def smtp_settings(server: SmtpServer, **kw: Any) -> AlertSettings:
    values: dict[str, Any] = {
        "webhook_allow_loopback": True,
        "webhook_timeout_s": 2.0,
        "public_url": PUBLIC,
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "smtp_security": "none",
        "smtp_username": "sentimon",
        "smtp_password": SMTP_PASSWORD,
        "smtp_from": "alerts@sentimon.example.com",
        **kw,
    }
    return AlertSettings(**values)


# --- each channel delivers the right content -----------------------------------------------


async def test_slack_gets_the_alert_with_its_summary_story_and_link(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create(chat_url(webhook_receiver), ["alert.negative_spike"], kind="slack")
    story = {
        "size": 142,
        "first_mention_id": "m1",
        "first_source": "x",
        "first_author": "newsdesk",
        "first_posted_at": "2026-03-02T10:01:00+00:00",
        "first_url": None,
        "combined_reach": 1_234_567,
        "sample_text": "Acme outage hits Europe",
        "share_of_window": 0.5,
    }
    doc = alert_doc(7, summary="Acme: 49 negative mentions where 6.5 were expected.", story=story)
    enqueue(engine, clock, doc)
    assert await worker(engine, clock).deliver_due() == 1
    (got,) = webhook_receiver.received
    assert got.path == SECRET_PATH
    body = got.payload
    assert body == slack_message({"type": "alert.negative_spike", "data": doc}, PUBLIC)
    text = orjson.dumps(body).decode()
    for fact in ("Negative spike: Acme", "2026-03-02 10:00–10:15 UTC", "49", "6.5", "3.2e-09"):
        assert fact in text, fact
    assert "Acme: 49 negative mentions where 6.5 were expected." in text
    assert "142 mentions repeat one story, first posted by @newsdesk" in text
    assert "combined reach 1.2 M" in text and "Acme outage hits Europe" in text
    assert f"<{PUBLIC}/alerts/7|" in text
    (d,) = deliveries(store, channel.id)
    assert (d.status, d.alert_ids, d.attempt_log[0].status_code) == ("delivered", (7,), 204)


async def test_teams_gets_an_adaptive_card(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    store.create(chat_url(webhook_receiver), ["alert.negative_spike"], kind="teams")
    enqueue(engine, clock, alert_doc(3, story=None))  # no summary, no story
    await worker(engine, clock).deliver_due()
    (got,) = webhook_receiver.received
    (attachment,) = got.payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts == {
        "Window": "2026-03-02 10:00–10:15 UTC",
        "Observed": "45",
        "Expected": "6.5",
        "p-value": "3.2e-09",
    }
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open the alert", "url": f"{PUBLIC}/alerts/3"}
    ]
    assert "Story" not in orjson.dumps(card).decode()  # absent fields are skipped


async def test_email_goes_through_smtp_with_text_and_html(
    engine: Engine, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    to = ["oncall@example.com", "comms@example.org"]
    channel = store.create("", ["alert.negative_spike"], kind="email", config={"to": to})
    doc = alert_doc(9, brand="Acme <Corp>", summary="Acme & co: a spike.", severity="high")
    enqueue(engine, clock, doc)
    settings = smtp_settings(smtp_server)
    assert await worker(engine, clock, settings).deliver_due() == 1
    (msg,) = smtp_server.messages
    assert smtp_server.recipients == [to]
    assert smtp_server.logins == [("sentimon", SMTP_PASSWORD)]
    expected = email_message({"type": "alert.negative_spike", "data": doc}, PUBLIC)
    assert str(msg["Subject"]).strip() == expected.subject
    assert "Negative spike (high): Acme <Corp>" in msg["Subject"]
    assert msg["From"] == "alerts@sentimon.example.com"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    assert "Observed: 51" in plain and "Expected: 6.5" in plain and "3.2e-09" in plain
    assert f"{PUBLIC}/alerts/9" in plain and "Acme & co: a spike." in plain
    markup = html.get_content()
    assert "Acme &lt;Corp&gt;" in markup and "Acme &amp; co" in markup  # escaped
    assert f'href="{PUBLIC}/alerts/9"' in markup
    (d,) = deliveries(store, channel.id)
    assert d.status == "delivered"
    assert msg["Message-ID"] == f"<{d.webhook_id}@sentimon>"  # fixed per delivery
    assert not [r for r in caplog.records if SMTP_PASSWORD in r.getMessage()]


# --- retries, refusals, hangs --------------------------------------------------------------


async def test_a_chat_500_is_retried_then_delivered(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create(chat_url(webhook_receiver), ["alert.negative_spike"], kind="slack")
    enqueue(engine, clock, alert_doc(1))
    webhook_receiver.script = [Answer(500), Answer(429, {"Retry-After": "120"})]
    w = worker(engine, clock)
    for _ in range(3):
        await advance_and_deliver(w, store, clock)
    (d,) = deliveries(store, channel.id)
    assert [(a.status_code, a.outcome) for a in d.attempt_log] == [
        (500, "retrying"),
        (429, "retrying"),
        (204, "delivered"),
    ]
    second = d.attempt_log[1]
    assert second.next_attempt_at is not None
    assert second.next_attempt_at - second.started_at == timedelta(seconds=120)
    assert len(webhook_receiver.received) == 3


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_a_chat_channel_that_is_gone_is_disabled(
    engine: Engine, webhook_receiver: WebhookReceiver, status: int
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create(chat_url(webhook_receiver), ["alert.negative_spike"], kind="teams")
    enqueue(engine, clock, alert_doc(1))
    webhook_receiver.script = [Answer(status)]
    w = worker(engine, clock)
    await w.deliver_due()
    (d,) = deliveries(store, channel.id)
    assert (d.status, d.attempt_log[0].outcome) == ("failed", "endpoint_gone")
    gone = store.get(channel.id)
    assert not gone.enabled and str(status) in (gone.disabled_reason or "")
    enqueue(engine, clock, alert_doc(2))  # nothing more is queued for it
    assert await w.deliver_due() == 0
    assert len(webhook_receiver.received) == 1


async def test_a_chat_400_gives_the_delivery_up_but_keeps_the_channel(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create(chat_url(webhook_receiver), ["alert.negative_spike"], kind="slack")
    enqueue(engine, clock, alert_doc(1))
    webhook_receiver.script = [Answer(400)]
    w = worker(engine, clock)
    await w.deliver_due()
    (d,) = deliveries(store, channel.id)
    assert (d.status, d.attempt_log[0].outcome) == ("failed", "rejected")
    assert store.get(channel.id).enabled
    clock.advance(timedelta(days=1))
    assert await w.deliver_due() == 0  # not retried


async def test_a_chat_channel_that_hangs_is_cut_and_retried(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create(chat_url(webhook_receiver), ["alert.negative_spike"], kind="slack")
    enqueue(engine, clock, alert_doc(1))
    release = threading.Event()
    webhook_receiver.script = [Answer(200, delay_event=release)]
    settings = AlertSettings(webhook_allow_loopback=True, webhook_timeout_s=0.3)
    w = worker(engine, clock, settings)
    try:
        await w.deliver_due()
    finally:
        release.set()
    (d,) = deliveries(store, channel.id)
    assert (d.status, d.attempt_log[0].outcome) == ("pending", "retrying")
    assert "timed out after 0.3 s" in (d.attempt_log[0].error or "")
    await advance_and_deliver(w, store, clock)
    assert deliveries(store, channel.id)[0].status == "delivered"


async def test_smtp_that_hangs_is_cut_and_retried(engine: Engine, smtp_server: SmtpServer) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create("", ["alert.negative_spike"], kind="email", config={"to": ["a@b.io"]})
    enqueue(engine, clock, alert_doc(1))
    release = threading.Event()
    smtp_server.script = [SmtpReply(hang=release)]
    w = worker(engine, clock, smtp_settings(smtp_server, webhook_timeout_s=0.3))
    try:
        await w.deliver_due()
    finally:
        release.set()
    (d,) = deliveries(store, channel.id)
    assert (d.status, d.attempt_log[0].outcome) == ("pending", "retrying")
    assert "timed out" in (d.attempt_log[0].error or "")
    await advance_and_deliver(w, store, clock)
    assert deliveries(store, channel.id)[0].status == "delivered"
    assert len(smtp_server.messages) == 1


async def test_smtp_4xx_is_retried_5xx_gives_up(engine: Engine, smtp_server: SmtpServer) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create("", ["alert.negative_spike"], kind="email", config={"to": ["a@b.io"]})
    enqueue(engine, clock, alert_doc(1))
    smtp_server.script = [SmtpReply("451 4.3.0 try later"), SmtpReply("554 5.7.1 refused")]
    w = worker(engine, clock, smtp_settings(smtp_server))
    await advance_and_deliver(w, store, clock)
    await advance_and_deliver(w, store, clock)
    (d,) = deliveries(store, channel.id)
    assert [(a.status_code, a.outcome) for a in d.attempt_log] == [
        (451, "retrying"),
        (554, "rejected"),
    ]
    assert d.status == "failed" and store.get(channel.id).enabled
    assert smtp_server.messages == []


async def test_a_wrong_smtp_password_is_retried_and_never_shown(
    engine: Engine, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create("", ["alert.negative_spike"], kind="email", config={"to": ["a@b.io"]})
    enqueue(engine, clock, alert_doc(1))
    wrong = "not-the-password-77"
    await worker(engine, clock, smtp_settings(smtp_server, smtp_password=wrong)).deliver_due()
    (d,) = deliveries(store, channel.id)
    first = d.attempt_log[0]
    assert (first.status_code, first.outcome) == (535, "retrying")
    assert "authentication failed" in (first.error or "")
    shown = " ".join(r.getMessage() for r in caplog.records) + repr(d)
    assert wrong not in shown and SMTP_PASSWORD not in shown
    assert "not-the-password" not in repr(smtp_settings(smtp_server, smtp_password=wrong))


async def test_the_chat_url_is_never_in_logs_or_errors(
    engine: Engine, webhook_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    channel = store.create(chat_url(webhook_receiver), ["alert.negative_spike"], kind="slack")
    enqueue(engine, clock, alert_doc(1), alert_doc(2))
    w = worker(engine, clock)
    moved = f"http://127.0.0.1:{webhook_receiver.port}/moved"
    webhook_receiver.script = [Answer(500), Answer(302, {"Location": moved})]
    await w.deliver_due()  # a 500 and a redirect (not followed)
    webhook_receiver.stop()
    await advance_and_deliver(w, store, clock)  # connection refused
    strict = AlertSettings(webhook_allow_loopback=False)
    await advance_and_deliver(worker(engine, clock, strict), store, clock)  # policy refuses
    webhook_receiver.start()
    while await advance_and_deliver(w, store, clock):
        pass
    ds = deliveries(store, channel.id)
    assert all(d.status == "delivered" for d in ds)
    outcomes = {a.outcome for d in ds for a in d.attempt_log}
    assert outcomes == {"retrying", "refused", "delivered"}
    errors = [a.error or "" for d in ds for a in d.attempt_log]
    assert any("redirect not followed" in e for e in errors)
    assert any("ConnectError" in e for e in errors)
    logged = [r.getMessage() for r in caplog.records]
    assert logged  # the attempts were logged ...
    for piece in ("xoxSecretToken42", "B0MON"):  # ... and nothing says the secret
        assert not [m for m in logged if piece in m]
        assert not [e for e in errors if piece in e]


# --- digest ---------------------------------------------------------------------------------


async def test_a_digest_batches_alerts_into_one_message_and_survives_a_restart(
    engine: Engine, webhook_receiver: WebhookReceiver
) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    digest = store.create(
        chat_url(webhook_receiver), ["alert.negative_spike"], kind="slack", digest_minutes=15
    )
    at_once = store.create(
        f"http://127.0.0.1:{webhook_receiver.port}/at-once", ["alert.negative_spike"], kind="teams"
    )
    summaries = [f"Acme: spike number {i}." for i in range(1, 4)]
    enqueue(engine, clock, alert_doc(1, summary=summaries[0]))
    clock.advance(timedelta(minutes=5))
    enqueue(engine, clock, alert_doc(2, summary=summaries[1]), alert_doc(3, summary=summaries[2]))
    w = worker(engine, clock)
    assert await w.deliver_due() == 3  # the immediate channel, one message per alert
    assert store.digest_queued(digest.id) == 3 and deliveries(store, digest.id) == []
    clock.advance(timedelta(minutes=9))
    assert await w.deliver_due() == 0  # the oldest has waited 14 minutes: not yet
    # The process restarts: a new engine and worker find the queue in the store.
    clock.advance(timedelta(minutes=1))
    restarted = worker(make_engine(engine.url.render_as_string(hide_password=False)), clock)
    assert await restarted.deliver_due() == 1
    assert await restarted.deliver_due() == 0
    (d,) = deliveries(store, digest.id)
    assert (d.status, d.event_type, d.alert_ids) == ("delivered", "alert.digest", (1, 2, 3))
    assert store.digest_queued(digest.id) == 0
    (message,) = [r for r in webhook_receiver.received if r.path == SECRET_PATH]
    text = orjson.dumps(message.payload).decode()
    assert "3 alerts in the last 15 minutes" in text
    assert [text.index(s) for s in summaries] == sorted(text.index(s) for s in summaries)
    assert len(deliveries(store, at_once.id)) == 3
    # The next alert starts the next digest.
    enqueue(engine, clock, alert_doc(4))
    clock.advance(timedelta(minutes=15))
    assert await restarted.deliver_due() == 2  # the digest, and the immediate channel's
    assert deliveries(store, digest.id)[-1].alert_ids == (4,)


async def test_an_email_digest_lists_each_alert(engine: Engine, smtp_server: SmtpServer) -> None:
    clock = FrozenClock(NOW)
    store = WebhookStore(engine, clock)
    store.create(
        "", ["alert.negative_spike"], kind="email", config={"to": ["a@b.io"]}, digest_minutes=60
    )
    enqueue(engine, clock, *(alert_doc(i, brand=f"Brand{i}") for i in range(1, 6)))
    clock.advance(timedelta(hours=1))
    assert await worker(engine, clock, smtp_settings(smtp_server)).deliver_due() == 1
    (msg,) = smtp_server.messages
    assert msg["Subject"] == "[Sentimon] 5 alerts in the last 60 minutes"
    body = msg.get_body(("plain",))
    assert body is not None
    plain = body.get_content()
    for i in range(1, 6):
        assert f"Negative spike: Brand{i}" in plain and f"{PUBLIC}/alerts/{i}" in plain


# --- pure parts -----------------------------------------------------------------------------


def test_masking_keeps_the_host_and_hides_the_secret() -> None:
    assert mask_url("https://hooks.slack.com/services/T0/B0/abc") == (
        "https://hooks.slack.com/services/****"
    )
    teams = "https://prod-1.westus.logic.azure.com:443/workflows/42/triggers?sig=abc"
    assert mask_url(teams) == "https://prod-1.westus.logic.azure.com:443/workflows/****"
    assert mask_url("https://example.com/onlysecret") == "https://example.com/****"


@pytest.mark.parametrize(
    ("url", "loopback", "why"),
    [
        ("http://hooks.example.com/x", True, "https"),
        ("http://127.0.0.1:9/x", False, "https"),
        ("https://127.0.0.1:9/x", False, "loopback"),
        ("https://10.0.0.8/x", True, "private"),
        ("ftp://hooks.example.com/x", True, "scheme"),
    ],
)
def test_chat_urls_must_be_https_and_pass_the_policy(url: str, loopback: bool, why: str) -> None:
    def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    with pytest.raises(WebhookUrlError, match=why):
        check_channel_url(url, allow_loopback=loopback, allow_private=False, resolve=resolve)
    assert check_channel_url(
        "https://hooks.example.com/x", allow_loopback=False, allow_private=False, resolve=resolve
    ) == ["93.184.215.14"]
    assert check_channel_url(
        "http://127.0.0.1:9/x", allow_loopback=True, allow_private=False, resolve=resolve
    ) == ["127.0.0.1"]


def test_messages_link_the_page_path_without_a_public_url() -> None:
    envelope = {"type": "alert.volume_spike", "data": alert_doc(5, kind="volume_spike")}
    assert "/alerts/5" in email_message(envelope, None).text
    card = teams_message(envelope, None)["attachments"][0]["content"]
    assert "actions" not in card  # Teams opens absolute URLs only
    assert "Alert page: /alerts/5" in orjson.dumps(card).decode()
    share = {
        "type": "alert.negative_share",
        "data": alert_doc(6, unit="share", observed=0.4, expected=0.125),
    }
    assert "40.0 % against 12.5 % expected" in email_message(share, None).subject

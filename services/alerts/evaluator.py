"""The evaluator: every rule, every tick, on the per-minute rollups.

At each tick a rule's window in progress and the window before it are tested (the one
before is tested again because late mentions may still land in it; the one in progress
so a burst alerts before its window closes: a partial count against a full window's
expectation can only err towards silence). A window that fires is stored with its
webhook outbox rows in one transaction, at most once per (rule, window) whichever process
evaluates it (``store_alert``). Time comes from the injected clock only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from services.alerts.detection import (
    DAY_S,
    GUARD_S,
    AlertKind,
    Verdict,
    WindowSeries,
    judge_window,
    window_under_test,
)
from services.alerts.explain import expectation_around, explain
from services.alerts.settings import AlertSettings
from services.core import terms
from services.core.alerting import severity, snoozed
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.storage.alerts import (
    AlertRecord,
    AlertRule,
    AlertRuleStore,
    alert_exists,
    alert_within,
    mention_texts,
    negative_mentions_by_reach,
)
from services.core.storage.alerts import store_alert as _store_alert
from services.core.storage.analytics import brand_buckets, first_minute
from services.core.storage.stories import story_posts

log = logging.getLogger(__name__)

MAX_WINDOW_TEXTS = 500
MAX_REFERENCE_TEXTS = 2000
REFERENCE_S = DAY_S
MAX_TEXT_CHARS = 500
# Mentions of the window a story is looked for among (clustering is about 2,000 texts/s).
MAX_STORY_MENTIONS = 2_000


@dataclass(frozen=True, slots=True)
class WindowResult:
    rule_id: int
    window_start: datetime
    verdict: Verdict
    alert: AlertRecord | None


class AlertEvaluator:
    def __init__(
        self,
        engine: Engine,
        settings: AlertSettings,
        clock: Clock,
        metrics: Metrics,
        on_alert: Callable[[AlertRecord], None] | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._rules = AlertRuleStore(engine, clock)
        self._on_alert = on_alert

    def evaluate_once(self) -> list[WindowResult]:
        """Test every enabled rule's current and previous window; store what fires.

        Blocking (database reads and writes): call it from a thread in async code.
        """
        now = int(self._clock.now().timestamp())
        results = []
        # Rules on one brand with one window and baseline share one read of the rollups.
        series: dict[tuple[str, int, int], tuple[WindowSeries, int | None]] = {}
        for rule in self._rules.list(enabled_only=True):
            p = rule.params
            current = now // p.window_s * p.window_s
            key = (rule.brand, p.window_s, p.baseline_days)
            if key not in series:
                with self._engine.connect() as conn:
                    full = load_series(
                        conn, rule.brand, current, p.window_s, p.baseline_days, extra_windows=1
                    )
                    series[key] = (full, first_minute(conn, rule.brand))
            full, since = series[key]
            n = len(full.starts)
            for index in (n - 2, n - 1):  # the previous window, then the one in progress
                part = window_under_test(p, full, index)
                result = self.evaluate_window(rule, int(part.starts[-1]), part, since)
                if result is not None:
                    results.append(result)
        return results

    def evaluate_window(
        self,
        rule: AlertRule,
        start: int,
        series: WindowSeries | None = None,
        since: int | None = None,
    ) -> WindowResult | None:
        """Test one window of one rule (``None`` if it has its alert already, or the rule's
        snooze silences it: ``services.core.alerting.snoozed``); the series
        and the brand's first minute are read from the rollups unless given."""
        p = rule.params
        window_start = datetime.fromtimestamp(start, UTC)
        window_end = window_start + timedelta(seconds=p.window_s)
        if snoozed(rule.snoozed_until, self._clock.now(), window_end):
            return None
        with self._engine.connect() as conn:
            if alert_exists(conn, rule.id, window_start):
                return None
            if series is None:
                series = load_series(conn, rule.brand, start, p.window_s, p.baseline_days)
                since = first_minute(conn, rule.brand)
        verdict = judge_window(p, series, since)
        if not verdict.fired:
            return WindowResult(rule.id, window_start, verdict, None)
        with self._engine.connect() as conn:
            # Checked again when storing; here it spares the mention reads during an incident.
            if alert_within(conn, rule.id, window_start, timedelta(seconds=p.cooldown_s)):
                return WindowResult(rule.id, window_start, verdict, None)
            top = top_negative_mentions(
                conn, rule.brand, start, start + p.window_s, self._settings.alert_top_mentions
            )
            top_terms = self._rising_terms(conn, rule.brand, start, start + p.window_s)
            # The mentions the test counted: the negative ones, or all for volume.
            posts = story_posts(
                conn,
                rule.brand,
                start,
                start + p.window_s,
                MAX_STORY_MENTIONS,
                negative_only=p.kind != AlertKind.VOLUME_SPIKE,
            )
        expectation = expectation_around(p, series, since, verdict.expected)

        def build(alert_id: int, created_at: datetime) -> dict[str, Any]:
            doc = alert_document(
                alert_id, rule, window_start, verdict, top, top_terms, created_at=created_at
            )
            return explain(doc, posts, expectation)

        alert = _store_alert(
            self._engine,
            rule,
            window_start,
            build,
            now=self._clock.now(),
            observed=verdict.observed,
            expected=verdict.expected,
            p_value=verdict.p_value,
            retry_max_age=timedelta(seconds=self._settings.webhook_retry_max_age_s),
        )
        if alert is not None:
            self._metrics.alerts_fired.labels(p.kind.value).inc()
            log.warning(
                "alert %d: %s for %s in %s (observed %.3g, expected %.3g, p=%.2g)",
                alert.id,
                p.kind.value,
                rule.brand,
                window_start.isoformat(),
                verdict.observed,
                verdict.expected,
                verdict.p_value,
            )
            if self._on_alert is not None:
                self._on_alert(alert)
        return WindowResult(rule.id, window_start, verdict, alert)

    def _rising_terms(
        self, conn: Connection, brand: str, start: int, end: int
    ) -> list[dict[str, Any]]:
        if self._settings.alert_top_terms == 0:
            return []
        window = mention_texts(conn, brand, start, end, MAX_WINDOW_TEXTS, negative_only=True)
        # The day before, ending where the baseline does (an incident under way is not
        # its own reference).
        ref_end = start - GUARD_S
        reference = mention_texts(conn, brand, ref_end - REFERENCE_S, ref_end, MAX_REFERENCE_TEXTS)
        return alert_terms(window, reference, brand, self._settings.alert_top_terms)

    def close(self) -> None:
        """Release the engine's connections (tests running several evaluators)."""
        self._engine.dispose()

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate every ``alerts_evaluate_interval_s`` until ``stop`` is set.

        A failed pass is logged and the next one runs (the database may be briefly away);
        nothing is lost, since a window is tested again at the next tick.
        """
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.evaluate_once)
            except Exception:  # the loop must outlive one bad pass; it is logged, not hidden
                log.exception("alert evaluation failed; retrying at the next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.alerts_evaluate_interval_s)


def load_series(
    conn: Connection,
    brand: str,
    start: int,
    window_s: int,
    baseline_days: int,
    *,
    extra_windows: int = 0,
) -> WindowSeries:
    """The baseline windows and the window at ``start``, summed from the rollups
    (``extra_windows`` more before the baseline, to test earlier windows from one read)."""
    first = start - baseline_days * DAY_S - extra_windows * window_s
    buckets = brand_buckets(conn, [brand], first, start + window_s, window_s)
    counts = buckets.buckets[brand]
    return WindowSeries(
        starts=np.asarray(buckets.bucket_starts, dtype=np.int64),
        mentions=np.asarray([c.mentions for c in counts], dtype=np.int64),
        negative=np.asarray([c.negative for c in counts], dtype=np.int64),
    )


def top_negative_mentions(
    conn: Connection, brand: str, start: int, end: int, limit: int
) -> list[dict[str, Any]]:
    """The window's mentions negative toward ``brand`` with the widest author reach, each
    with its score toward ``brand`` (issue 16: a mention naming two brands has one each)."""
    if limit == 0:
        return []
    out = []
    for d, followers in negative_mentions_by_reach(conn, brand, start, end, limit):
        author = d.get("author", {})
        by_brand = d.get("sentiment_by_brand") or {}
        toward = by_brand.get(brand) or d.get("sentiment", {})
        out.append(
            {
                "source": d.get("source"),
                "id": d.get("id"),
                "url": d.get("url"),
                "text": str(d.get("text", ""))[:MAX_TEXT_CHARS],
                "created_at": d.get("created_at"),
                "author_handle": author.get("handle"),
                "author_followers": followers,
                "score": toward.get("score"),
            }
        )
    return out


def alert_terms(
    window: Sequence[str], reference: Sequence[str], brand: str, limit: int
) -> list[dict[str, Any]]:
    """The alert's ``top_terms``: terms of the window's texts that rose against the
    reference's, the brand's own words left out. Pure."""
    rose = terms.rising_terms(window, reference, terms.brand_words([brand]), limit)
    return [
        {"term": t.term, "count": t.count, "baseline_count": t.previous_count, "ratio": t.ratio}
        for t in rose
    ]


def alert_document(
    alert_id: int,
    rule: AlertRule,
    window_start: datetime,
    verdict: Verdict,
    top_mentions: list[dict[str, Any]],
    top_terms: list[dict[str, Any]],
    *,
    created_at: datetime,
) -> dict[str, Any]:
    """The ``data`` object of ``schemas/alert.v1.json``."""
    p = rule.params
    share = p.kind == AlertKind.NEGATIVE_SHARE
    return {
        "id": alert_id,
        "rule_id": rule.id,
        "kind": p.kind.value,
        "brand": rule.brand,
        "window": {
            "start": window_start.isoformat(),
            "end": (window_start + timedelta(seconds=p.window_s)).isoformat(),
        },
        "observed": round(verdict.observed, 6),
        "expected": round(verdict.expected, 6),
        "unit": "share" if share else "mentions",
        "count": verdict.count,
        "total": verdict.total,
        "p_value": verdict.p_value,
        "severity": severity(verdict.p_value, p.sensitivity).value,
        "statistic": round(verdict.statistic, 4),
        "method": verdict.method,
        "rule": {
            "window_minutes": p.window_s // 60,
            "baseline_days": p.baseline_days,
            "sensitivity": p.sensitivity,
            "min_count": p.min_count,
            "warmup_days": p.warmup_days,
            "cooldown_minutes": p.cooldown_s // 60,
        },
        "top_mentions": top_mentions,
        "top_terms": top_terms,
        "created_at": created_at.isoformat(),
    }

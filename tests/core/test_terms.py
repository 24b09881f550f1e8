"""Rising terms: one tokeniser and one rule, so an alert and a report agree."""

from __future__ import annotations

from services.alerts.evaluator import alert_terms
from services.core.reports.executive import TOP_TERMS, period_terms
from services.core.terms import brand_words, terms_of

# Written so that the two former tokenisers and rules disagreed: one counted the @handle
# ("acmehelp"), the other the stem of "don't" ("don") and "app", whose rate rose by less
# than two-fold.
WINDOW = [
    "Acme's login outage again, can't pay the invoice https://status.acme.example/incident",
    "@acmehelp outage here too, invoices stuck in the app and the refund isn't coming #AcmeDown",
    "Is Acme down? Outage, refund please. Don't renew, the app is useless",
    "acme outage: checkout broken in the app, refund requested, awful",
    "@acmehelp the app works fine for me, nice redesign",
    "Refund? Their support said the outage is over. Don't believe it",
]
BEFORE = [
    "Acme's new redesign is nice, the app works fine",
    "Paid my Acme invoice in the app, checkout was quick",
    "Acme support answered within minutes, nice",
    "acme app redesign: fine, a bit slow on login",
    "Thinking of moving to Acme for invoicing",
]


def test_the_alert_and_the_report_name_the_same_rising_terms() -> None:
    alert = alert_terms(WINDOW, BEFORE, "Acme", TOP_TERMS)
    report = period_terms(WINDOW, BEFORE, ["Acme"]).rising_terms
    assert [(t["term"], t["count"], t["baseline_count"]) for t in alert] == [
        (t.term, t.count, t.previous_count) for t in report
    ]
    assert [t["term"] for t in alert] == ["outage", "refund"]


def test_terms_leave_out_urls_handles_numbers_contractions_and_the_brand() -> None:
    words, tags = terms_of(
        "Acme’s outage at https://x.example/status, @helpdesk says don't worry #Outage v2 abc1",
        brand_words(["Acme"]),
    )
    assert words == {"outage", "says", "worry"}
    assert tags == {"outage"}

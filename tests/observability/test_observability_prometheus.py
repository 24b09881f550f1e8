"""A real Prometheus scrapes a real ``sentimon run`` during a demo replay, with the deploy
rules loaded; every PromQL expression of the dashboards and rules runs through its HTTP
API and must be valid and return data.

Rule expressions are alert conditions, which return nothing while all is well; they are
run as they are (valid?) and with their comparisons made ``bool`` (data?), and
Prometheus itself must evaluate every loaded rule without error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.sources.demo import load_demo_brands
from tests.fixtures.live_server import wait_until
from tests.fixtures.mentions import mention_doc
from tests.fixtures.prometheus import DemoRun, PrometheusQueryError, PrometheusServer
from tests.observability.deploy_queries import (
    PanelQuery,
    RuleExpr,
    fill_promql,
    metric_names,
    panel_queries,
    rule_expressions,
    rule_files,
    template_variables,
    with_bool,
)

DATA_TIMEOUT_S = 90.0
DASHBOARD_QUERIES = panel_queries("prometheus")
RULES = rule_expressions()


@dataclass(frozen=True)
class Scraped:
    prometheus: PrometheusServer
    variables: dict[str, list[str]]


def _traffic(run: DemoRun) -> None:
    """Beside the demo source: mentions pushed over HTTP, one invalid, one repeated."""
    brand = load_demo_brands()[0].name
    now = datetime.now(UTC).isoformat()
    docs = [
        mention_doc(id=f"obs-{i}", text=f"{brand} support was great today", created_at=now)
        for i in range(3)
    ]
    body = run.push([*docs, {"id": "obs-bad"}, docs[0]])
    assert body["accepted"] == 3 and body["duplicates"] == 1 and len(body["rejected"]) == 1, body


@pytest.fixture(scope="module")
def scraped(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    _traffic(demo_run)
    prom = PrometheusServer.start(
        tmp_path_factory.mktemp("prometheus"),
        {"sentimon-embedded": [demo_run.host_port]},
        rule_files(),
    )
    try:
        exprs = [q.text for q in DASHBOARD_QUERIES] + [r.expr for r in RULES]
        names = metric_names(exprs)
        missing: set[str] = set()

        def present() -> bool:
            missing.clear()
            missing.update(n for n in names if not prom.query(f"count({n})"))
            return not missing

        try:
            wait_until(present, timeout_s=DATA_TIMEOUT_S, what="every metric scraped")
        except TimeoutError as e:
            raise AssertionError(f"never scraped: {sorted(missing)}") from e
        yield Scraped(prom, _variable_values(prom))
    finally:
        prom.stop()


def _variable_values(prom: PrometheusServer) -> dict[str, list[str]]:
    """Each template variable as "All" selects it: every value Prometheus has."""
    out: dict[str, list[str]] = {}
    for _, var in template_variables():
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        assert query.startswith("label_values("), query
        metric, label = (s.strip() for s in query.removeprefix("label_values(")[:-1].split(","))
        values = prom.api(f"label/{label}/values", **{"match[]": metric})
        assert values, f"variable {var['name']}: {query} has no values"
        out[var["name"]] = values
    return out


def _returns_data(prom: PrometheusServer, expr: str, what: str) -> list[dict[str, Any]]:
    """Valid at once (a query error fails without waiting), data within a bound."""
    prom.query(expr)
    return wait_until(lambda: prom.query(expr), timeout_s=DATA_TIMEOUT_S, what=what)


def test_prometheus_scrapes_the_run(scraped: Scraped) -> None:
    up = scraped.prometheus.query('up{job="sentimon-embedded"}')
    assert [s["value"][1] for s in up] == ["1"]
    brands = {b.name for b in load_demo_brands()}
    assert set(scraped.variables["brand"]) == brands


@pytest.mark.parametrize("query", DASHBOARD_QUERIES, ids=[q.id for q in DASHBOARD_QUERIES])
def test_dashboard_expression_is_valid_and_returns_data(
    scraped: Scraped, query: PanelQuery
) -> None:
    expr = fill_promql(query.text, scraped.variables)
    samples = _returns_data(scraped.prometheus, expr, query.id)
    assert all("value" in s or "values" in s for s in samples)


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_expression_is_valid_and_returns_data(scraped: Scraped, rule: RuleExpr) -> None:
    scraped.prometheus.query(rule.expr)  # valid as written
    samples = _returns_data(scraped.prometheus, with_bool(rule.expr), rule.id)
    assert {s["value"][1] for s in samples} <= {"0", "1"}, samples


def test_prometheus_evaluates_every_rule_without_error(scraped: Scraped) -> None:
    prom = scraped.prometheus

    def evaluated() -> list[dict[str, Any]] | None:
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        done = all(not r["lastEvaluation"].startswith("0001") for r in rules)
        return rules if done and rules else None

    rules = wait_until(evaluated, timeout_s=DATA_TIMEOUT_S, what="every rule evaluated")
    assert {r["name"] for r in rules} == {r.name for r in RULES}
    for r in rules:
        assert r["health"] == "ok" and not r.get("lastError"), r


def test_an_invalid_expression_is_refused(scraped: Scraped) -> None:
    """The validity check can fail."""
    with pytest.raises(PrometheusQueryError, match="parse"):
        scraped.prometheus.query("sum by (le (rate(sentimon_mentions_stored_total[1m]))")


def test_brand_gauges_follow_the_rollups(scraped: Scraped, demo_run: DemoRun) -> None:
    """The business gauges count the mentions of the last window: the three pushed
    mentions of the first demo brand are among them."""
    brand = load_demo_brands()[0].name
    samples = _returns_data(
        scraped.prometheus,
        f'sentimon_brand_recent_mentions{{brand="{brand}"}} >= 3',
        "brand gauge counts the pushed mentions",
    )
    assert float(samples[0]["value"][1]) >= 3
    net = scraped.prometheus.query("sentimon_brand_recent_net_sentiment_ratio")
    assert net and all(-1.0 <= float(s["value"][1]) <= 1.0 for s in net)

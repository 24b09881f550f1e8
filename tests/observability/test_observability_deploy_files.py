"""The deploy files on their own: promtool accepts them, the dashboards are well formed,
their SQL runs on a real PostgreSQL with the real schema, and the docs cover them."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, insert, make_url, text

from services.core.storage.db import make_engine, migrate
from services.core.storage.tables import alerts, brand_minute_rollups, brands
from tests.fixtures.prometheus import PROMTOOL
from tests.observability.deploy_queries import (
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    PROMETHEUS_CONFIG,
    REPO_ROOT,
    dashboard_files,
    fill_promql,
    fill_sql,
    iter_panels,
    load_dashboard,
    metric_names,
    panel_queries,
    promql_regex_of,
    provisioned_datasources,
    rule_expressions,
    rule_files,
    template_variables,
    with_bool,
)

OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"
# Links and bookmarks point at these: they must never change.
STABLE_UIDS = {"sentimon-operations", "sentimon-brands"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (a fixed command line)
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_scrape_config_and_its_rule_files() -> None:
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    # The config loads the rule files through its glob: every one of them.
    assert f"{len(rule_files())} rule files found" in result.stdout


def test_promtool_accepts_the_rules() -> None:
    files = rule_files()
    assert files
    result = promtool("check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: a rule with invalid PromQL is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum by (x (up)"}]}]}
        )
    )
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_the_scrape_config_covers_every_service() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"sentimon-embedded", "sentimon-api", "sentimon-ingest", "sentimon-scorer"}
    # The dashboards' and rules' up{job=~"sentimon-.*"} match every job.
    assert all(job.startswith("sentimon-") for job in jobs)


def test_dashboards_have_stable_unique_uids_and_unique_panels() -> None:
    boards = [load_dashboard(p) for p in dashboard_files()]
    uids = [b["uid"] for b in boards]
    assert len(uids) == len(set(uids)), uids
    assert set(uids) == STABLE_UIDS
    for board in boards:
        panels = list(iter_panels(board["panels"]))
        ids = Counter(p["id"] for p in panels)
        assert all(n == 1 for n in ids.values()), (board["uid"], ids)
        titles = Counter(p["title"] for p in panels)
        assert all(n == 1 for n in titles.values()), (board["uid"], titles)


def test_every_datasource_reference_exists() -> None:
    provisioned = provisioned_datasources()
    assert {"sentimon-prometheus", "sentimon-postgres"} <= set(provisioned)
    refs = []
    for path in dashboard_files():
        board = load_dashboard(path)
        for panel in iter_panels(board["panels"]):
            if panel["type"] == "row":
                continue
            refs.append((board["uid"], panel["title"], panel["datasource"]))
            refs += [(board["uid"], panel["title"], t["datasource"]) for t in panel["targets"]]
        refs += [(uid, var["name"], var["datasource"]) for uid, var in template_variables()]
    assert refs
    for where, name, ref in refs:
        assert ref["uid"] in provisioned, (where, name, ref)
        assert ref["type"] == provisioned[ref["uid"]]["type"], (where, name, ref)


def test_every_panel_has_a_query_on_its_datasource() -> None:
    for path in dashboard_files():
        board = load_dashboard(path)
        panels = [p for p in iter_panels(board["panels"]) if p["type"] != "row"]
        assert panels, board["uid"]
        for panel in panels:
            assert panel["targets"], (board["uid"], panel["title"])
            assert panel.get("description"), (board["uid"], panel["title"])
            for target in panel["targets"]:
                query = target.get("expr") or target.get("rawSql")
                assert query and query.strip(), (board["uid"], panel["title"], target)


def test_the_provider_loads_the_dashboards_directory() -> None:
    providers = [
        p
        for f in sorted(DASHBOARD_PROVIDERS.glob("*.yml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    assert [p["type"] for p in providers] == ["file"]
    assert providers[0]["options"]["path"]


def test_every_dashboard_query_fills_in() -> None:
    """No variable or macro is left once filled as Grafana fills them (the SQL and
    PromQL are then run for real: below and in test_observability_prometheus)."""
    for q in panel_queries("prometheus"):
        fill_promql(q.text, {"brand": ["Acme"]})
    for q in panel_queries("postgres"):
        fill_sql(q.text, {"brand": ["Acme"]}, 0, 3600)
    assert panel_queries("prometheus") and panel_queries("postgres")


def test_with_bool_turns_filters_into_zero_or_one() -> None:
    assert with_bool('a{x!="1", y=~"a|b"} > 0.5') == 'a{x!="1", y=~"a|b"} > bool 0.5'
    assert with_bool("a >= 1 and b == bool 0") == "a >= bool 1 and b == bool 0"
    assert with_bool('(a or b) != 2 unless c{z="<>"}') == '(a or b) != bool 2 unless c{z="<>"}'


def test_variables_are_escaped_as_grafana_does() -> None:
    assert promql_regex_of(["Acme"]) == "Acme"
    assert promql_regex_of(["A.B", "C"]) == "(A\\\\.B|C)"
    assert fill_sql("brand IN ($brand)", {"brand": ["O'Neil", "X"]}, 0, 1) == (
        "brand IN ('O''Neil','X')"
    )


def test_every_metric_the_deploy_files_use_is_defined() -> None:
    """Catches a misspelt metric before any server runs: every sentimon_ name in the
    dashboards and rules is exported by the code (its definition is in the source)."""
    exprs = [q.text for q in panel_queries("prometheus")] + [r.expr for r in rule_expressions()]
    exprs += [str(v["query"]) for _, v in template_variables()]
    sources = "\n".join(p.read_text() for p in (REPO_ROOT / "services").rglob("*.py"))
    for name in sorted(metric_names(exprs)):
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and f'"{name}"' not in sources:
                base = name.removesuffix(suffix)
        assert f'"{base}"' in sources, f"{name} is used in deploy/ but defined nowhere"


def test_operations_doc_explains_every_panel_and_rule() -> None:
    doc = OPERATIONS_DOC.read_text(encoding="utf-8")
    for path in dashboard_files():
        for panel in iter_panels(load_dashboard(path)["panels"]):
            if panel["type"] != "row":
                assert panel["title"] in doc, f"docs/operations.md misses panel {panel['title']!r}"
    for rule in rule_expressions():
        assert f"### {rule.name}" in doc, f"docs/operations.md misses rule {rule.name}"


def test_sql_panels_run_on_postgresql_with_the_real_schema(pg_database: str) -> None:
    engine = make_engine(pg_database)
    try:
        migrate(engine)
        now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        minute = int(now.timestamp())
        with engine.begin() as conn:
            for name in ("Acme", "O'Neil & Co"):
                conn.execute(
                    insert(brands).values(
                        name=name, query="x", competitors=[], created_at=now, updated_at=now
                    )
                )
            rows = [
                {
                    "brand": brand,
                    "minute": minute - 60 * k,
                    "mentions": 4,
                    "positive": 2,
                    "neutral": 1,
                    "negative": 1 if brand == "Acme" else 0,
                    "score_sum": 0.5,
                    "reach": 100,
                    "engagement": 3,
                }
                for brand in ("Acme", "O'Neil & Co", "Other")
                for k in range(180)
            ]
            conn.execute(insert(brand_minute_rollups), rows)
            conn.execute(
                insert(alerts),
                [
                    {
                        "rule_id": rule_id,
                        "brand": brand,
                        "kind": "negative_spike",
                        "window_start": now - timedelta(minutes=15 * rule_id),
                        "window_end": now - timedelta(minutes=15 * rule_id - 15),
                        "observed": 30.0,
                        "expected": 4.0,
                        "p_value": 1e-6,
                        "doc": "{}",
                        "created_at": now,
                    }
                    for rule_id, brand in ((1, "Acme"), (2, "O'Neil & Co"), (3, "Other"))
                ],
            )
        selected = {"brand": ["Acme", "O'Neil & Co"]}
        queries = panel_queries("postgres")
        assert queries
        reader_url = _read_only_role(engine, pg_database)
        reader = make_engine(reader_url)
        with reader.connect() as conn:
            for q in queries:
                sql = fill_sql(q.text, selected, minute - 2 * 3600, minute)
                result = conn.execute(text(sql))
                columns = list(result.keys())
                got = result.all()
                assert got, f"{q.id}: no rows"
                if "time" in columns:  # a time series: one row per hour and brand
                    assert {r.metric for r in got} == set(selected["brand"]), q.id
                    assert all(int(r.time) % 3600 == 0 for r in got), q.id
                else:  # a table per brand, the unselected brand left out
                    assert {r.brand for r in got} == set(selected["brand"]), q.id
                    if "share_of_voice" in columns:
                        shares = [r.share_of_voice for r in got]
                        assert sum(shares) == pytest.approx(1.0), q.id
        reader.dispose()
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {READER}"))
            conn.execute(text(f"DROP ROLE IF EXISTS {READER}"))
        engine.dispose()


READER = f"grafana_reader_{uuid.uuid4().hex[:8]}"


def _read_only_role(engine: Engine, url: str) -> str:
    """The role the datasource file tells operators to create, with exactly its grants:
    the panels must run with no more than that."""
    provisioning = (DATASOURCES / "sentimon.yml").read_text()
    grant = re.search(r"GRANT SELECT ON ([\w, ]+) TO grafana_reader;", provisioning)
    assert grant is not None, "the datasource file no longer says what to grant"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {READER} LOGIN PASSWORD 'reader-pw'"))
        conn.execute(text(f"GRANT SELECT ON {grant.group(1)} TO {READER}"))
    rest = make_url(url)
    return rest.set(username=READER, password="reader-pw").render_as_string(hide_password=False)

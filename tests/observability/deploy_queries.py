"""Every query the deploy files hold: the dashboards' PromQL and SQL, the rules' PromQL.

Grafana fills in template variables and macros before a query runs; the functions here
do the same for the tests (the way Grafana documents them), so each query can be run
as Grafana would run it: PromQL through Prometheus's HTTP API, SQL on PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "rules"

# What Grafana puts in for its interval variables, for a test Prometheus scraping every
# second with a few minutes of data: windows that hold several samples.
PROMQL_INTERVALS = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m"}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    datasource_uid: str
    text: str  # PromQL (``expr``) or SQL (``rawSql``)

    @property
    def id(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref_id}"


@dataclass(frozen=True)
class RuleExpr:
    group: str
    name: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.group}/{self.name}"


def rule_files() -> list[Path]:
    return sorted(RULES.glob("*.yml"))


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load_dashboard(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    """The provisioned datasources by uid."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(DATASOURCES.glob("*.yml")):
        for ds in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]:
            out[ds["uid"]] = ds
    return out


def iter_panels(panels: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, the ones inside (collapsed) rows included."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def panel_queries(kind: str) -> list[PanelQuery]:
    """Every dashboard query on a datasource of ``kind`` (``prometheus`` or ``postgres``)."""
    uids = {uid for uid, ds in provisioned_datasources().items() if ds["type"] == kind}
    field = "expr" if kind == "prometheus" else "rawSql"
    out: list[PanelQuery] = []
    for path in dashboard_files():
        board = load_dashboard(path)
        for panel in iter_panels(board["panels"]):
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
                if uid in uids:
                    out.append(
                        PanelQuery(
                            board["uid"], panel["title"], target["refId"], uid, target[field]
                        )
                    )
    return out


def template_variables() -> list[tuple[str, dict[str, Any]]]:
    """(dashboard uid, variable) for every template variable."""
    return [
        (board["uid"], var)
        for board in map(load_dashboard, dashboard_files())
        for var in board.get("templating", {}).get("list", [])
    ]


def rule_expressions() -> list[RuleExpr]:
    out: list[RuleExpr] = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                out.append(
                    RuleExpr(group["name"], rule.get("alert") or rule["record"], rule["expr"])
                )
    return out


_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def promql_regex_of(values: Sequence[str]) -> str:
    """A multi-value variable as Grafana puts it in a PromQL ``=~`` matcher: the values
    regex-escaped and joined in one group, then escaped for a PromQL string."""
    alternatives = "|".join(_REGEX_SPECIAL.sub(r"\\\1", v) for v in values)
    joined = alternatives if len(values) == 1 else f"({alternatives})"
    return joined.replace("\\", "\\\\").replace('"', '\\"')


def sql_list_of(values: Sequence[str]) -> str:
    """A multi-value variable as Grafana puts it in SQL: quoted literals, comma-separated."""
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def fill_promql(expr: str, variables: Mapping[str, Sequence[str]]) -> str:
    for name, value in PROMQL_INTERVALS.items():
        expr = expr.replace(name, value)
    for name, values in variables.items():
        expr = re.sub(rf"\$\{{{name}\}}|\${name}\b", _replacement(promql_regex_of(values)), expr)
    if "$" in expr:
        raise ValueError(f"a variable is left unfilled in {expr!r}")
    return expr


def fill_sql(sql: str, variables: Mapping[str, Sequence[str]], start_s: int, end_s: int) -> str:
    """Grafana's PostgreSQL macros for a time range in epoch seconds (expanded as
    Grafana documents them), and the variables."""

    def group_alias(m: re.Match[str]) -> str:
        column, interval = m.group(1).strip(), m.group(2).strip().strip("'\"")
        seconds = _interval_seconds(interval)
        return f'floor({column}/{seconds})*{seconds} AS "time"'

    def time_group_alias(m: re.Match[str]) -> str:
        column, interval = m.group(1).strip(), m.group(2).strip().strip("'\"")
        seconds = _interval_seconds(interval)
        return f'floor(extract(epoch from {column})/{seconds})*{seconds} AS "time"'

    def iso(epoch_s: int) -> str:
        return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    sql = re.sub(r"\$__unixEpochGroupAlias\(\s*([^,]+),\s*([^)]+)\)", group_alias, sql)
    sql = re.sub(r"\$__timeGroupAlias\(\s*([^,]+),\s*([^)]+)\)", time_group_alias, sql)
    sql = re.sub(
        r"\$__timeFilter\(\s*([^)]+)\)",
        lambda m: f"{m.group(1).strip()} BETWEEN '{iso(start_s)}' AND '{iso(end_s)}'",
        sql,
    )
    sql = re.sub(
        r"\$__unixEpochFilter\(\s*([^)]+)\)",
        lambda m: f"{m.group(1).strip()} >= {start_s} AND {m.group(1).strip()} <= {end_s}",
        sql,
    )
    sql = sql.replace("$__unixEpochFrom()", str(start_s)).replace("$__unixEpochTo()", str(end_s))
    for name, values in variables.items():
        sql = re.sub(rf"\$\{{{name}\}}|\${name}\b", _replacement(sql_list_of(values)), sql)
    if "$" in sql:
        raise ValueError(f"a macro or variable is left unfilled in {sql!r}")
    return sql


def _replacement(value: str) -> Callable[[re.Match[str]], str]:
    """A literal replacement for ``re.sub`` (a string would have its backslashes read)."""
    return lambda _m: value


def _interval_seconds(interval: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", interval)
    if m is None:
        raise ValueError(f"unknown interval {interval!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


def with_bool(expr: str) -> str:
    """``expr`` with every comparison made a ``bool`` comparison: it then returns 0 or 1
    for every series instead of filtering them away, so an alert rule's expression
    returns data whether or not its condition holds now."""
    out: list[str] = []
    i, depth, quote = 0, 0, ""
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(expr[i + 1])
                i += 2
                continue
            if c == quote:
                quote = ""
            i += 1
            continue
        if c in "\"'`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0 and (op := next((o for o in _COMPARISONS if expr.startswith(o, i)), "")):
            out.append(op)
            i += len(op)
            if not expr[i:].lstrip().startswith("bool"):
                out.append(" bool")
            continue
        out.append(c)
        i += 1
    return "".join(out)


METRIC_NAME = re.compile(r"\b(sentimon_[a-z0-9_]+)\b")


def metric_names(exprs: Sequence[str]) -> set[str]:
    """The Sentimon series names the expressions select."""
    return {m for e in exprs for m in METRIC_NAME.findall(e)}

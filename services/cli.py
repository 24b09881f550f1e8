"""The ``sentimon`` command line."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import click
import orjson
from sqlalchemy import Engine

from services.api.settings import ApiSettings
from services.core.alerting import RuleParams
from services.core.auth import Role
from services.core.brandfile import BrandFileError, checked_competitors, load_brands_file
from services.core.brands import BrandDefinition, BrandError, BrandMatcher
from services.core.bus.kafka_logs import install as install_kafka_log_filter
from services.core.clock import SystemClock
from services.core.owned import OwnedHandleError, checked_owned_handles
from services.core.settings import CommonSettings
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.errors import NotFoundError
from services.core.storage.keys import KeyStore
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings

log = logging.getLogger("sentimon")

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where this instance keeps its state [env SENTIMON_DATA_DIR; default ./.sentimon].",
)


def _overrides(data_dir: Path | None, **extra: Any) -> dict[str, Any]:
    out = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        out["data_dir"] = data_dir
    return out


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # While Kafka is away aiokafka logs each reconnection attempt (~100 lines a second):
    # the first of each kind passes, the bus's watch sums up the rest when it is back.
    install_kafka_log_filter(logging.getLogger().handlers)
    # Migration chatter at every start says nothing an operator needs.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


def _open_stores(settings: CommonSettings) -> tuple[KeyStore, BrandStore]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    migrate(engine)
    clock = SystemClock()
    return KeyStore(engine, clock), BrandStore(engine, clock)


@click.group()
@click.version_option(package_name="sentimon")
def main() -> None:
    """Sentimon: self-hosted social listening for B2B brands."""


# --- run -------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Address to serve on [default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to serve on [default 8000].")
@click.option("--demo/--no-demo", default=None, help="Run the demo source [default: on].")
@click.option(
    "--brands",
    "brands_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML file of brands to track (added or updated at start).",
)
@click.option(
    "--sources",
    "sources_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML file of sources to listen to (feeds, Mastodon, Bluesky, Reddit, X) "
    "[env SENTIMON_SOURCES_FILE]; see docs/sources.md.",
)
@data_dir_option
def run(
    host: str | None,
    port: int | None,
    demo: bool | None,
    brands_file: Path | None,
    sources_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Run Sentimon embedded: ingest, scorer and API in one process."""
    from services.embedded import PortInUseError, run_embedded

    api = ApiSettings(**_overrides(data_dir, host=host, port=port))
    ingest = IngestSettings(**_overrides(data_dir, demo=demo, sources_file=sources_file))
    scorer = ScorerSettings(**_overrides(data_dir))
    _setup_logging(api.log_level)
    try:
        entries = load_brands_file(brands_file) if brands_file else []
    except BrandFileError as e:
        raise click.ClickException(str(e)) from e
    if ingest.sources_file is not None:
        from services.ingest.sources.config import load_sources_file
        from services.ingest.sources.errors import SourceConfigError

        try:
            # Fail here, before anything starts, with the URL policy the ingest applies
            # when it loads the file (SENTIMON_SOURCE_ALLOW_*, *_CREDENTIAL_HOSTS).
            load_sources_file(ingest.sources_file, ingest.source_url_policy())
        except SourceConfigError as e:
            raise click.ClickException(str(e)) from e
    from services.scorer.transformer import ModelLoadError

    try:
        asyncio.run(run_embedded(api=api, ingest=ingest, scorer=scorer, brand_entries=entries))
    except PortInUseError as e:
        raise click.ClickException(f"{e} (choose another with --port)") from e
    except ModelLoadError as e:
        raise click.ClickException(
            f"{e} [or SENTIMON_TRANSFORMER_MISSING=lexicon to run lexicon-only]"
        ) from e


# --- replay ----------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--rate", type=float, default=None, help="Mentions per second [default: as fast as possible]."
)
@click.option(
    "--brands",
    "brands_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML file of brands to add or update first.",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr.")
@data_dir_option
def replay(
    file: Path, rate: float | None, brands_file: Path | None, progress: bool, data_dir: Path | None
) -> None:
    """Replay a JSON Lines file of mentions through the pipeline into the store."""
    from services.embedded import replay_file

    if rate is not None and rate <= 0:
        raise click.BadParameter("must be positive", param_hint="--rate")
    ingest = IngestSettings(**_overrides(data_dir, demo=False))
    scorer = ScorerSettings(**_overrides(data_dir))
    api = ApiSettings(**_overrides(data_dir))
    _setup_logging("WARNING")
    try:
        entries = load_brands_file(brands_file) if brands_file else []
    except BrandFileError as e:
        raise click.ClickException(str(e)) from e
    stats = asyncio.run(
        replay_file(
            file,
            rate=rate,
            api=api,
            ingest=ingest,
            scorer=scorer,
            brand_entries=entries,
            progress=progress,
        )
    )
    click.echo(
        f"replayed {file}: {stats.received} read, {stats.accepted} accepted, "
        f"{stats.invalid} invalid, {stats.duplicates} duplicate"
    )
    if stats.invalid:
        sys.exit(1)


# --- score -----------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.File("rb"), default="-")
@click.option(
    "--brands",
    "brands_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML file of brands to match.",
)
@click.option(
    "--max-chars",
    type=int,
    default=None,
    help="Length cap before scoring [env SENTIMON_MAX_SCORE_CHARS; default 2000].",
)
@click.option(
    "--lexicon-only",
    is_flag=True,
    default=False,
    help="VADER alone, as SENTIMON_SCORER_MODE=lexicon [default: the service's scorer "
    "mode, hybrid unless set].",
)
@data_dir_option
def score(
    file: BinaryIO,
    brands_file: Path | None,
    max_chars: int | None,
    lexicon_only: bool,
    data_dir: Path | None,
) -> None:
    """Score JSON Lines objects (with at least "text") or plain lines from FILE or stdin.

    Scores as the scorer service does, with its settings (SENTIMON_SCORER_MODE,
    SENTIMON_TRANSFORMER_*, SENTIMON_ROUTE_*, the routing calibration in the data
    directory): hybrid by default, VADER for all and the transformer for the ambiguous.
    Writes each object with "brands" and "sentiment" (label, score, confidence, method,
    ...) added, and "sentiment_by_brand" (brand: label, score, confidence, method,
    targeted) for a text naming two to eight of the brands, scored toward each as the
    service does; one object per line, to stdout. Lines that cannot be scored are reported on
    stderr (with their line number) and make the exit status 1; the others are still
    written.
    """
    from pydantic import ValidationError

    from services.scorer.calibration import CalibrationError
    from services.scorer.offline import LineError, offline_scorer, score_lines
    from services.scorer.transformer import ModelLoadError

    try:
        entries = load_brands_file(brands_file) if brands_file else []
        matcher = BrandMatcher.compile([BrandDefinition(e.name, e.query) for e in entries])
    except (BrandFileError, BrandError) as e:
        raise click.ClickException(str(e)) from e
    try:
        settings = ScorerSettings(
            **_overrides(data_dir, scorer_mode="lexicon" if lexicon_only else None)
        )
    except ValidationError as e:
        raise click.ClickException(f"scorer settings: {e}") from e
    _setup_logging("WARNING")
    try:
        scorer = offline_scorer(settings, matcher, max_chars=max_chars)
    except ModelLoadError as e:
        raise click.ClickException(
            f"{e} [or SENTIMON_TRANSFORMER_MISSING=lexicon to score lexicon-only, as the "
            "service would; or --lexicon-only]"
        ) from e
    except CalibrationError as e:
        raise click.ClickException(str(e)) from e
    failed = 0
    out = sys.stdout.buffer
    for result in score_lines(file, scorer, block=settings.chunk_size):
        if isinstance(result, LineError):
            failed += 1
            click.echo(f"line {result.line}: {result.reason}", err=True)
            continue
        out.write(orjson.dumps(result) + b"\n")
    out.flush()
    if failed:
        sys.exit(1)


# --- keys ------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", default=None, help="What the key is for [default: the role].")
@data_dir_option
def keys_create(role: str, name: str | None, data_dir: Path | None) -> None:
    """Create a key and print it (only this once; only its hash is stored)."""
    store, _ = _open_stores(CommonSettings(**_overrides(data_dir)))
    key, meta = store.create(Role(role), name or role)
    click.echo(f"created {meta.role.value} key {meta.prefix!r}; it is shown only now:", err=True)
    click.echo(key)


@keys.command("list")
@data_dir_option
def keys_list(data_dir: Path | None) -> None:
    """List keys (prefix, role, name, state); never the keys themselves."""
    store, _ = _open_stores(CommonSettings(**_overrides(data_dir)))
    for k in store.list():
        state = "revoked" if k.revoked_at else "active"
        click.echo(f"{k.prefix}\t{k.role.value}\t{state}\t{k.created_at:%Y-%m-%d %H:%M}\t{k.name}")


@keys.command("revoke")
@click.argument("prefix")
@data_dir_option
def keys_revoke(prefix: str, data_dir: Path | None) -> None:
    """Revoke the key with this prefix (and end its browser sessions)."""
    store, _ = _open_stores(CommonSettings(**_overrides(data_dir)))
    try:
        store.revoke(prefix)
    except NotFoundError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"revoked {prefix}")


# --- brands ----------------------------------------------------------------------------


@main.group()
def brands() -> None:
    """Manage tracked brands."""


@brands.command("list")
@data_dir_option
def brands_list(data_dir: Path | None) -> None:
    _, store = _open_stores(CommonSettings(**_overrides(data_dir)))
    for b in store.list():
        comp = f"\tcompetitors: {', '.join(b.competitors)}" if b.competitors else ""
        owned = f"\towned: {', '.join(b.owned_handles)}" if b.owned_handles else ""
        click.echo(f"{b.name}\t{b.query}{comp}{owned}")


@brands.command("add")
@click.argument("name")
@click.argument("query")
@click.option("--competitor", "competitors", multiple=True, help="A competitor's brand name.")
@click.option(
    "--owned-handle",
    "owned_handles",
    multiple=True,
    help="One of the brand's own accounts (handle or source:handle); given: replaces them.",
)
@data_dir_option
def brands_add(
    name: str,
    query: str,
    competitors: tuple[str, ...],
    owned_handles: tuple[str, ...],
    data_dir: Path | None,
) -> None:
    """Track a brand, or change the query of one tracked already."""
    _, store = _open_stores(CommonSettings(**_overrides(data_dir)))
    try:
        store.upsert(
            name,
            query,
            checked_competitors(name, competitors),
            checked_owned_handles(owned_handles) if owned_handles else None,
        )
    except (BrandError, BrandFileError, OwnedHandleError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"tracking {name.strip()!r}")


@brands.command("competitors")
@click.argument("name")
@click.argument("competitors", nargs=-1)
@data_dir_option
def brands_competitors(name: str, competitors: tuple[str, ...], data_dir: Path | None) -> None:
    """Set a tracked brand's competitive set (none given: clear it); the query is kept."""
    _, store = _open_stores(CommonSettings(**_overrides(data_dir)))
    try:
        brand = store.get(name)
        store.update(brand.name, brand.query, checked_competitors(brand.name, competitors))
    except (NotFoundError, BrandError, BrandFileError) as e:
        raise click.ClickException(str(e)) from e
    listed = ", ".join(store.get(brand.name).competitors) or "none"
    click.echo(f"{brand.name}: competitors {listed}")


@brands.command("owned")
@click.argument("name")
@click.argument("handles", nargs=-1)
@data_dir_option
def brands_owned(name: str, handles: tuple[str, ...], data_dir: Path | None) -> None:
    """Set a tracked brand's own accounts (none given: clear them). Their mentions are
    left out of the brand's figures; their replies answer what they reply to."""
    _, store = _open_stores(CommonSettings(**_overrides(data_dir)))
    try:
        brand = store.get(name)
        store.update(brand.name, brand.query, brand.competitors, checked_owned_handles(handles))
    except (NotFoundError, BrandError, OwnedHandleError) as e:
        raise click.ClickException(str(e)) from e
    listed = ", ".join(store.get(brand.name).owned_handles) or "none"
    click.echo(f"{brand.name}: owned accounts {listed}")


@brands.command("remove")
@click.argument("name")
@data_dir_option
def brands_remove(name: str, data_dir: Path | None) -> None:
    """Stop tracking a brand (its stored mentions are kept)."""
    _, store = _open_stores(CommonSettings(**_overrides(data_dir)))
    try:
        store.delete(name)
    except NotFoundError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"no longer tracking {name!r}")


@brands.command("load")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@data_dir_option
def brands_load(file: Path, data_dir: Path | None) -> None:
    """Add or update the brands of a YAML file."""
    try:
        entries = load_brands_file(file)
    except BrandFileError as e:
        raise click.ClickException(str(e)) from e
    _, store = _open_stores(CommonSettings(**_overrides(data_dir)))
    for entry in entries:
        store.upsert(entry.name, entry.query, entry.competitors, entry.owned_handles)
    click.echo(f"loaded {len(entries)} brands from {file}")


# --- alerts (issue 6) ------------------------------------------------------------------


@main.group()
def alerts() -> None:
    """Spike alerts: rules per brand (webhooks: see /api/v1/webhooks)."""


@alerts.group("rules")
def alert_rules() -> None:
    """Manage alert rules."""


@alert_rules.command("add")
@click.argument("brand")
@click.option(
    "--kind",
    type=click.Choice(["negative_spike", "negative_share", "volume_spike"]),
    default="negative_spike",
    show_default=True,
)
@click.option(
    "--window", "window_minutes", type=int, default=15, show_default=True, help="Minutes."
)
@click.option("--baseline-days", type=int, default=7, show_default=True)
@click.option(
    "--sensitivity", type=float, default=1e-5, show_default=True, help="Alert below this p-value."
)
@click.option("--min-count", type=int, default=10, show_default=True)
@click.option("--warmup-days", type=float, default=3.0, show_default=True)
@click.option(
    "--cooldown", "cooldown_minutes", type=int, default=60, show_default=True, help="Minutes."
)
@click.option(
    "--preview",
    is_flag=True,
    help="Do not add the rule: show the alerts it would have raised over the last "
    "--preview-days days (a backtest on the stored mentions).",
)
@click.option(
    "--preview-days", type=click.IntRange(1, 366), default=28, show_default=True, help="Days."
)
@data_dir_option
def alert_rules_add(
    brand: str, data_dir: Path | None, preview: bool, preview_days: int, **fields: Any
) -> None:
    """Alert when BRAND's mentions spike (see docs/alerts.md for the statistics)."""
    from pydantic import ValidationError

    from services.core.alerting import RuleSpec
    from services.core.storage.alerts import AlertRuleStore
    from services.core.validation import describe

    try:
        spec = RuleSpec(brand=brand, **fields)
    except ValidationError as e:
        raise click.ClickException(describe(e)) from e
    settings = CommonSettings(**_overrides(data_dir))
    _, brands_store = _open_stores(settings)
    engine = make_engine(settings.resolved_database_url())
    if preview:
        try:
            brands_store.get(spec.brand)
        except NotFoundError as e:
            raise click.ClickException(f"brand: {e}") from e
        end = int(SystemClock().now().timestamp())
        _echo_backtest(engine, spec.brand, spec.params(), end - preview_days * 86_400, end)
        click.echo("preview only: run again without --preview to add the rule")
        return
    store = AlertRuleStore(engine, SystemClock())
    try:
        rule = store.create(spec.brand, spec.params(), enabled=spec.enabled)
    except NotFoundError as e:
        raise click.ClickException(f"brand: {e}") from e
    click.echo(f"rule {rule.id}: {spec.kind.value} for {spec.brand!r}")


@alert_rules.command("list")
@data_dir_option
def alert_rules_list(data_dir: Path | None) -> None:
    """One rule a line: id, brand, kind, window, sensitivity, min count, state."""
    from services.core.storage.alerts import AlertRuleStore

    settings = CommonSettings(**_overrides(data_dir))
    _open_stores(settings)
    store = AlertRuleStore(make_engine(settings.resolved_database_url()), SystemClock())
    now = SystemClock().now()
    for r in store.list():
        p = r.params
        state = "enabled" if r.enabled else "disabled"
        if r.snoozed_until is not None and r.snoozed_until > now:
            state += f", snoozed until {r.snoozed_until.isoformat()}"
        click.echo(
            f"{r.id}\t{r.brand}\t{p.kind.value}\t{p.window_s // 60}m\t"
            f"p<{p.sensitivity:g}\tmin {p.min_count}\t{state}"
        )


@alert_rules.command("delete")
@click.argument("rule_id", type=int)
@data_dir_option
def alert_rules_delete(rule_id: int, data_dir: Path | None) -> None:
    """Delete a rule (the alerts it raised are kept)."""
    from services.core.storage.alerts import AlertRuleStore

    settings = CommonSettings(**_overrides(data_dir))
    _open_stores(settings)
    store = AlertRuleStore(make_engine(settings.resolved_database_url()), SystemClock())
    try:
        store.delete(rule_id)
    except NotFoundError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"deleted rule {rule_id}")


_SNOOZE_FOR = re.compile(r"(\d{1,6})([mhd])")


@alert_rules.command("snooze")
@click.argument("rule_id", type=int)
@click.option(
    "--until",
    required=True,
    help="An RFC 3339 time (UTC if it has no offset), or a duration from now: 90m, 8h, 3d. "
    "At most 90 days ahead.",
)
@data_dir_option
def alert_rules_snooze(rule_id: int, until: str, data_dir: Path | None) -> None:
    """Silence a rule until a time: the windows that end before it are never alerted."""
    from services.core.alerting import snooze_problem
    from services.core.storage.alerts import AlertRuleStore

    now = SystemClock().now()
    if (m := _SNOOZE_FOR.fullmatch(until.strip())) is not None:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        when = now + timedelta(**{unit: int(m.group(1))})
    else:
        parsed = _cli_time("--until", until)
        assert parsed is not None
        when = parsed
    if (problem := snooze_problem(when, now)) is not None:
        raise click.BadParameter(problem, param_hint="--until")
    settings = CommonSettings(**_overrides(data_dir))
    _open_stores(settings)
    store = AlertRuleStore(make_engine(settings.resolved_database_url()), SystemClock())
    try:
        rule = store.snooze(rule_id, when)
    except NotFoundError as e:
        raise click.ClickException(str(e)) from e
    assert rule.snoozed_until is not None
    click.echo(f"rule {rule_id} snoozed until {rule.snoozed_until.isoformat()}")


@alert_rules.command("unsnooze")
@click.argument("rule_id", type=int)
@data_dir_option
def alert_rules_unsnooze(rule_id: int, data_dir: Path | None) -> None:
    """End a rule's snooze now."""
    from services.core.storage.alerts import AlertRuleStore

    settings = CommonSettings(**_overrides(data_dir))
    _open_stores(settings)
    store = AlertRuleStore(make_engine(settings.resolved_database_url()), SystemClock())
    try:
        store.snooze(rule_id, None)
    except NotFoundError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"rule {rule_id} is no longer snoozed")


def _cli_time(name: str, text: str | None) -> datetime | None:
    """An RFC 3339 time or a date (UTC midnight); a time without offset is UTC."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as e:
        raise click.BadParameter(
            f"{text!r} is not a date or an RFC 3339 time", param_hint=name
        ) from e
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _echo_backtest(
    engine: Engine, brand: str, params: RuleParams, start: int, end: int, *, as_json: bool = False
) -> None:
    from services.alerts.backtest import BacktestRangeError, backtest_lines

    try:
        lines = backtest_lines(engine, brand, params, start, end)
    except BacktestRangeError as e:
        raise click.BadParameter(e.message, param_hint=f"--{e.field}") from e
    for line in lines:
        if as_json:
            click.echo(orjson.dumps(line).decode())
        elif line["type"] == "window":
            click.echo(
                f"{line['window']['start']}\tobserved {line['observed']:g}\t"
                f"expected {line['expected']:.3g}\tp={line['p_value']:.2g}"
            )
        else:
            click.echo(
                f"{line['windows_evaluated']} windows judged from {line['from']} to {line['to']}: "
                f"{line['alerts']} alerts ({line['alerts_per_week']:.2f} a week), "
                f"{line['held_by_cooldown']} more held back by the cooldown"
            )


@alerts.command("backtest")
@click.argument("rule_id", type=int)
@click.option(
    "--from",
    "from_",
    default=None,
    help="Start (RFC 3339 or a date) [default: 28 days before --to].",
)
@click.option("--to", default=None, help="End (RFC 3339 or a date) [default: now].")
@click.option("--json", "as_json", is_flag=True, help="NDJSON lines, as the API streams them.")
@data_dir_option
def alerts_backtest(
    rule_id: int, from_: str | None, to: str | None, as_json: bool, data_dir: Path | None
) -> None:
    """The alerts RULE_ID would have raised over a stored period: the live evaluator's
    test on every window, the cooldown applied (see docs/alerts.md)."""
    from services.core.storage.alerts import AlertRuleStore

    settings = CommonSettings(**_overrides(data_dir))
    _open_stores(settings)
    engine = make_engine(settings.resolved_database_url())
    try:
        rule = AlertRuleStore(engine, SystemClock()).get(rule_id)
    except NotFoundError as e:
        raise click.ClickException(str(e)) from e
    end = _cli_time("--to", to) or SystemClock().now()
    start = _cli_time("--from", from_) or end - timedelta(days=28)
    _echo_backtest(
        engine,
        rule.brand,
        rule.params,
        int(start.timestamp()),
        int(end.timestamp()),
        as_json=as_json,
    )


# --- calibrate (the spot-check queue's labels → routing thresholds) -------------------


@main.command()
@click.option(
    "--max-share",
    type=click.FloatRange(0, 1),
    default=0.4,
    show_default=True,
    help="Route at most this share of mentions to the transformer.",
)
@click.option(
    "--min-labels",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Refuse to calibrate on fewer labelled mentions.",
)
@click.option(
    "--apply",
    "apply_",
    is_flag=True,
    help="Write the proposal to <data-dir>/calibration.json, which the scorer reads at start.",
)
@data_dir_option
def calibrate(max_share: float, min_labels: int, apply_: bool, data_dir: Path | None) -> None:
    """Propose routing thresholds and spot-check lifts from the analysts' labels (with
    --apply: set them)."""
    from services.core.storage.review import labelled_items
    from services.scorer.calibration import (
        CalibrationError,
        apply_calibration,
        calibration_path,
        labelled_rows,
        propose,
        write_calibration,
    )
    from services.scorer.routing import routing_thresholds
    from services.scorer.sampling import neyman_lifts
    from services.scorer.transformer import ModelLoadError, load_transformer

    _setup_logging("WARNING")
    try:
        settings = apply_calibration(ScorerSettings(**_overrides(data_dir)))
    except CalibrationError as e:
        raise click.ClickException(str(e)) from e
    engine = make_engine(settings.resolved_database_url())
    try:
        migrate(engine)
        model = load_transformer(
            settings.transformer_model,
            threads=settings.transformer_threads,
            max_tokens=settings.transformer_max_tokens,
        )
        thresholds = routing_thresholds(settings)
        rows = labelled_rows(engine, settings, model, thresholds)
        proposal = propose(rows, thresholds, max_share=max_share, min_labels=min_labels)
        with engine.connect() as conn:
            allocation = neyman_lifts(labelled_items(conn), settings.spot_check_lifts)
    except (ModelLoadError, CalibrationError) as e:
        raise click.ClickException(str(e)) from e
    finally:
        engine.dispose()

    def line(name: str, p: Any) -> str:
        lo, hi = p.accuracy.ci95
        return (
            f"{name:<9} route_min_trust={p.min_trust:.2f}  accuracy {p.accuracy.value:.3f} "
            f"(95% CI {lo:.3f}-{hi:.3f})  transformer share {p.transformer_share:.1%}"
        )

    click.echo(f"{proposal.labels} labelled mentions (weighted by their sampling probability)")
    click.echo(line("current", proposal.current))
    click.echo(line("proposed", proposal.proposed))
    if proposal.proposed.min_trust != proposal.current.min_trust and (
        proposal.current.accuracy.value >= proposal.proposed.accuracy.ci95[0]
    ):
        click.echo(
            "note: the gain is within the 95% interval of these labels; label more on "
            "/review before relying on it"
        )
    lifts, strata = allocation
    click.echo("spot checks (Neyman: more labels where the automated label says least):")
    for st in strata:
        click.echo(
            f"  automated {st.label:<8} wrong {st.error_rate:6.1%} of {st.labels} labels, "
            f"spread {st.spread:.2f}, {st.stream_share:6.1%} of the stream "
            f"-> rate x{lifts[f'label:{st.label}']:g}"
        )
    path = calibration_path(settings)
    if not apply_:
        click.echo(f"not applied: run again with --apply to write {path}")
        return
    write_calibration(path, proposal, SystemClock().now(), allocation)
    click.echo(f"written to {path}: the scorer uses it from its next start")


# --- migrate ---------------------------------------------------------------------------


@main.command("migrate")
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Seconds to wait for the database to answer first (the prestart step of "
    "distributed mode, where it may start after the service).",
)
@data_dir_option
def migrate_cmd(wait_s: float, data_dir: Path | None) -> None:
    """Create or upgrade the database schema."""
    from services.runtime.database import wait_for_database

    settings = CommonSettings(**_overrides(data_dir))
    _setup_logging("WARNING")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    try:
        if wait_s:
            wait_for_database(engine, wait_s)
        migrate(engine)
    except TimeoutError as e:
        raise click.ClickException(str(e)) from e
    finally:
        engine.dispose()
    click.echo("database is at the newest schema")


# --- distributed mode: one process per service ----------------------------------------


@main.command()
@click.option(
    "--replay",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Also replay this JSON Lines file of mentions (once, at start).",
)
@click.option("--rate", type=float, default=None, help="Replay rate, mentions per second.")
@click.option("--demo/--no-demo", default=None, help="Run the demo source [env SENTIMON_DEMO].")
def ingest(replay: Path | None, rate: float | None, demo: bool | None) -> None:
    """Distributed mode: sources and the HTTP push endpoint, producing to Kafka."""
    from services.ingest.main import run_ingest
    from services.ingest.settings import IngestProcessSettings
    from services.runtime.process import PortInUseError

    if rate is not None and rate <= 0:
        raise click.BadParameter("must be positive", param_hint="--rate")
    settings = IngestProcessSettings(**_overrides(None, demo=demo))
    _setup_logging(settings.log_level)
    try:
        asyncio.run(run_ingest(settings, replay=replay, replay_rate=rate))
    except PortInUseError as e:
        raise click.ClickException(f"{e} (set SENTIMON_INGEST_PORT)") from e


@main.command()
def scorer() -> None:
    """Distributed mode: a scorer process (one member of the consumer group)."""
    from services.runtime.process import PortInUseError
    from services.scorer.main import ScorerHalted, run_scorer
    from services.scorer.settings import ScorerProcessSettings

    settings = ScorerProcessSettings()
    _setup_logging(settings.log_level)
    try:
        asyncio.run(run_scorer(settings))
    except PortInUseError as e:
        raise click.ClickException(f"{e} (set SENTIMON_SCORER_PORT)") from e
    except ScorerHalted as e:
        raise click.ClickException(str(e)) from e


@main.command()
def api() -> None:
    """Distributed mode: the API and pages, reading the shared database."""
    from services.alerts.runtime import attach_alerts
    from services.alerts.settings import AlertSettings
    from services.api.main import run_api
    from services.runtime.process import PortInUseError

    settings = ApiSettings()
    _setup_logging(settings.log_level)
    try:
        # Spike alerts: each API process evaluates and delivers; the unique key per rule
        # and window and the outbox's claim leases keep that to one alert, one send.
        alerts = AlertSettings()
        asyncio.run(run_api(settings, companions=[lambda state: attach_alerts(state, alerts)]))
    except PortInUseError as e:
        raise click.ClickException(f"{e} (set SENTIMON_PORT)") from e


# --- the hybrid scorer's model (issue 4) -------------------------------------------------
# Its own module: training imports torch (the [train] extra) only when it runs.
from services.scorer.training.cli import model  # noqa: E402

main.add_command(model)


if __name__ == "__main__":
    main()

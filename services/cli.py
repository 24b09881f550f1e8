"""The ``sentimon`` command line."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click
import orjson

from services.api.settings import ApiSettings
from services.core.auth import Role
from services.core.brandfile import BrandFileError, load_brands_file
from services.core.brands import BrandDefinition, BrandError, BrandMatcher
from services.core.clock import SystemClock
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
@data_dir_option
def run(
    host: str | None,
    port: int | None,
    demo: bool | None,
    brands_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Run Sentimon embedded: ingest, scorer and API in one process."""
    from services.embedded import PortInUseError, run_embedded

    api = ApiSettings(**_overrides(data_dir, host=host, port=port))
    ingest = IngestSettings(**_overrides(data_dir, demo=demo))
    scorer = ScorerSettings(**_overrides(data_dir))
    _setup_logging(api.log_level)
    try:
        entries = load_brands_file(brands_file) if brands_file else []
    except BrandFileError as e:
        raise click.ClickException(str(e)) from e
    try:
        asyncio.run(run_embedded(api=api, ingest=ingest, scorer=scorer, brand_entries=entries))
    except PortInUseError as e:
        raise click.ClickException(f"{e} (choose another with --port)") from e


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
    "--max-chars", type=int, default=2000, show_default=True, help="Length cap before scoring."
)
def score(file: BinaryIO, brands_file: Path | None, max_chars: int) -> None:
    """Score JSON Lines objects (with at least "text") or plain lines from FILE or stdin.

    Writes each object with "brands" and "sentiment" added, one per line, to stdout.
    Lines that cannot be scored are reported on stderr (with their line number) and
    make the exit status 1; the others are still written.
    """
    from services.scorer.lexicon import VaderScorer
    from services.scorer.offline import score_line

    try:
        entries = load_brands_file(brands_file) if brands_file else []
        matcher = BrandMatcher.compile([BrandDefinition(e.name, e.query) for e in entries])
    except (BrandFileError, BrandError) as e:
        raise click.ClickException(str(e)) from e
    lexicon = VaderScorer()
    failed = 0
    out = sys.stdout.buffer
    for n, raw in enumerate(file, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            failed += 1
            click.echo(f"line {n}: not valid UTF-8", err=True)
            continue
        if not line.strip():
            continue
        result = score_line(line, matcher=matcher, lexicon=lexicon, max_chars=max_chars)
        if isinstance(result, str):
            failed += 1
            click.echo(f"line {n}: {result}", err=True)
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
        click.echo(f"{b.name}\t{b.query}{comp}")


@brands.command("add")
@click.argument("name")
@click.argument("query")
@click.option("--competitor", "competitors", multiple=True, help="A competitor's brand name.")
@data_dir_option
def brands_add(name: str, query: str, competitors: tuple[str, ...], data_dir: Path | None) -> None:
    """Track a brand, or change the query of one tracked already."""
    _, store = _open_stores(CommonSettings(**_overrides(data_dir)))
    try:
        store.upsert(name, query, competitors)
    except BrandError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"tracking {name.strip()!r}")


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
        store.upsert(entry.name, entry.query, entry.competitors)
    click.echo(f"loaded {len(entries)} brands from {file}")


# --- migrate ---------------------------------------------------------------------------


@main.command("migrate")
@data_dir_option
def migrate_cmd(data_dir: Path | None) -> None:
    """Create or upgrade the database schema."""
    settings = CommonSettings(**_overrides(data_dir))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(make_engine(settings.resolved_database_url()))
    click.echo("database is at the newest schema")


if __name__ == "__main__":
    main()

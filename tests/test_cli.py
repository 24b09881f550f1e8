"""The ``sentimon`` command line, each test with its own data directory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select

from services.cli import main
from services.core.auth import Role
from services.core.clock import SystemClock
from services.core.storage.brands import BrandStore
from services.core.storage.db import check_schema_current, make_engine, sqlite_url
from services.core.storage.keys import KeyStore
from services.core.storage.reads import MentionFilter, list_mentions
from services.core.storage.tables import api_keys
from tests.fixtures.mentions import mention_doc

BRANDS_YAML = """\
- name: Acme
  query: '("acme" OR @acmehq OR #acme) AND NOT "acme anvils"'
  competitors: [Globex]
- name: Globex
  query: '"globex" OR @globexcorp'
"""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Settings read SENTIMON_* from the environment: none of the caller's may leak in,
    # and a forgotten --data-dir must not land in the working tree.
    for name in ("SENTIMON_DATA_DIR", "SENTIMON_DATABASE_URL", "SENTIMON_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def sentimon(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def failed(result: Result) -> Result:
    """A refusal: exit status 1 and a message, never a traceback."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


@contextmanager
def database(data_dir: Path) -> Iterator[Engine]:
    engine = make_engine(sqlite_url(data_dir))
    try:
        yield engine
    finally:
        engine.dispose()


# --- keys --------------------------------------------------------------------------------


def test_a_created_key_authenticates_and_only_its_hash_is_stored(data_dir: Path) -> None:
    result = ok(sentimon("keys", "create", "--role", "viewer", "--data-dir", data_dir))
    key = result.stdout.strip()
    assert key.startswith("smk_")
    assert "created viewer key" in result.stderr
    assert key not in result.stderr

    with database(data_dir) as engine:
        found = KeyStore(engine, SystemClock()).authenticate(key)
        assert found is not None
        assert (found.role, found.name) == (Role.VIEWER, "viewer")
        assert KeyStore(engine, SystemClock()).authenticate(key + "x") is None
        with engine.connect() as conn:
            rows = conn.execute(select(api_keys)).mappings().all()
    assert len(rows) == 1
    assert rows[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(dict(rows[0]))
    # Nor anywhere on disk (the database, its WAL, anything else in the data directory).
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_keys_list_shows_prefixes_never_keys(data_dir: Path) -> None:
    admin = ok(sentimon("keys", "create", "--role", "admin", "--data-dir", data_dir))
    ingest = ok(
        sentimon("keys", "create", "--role", "ingest", "--name", "crawler", "--data-dir", data_dir)
    )
    listing = ok(sentimon("keys", "list", "--data-dir", data_dir))
    lines = listing.stdout.splitlines()
    assert len(lines) == 2
    for created, role, name, line in (
        (admin, "admin", "admin", lines[0]),
        (ingest, "ingest", "crawler", lines[1]),
    ):
        key = created.stdout.strip()
        prefix = key.split("_")[1]
        fields = line.split("\t")
        assert (fields[0], fields[1], fields[2], fields[-1]) == (prefix, role, "active", name)
        assert key not in listing.output
        assert key.split("_", 2)[2] not in listing.output  # not even the secret part


def test_keys_revoke(data_dir: Path) -> None:
    key = ok(sentimon("keys", "create", "--role", "analyst", "--data-dir", data_dir)).stdout
    key = key.strip()
    prefix = key.split("_")[1]

    assert ok(sentimon("keys", "revoke", prefix, "--data-dir", data_dir)).stdout.strip() == (
        f"revoked {prefix}"
    )
    with database(data_dir) as engine:
        assert KeyStore(engine, SystemClock()).authenticate(key) is None
    listing = ok(sentimon("keys", "list", "--data-dir", data_dir)).stdout
    assert listing.split("\t")[2] == "revoked"

    again = failed(sentimon("keys", "revoke", prefix, "--data-dir", data_dir))
    assert f"no active key with prefix {prefix!r}" in again.stderr
    unknown = failed(sentimon("keys", "revoke", "deadbeef", "--data-dir", data_dir))
    assert "no active key with prefix 'deadbeef'" in unknown.stderr


def test_keys_create_refuses_an_unknown_role(data_dir: Path) -> None:
    result = sentimon("keys", "create", "--role", "root", "--data-dir", data_dir)
    assert result.exit_code == 2
    assert "'root' is not one of" in result.stderr


# --- brands ------------------------------------------------------------------------------


def brand_lines(data_dir: Path) -> list[str]:
    return ok(sentimon("brands", "list", "--data-dir", data_dir)).stdout.splitlines()


def test_brands_add_list_remove(data_dir: Path) -> None:
    competitors = ("--competitor", "Globex", "--competitor", "Initech")
    query = '"acme" OR @acmehq'
    added = ok(sentimon("brands", "add", " Acme ", query, *competitors, "--data-dir", data_dir))
    assert added.stdout.strip() == "tracking 'Acme'"
    ok(sentimon("brands", "add", "Globex", "globex", "--data-dir", data_dir))
    assert brand_lines(data_dir) == [
        'Acme\t"acme" OR @acmehq\tcompetitors: Globex, Initech',
        "Globex\tglobex",
    ]

    # Adding a tracked brand again changes its query.
    ok(sentimon("brands", "add", "Globex", "@globexcorp", "--data-dir", data_dir))
    assert brand_lines(data_dir)[1] == "Globex\t@globexcorp"

    removed = ok(sentimon("brands", "remove", "Acme", "--data-dir", data_dir))
    assert removed.stdout.strip() == "no longer tracking 'Acme'"
    assert brand_lines(data_dir) == ["Globex\t@globexcorp"]
    missing = failed(sentimon("brands", "remove", "Acme", "--data-dir", data_dir))
    assert "brand 'Acme' does not exist" in missing.stderr


@pytest.mark.parametrize(
    ("query", "position", "reason"),
    [
        ('acme OR "globex', 8, "unterminated quote"),
        ("(acme OR globex", 0, "unclosed '('"),
        ("acme OR", 5, "'OR' has no right operand"),
        ("NOT acme", 0, "at least one positive term"),
    ],
)
def test_brands_add_refuses_a_bad_query_saying_where(
    data_dir: Path, query: str, position: int, reason: str
) -> None:
    result = failed(sentimon("brands", "add", "Acme", query, "--data-dir", data_dir))
    assert reason in result.stderr
    assert f"at position {position}" in result.stderr
    assert brand_lines(data_dir) == []


def test_a_bad_query_message_names_the_query_once(data_dir: Path, tmp_path: Path) -> None:
    added = failed(sentimon("brands", "add", "Acme", "acme OR", "--data-dir", data_dir))
    brands_file = tmp_path / "brands.yaml"
    brands_file.write_text("- name: Acme\n  query: 'acme OR'\n")
    loaded = failed(sentimon("brands", "load", brands_file, "--data-dir", data_dir))
    for result in (added, loaded):
        assert "query: query:" not in result.stderr


def test_brands_add_refuses_a_blank_name(data_dir: Path) -> None:
    result = sentimon("brands", "add", "  ", "acme", "--data-dir", data_dir)
    assert result.exit_code != 0
    assert brand_lines(data_dir) == []


def test_brands_load(data_dir: Path, tmp_path: Path) -> None:
    brands_file = tmp_path / "brands.yaml"
    brands_file.write_text(BRANDS_YAML)
    result = ok(sentimon("brands", "load", brands_file, "--data-dir", data_dir))
    assert result.stdout.strip() == f"loaded 2 brands from {brands_file}"
    assert brand_lines(data_dir) == [
        'Acme\t("acme" OR @acmehq OR #acme) AND NOT "acme anvils"\tcompetitors: Globex',
        'Globex\t"globex" OR @globexcorp',
    ]
    # Loading again updates what is tracked, and adds nothing twice.
    brands_file.write_text("brands:\n  - name: Globex\n    query: '@globexcorp'\n")
    ok(sentimon("brands", "load", brands_file, "--data-dir", data_dir))
    assert brand_lines(data_dir)[1:] == ["Globex\t@globexcorp"]
    assert len(brand_lines(data_dir)) == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("- name: [unclosed\n", ["not valid YAML", "line 1"], id="bad-yaml"),
        pytest.param("- query: acme\n", ["[0].name: field required"], id="missing-name"),
        pytest.param(
            "- name: Acme\n  query: acme\n  colour: red\n",
            ["[0].colour: unknown field"],
            id="unknown-key",
        ),
        pytest.param("name: Acme\nquery: acme\n", ["valid list"], id="not-a-list"),
        pytest.param(
            BRANDS_YAML + "- name: Initech\n  query: 'initech OR'\n",
            ["[2] 'Initech'", "'OR' has no right operand at position 8"],
            id="bad-query",
        ),
    ],
)
def test_brands_load_refuses_an_invalid_file_naming_the_entry(
    data_dir: Path, tmp_path: Path, content: str, expected: list[str]
) -> None:
    brands_file = tmp_path / "brands.yaml"
    brands_file.write_text(content)
    result = failed(sentimon("brands", "load", brands_file, "--data-dir", data_dir))
    assert str(brands_file) in result.stderr
    for text in expected:
        assert text in result.stderr
    # All or nothing: the valid entries before a bad one are not loaded either.
    assert brand_lines(data_dir) == []


def test_brands_owned_handles_through_add_owned_and_load(data_dir: Path, tmp_path: Path) -> None:
    own = ("--owned-handle", "@AcmeSupport", "--owned-handle", "x:AcmeCare")
    ok(sentimon("brands", "add", "Acme", "acme", *own, "--data-dir", data_dir))
    assert brand_lines(data_dir) == ["Acme\tacme\towned: AcmeSupport, x:AcmeCare"]
    # Changing the query keeps them; `brands owned` sets them, and with none clears them.
    ok(sentimon("brands", "add", "Acme", "acme OR @acmehq", "--data-dir", data_dir))
    assert brand_lines(data_dir) == ["Acme\tacme OR @acmehq\towned: AcmeSupport, x:AcmeCare"]
    set_ = ok(sentimon("brands", "owned", "Acme", "acmehelp", "--data-dir", data_dir))
    assert set_.stdout.strip() == "Acme: owned accounts acmehelp"
    cleared = ok(sentimon("brands", "owned", "Acme", "--data-dir", data_dir))
    assert cleared.stdout.strip() == "Acme: owned accounts none"

    brands_file = tmp_path / "brands.yaml"
    brands_file.write_text(
        "- name: Acme\n  query: acme\n"
        "  owned_handles: ['@AcmeSupport', mastodon:acme@acme.social]\n"
    )
    ok(sentimon("brands", "load", brands_file, "--data-dir", data_dir))
    assert brand_lines(data_dir) == ["Acme\tacme\towned: AcmeSupport, mastodon:acme@acme.social"]
    with database(data_dir) as engine:
        stored = BrandStore(engine, SystemClock()).get("Acme")
    assert stored.owned_handles == ("AcmeSupport", "mastodon:acme@acme.social")


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("Acme Support", "contains a space"),
        ("https://x.com/acme", "is a URL"),
        ("a" * 101, "at most 100 characters"),
        ("acme\x1b", "control character U+001B"),
    ],
)
def test_brands_refuse_owned_handles_that_are_not_handles_naming_the_entry(
    data_dir: Path, tmp_path: Path, bad: str, why: str
) -> None:
    handles = ["acmehelp", "acmecare", "x:acme", bad]
    added = failed(
        sentimon(
            "brands",
            "add",
            "Acme",
            "acme",
            *(a for h in handles for a in ("--owned-handle", h)),
            "--data-dir",
            data_dir,
        )
    )
    assert "owned_handles[3]: " in added.stderr
    assert why in added.stderr
    assert brand_lines(data_dir) == []

    ok(sentimon("brands", "add", "Acme", "acme", "--data-dir", data_dir))
    owned = failed(sentimon("brands", "owned", "Acme", *handles, "--data-dir", data_dir))
    assert "owned_handles[3]: " in owned.stderr
    assert why in owned.stderr

    brands_file = tmp_path / "brands.yaml"
    listed = "".join(f"\n    - {orjson.dumps(h).decode()}" for h in handles)
    brands_file.write_text(f"- name: Globex\n  query: globex\n  owned_handles:{listed}\n")
    loaded = failed(sentimon("brands", "load", brands_file, "--data-dir", data_dir))
    assert "[0].owned_handles[3]: " in loaded.stderr
    assert why in loaded.stderr
    assert brand_lines(data_dir) == ["Acme\tacme"]


def test_brands_refuse_more_than_50_owned_handles(data_dir: Path) -> None:
    ok(sentimon("brands", "add", "Acme", "acme", "--data-dir", data_dir))
    result = failed(
        sentimon("brands", "owned", "Acme", *(f"a{i}" for i in range(51)), "--data-dir", data_dir)
    )
    assert "owned_handles: " in result.stderr
    assert "at most 50" in result.stderr


# --- score -------------------------------------------------------------------------------


def scored(result: Result) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def brands_file(tmp_path: Path) -> Path:
    path = tmp_path / "brands.yaml"
    path.write_text(BRANDS_YAML + "- name: United\n  query: '@united'\n")
    return path


def test_score_jsonl_keeps_fields_and_adds_brands_and_sentiment(
    brands_file: Path, tmp_path: Path
) -> None:
    lines = [
        {"id": "1", "text": "Acme is wonderful, I love it", "lang": "en", "extra": {"a": [1]}},
        {"id": "2", "text": "Acme and Globex are awful and broken"},
        {"id": "3", "text": "Globex released version 2"},
        {"id": "4", "text": "Lunch was wonderful"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    # Lexicon-only: this is about the fields kept and added, not about which texts the
    # hybrid scorer (the default) would route to the transformer.
    out = scored(ok(sentimon("score", source, "--brands", brands_file, "--lexicon-only")))
    added = ("brands", "sentiment", "sentiment_by_brand")
    assert [{k: v for k, v in o.items() if k not in added} for o in out] == lines
    # Only the line naming two brands is scored toward each of them (issue 16).
    assert ["sentiment_by_brand" in o for o in out] == [False, True, False, False]
    assert {b: v["label"] for b, v in out[1]["sentiment_by_brand"].items()} == {
        "Acme": "negative",
        "Globex": "negative",
    }
    assert [(o["brands"], o["sentiment"]["label"]) for o in out] == [
        (["Acme"], "positive"),
        (["Acme", "Globex"], "negative"),
        (["Globex"], "neutral"),
        ([], "positive"),
    ]
    for o in out:
        assert set(o["sentiment"]) == {
            "label",
            "score",
            "confidence",
            "method",
            "lexicon_compound",
            "model_version",
            "fallback",
        }
        # VADER's verdict, by choice (nothing routed, so nothing fell back).
        assert o["sentiment"]["method"] == "lexicon"
        assert o["sentiment"]["model_version"].startswith("vaderSentiment-")
        assert o["sentiment"]["score"] == o["sentiment"]["lexicon_compound"]
        assert o["sentiment"]["fallback"] is False


def test_score_plain_lines_from_stdin() -> None:
    result = ok(
        sentimon("score", stdin="Acme is awful and broken\n\n   \nAcme is wonderful, I love it\n")
    )
    out = scored(result)
    assert [(o["text"], o["brands"], o["sentiment"]["label"]) for o in out] == [
        ("Acme is awful and broken", [], "negative"),
        ("Acme is wonderful, I love it", [], "positive"),
    ]


def test_score_reports_bad_lines_and_writes_the_others(brands_file: Path) -> None:
    lines = [
        '{"id": "ok-1", "text": "Acme is wonderful"}',
        "",
        '{"id": "broken", ',
        '{"id": "no-text"}',
        '{"id": "empty", "text": "  "}',
        '{"id": "ok-2", "text": "Globex is awful"}',
    ]
    result = sentimon("score", "--brands", brands_file, stdin="\n".join(lines) + "\n")
    assert result.exit_code == 1
    assert [o["id"] for o in scored(result)] == ["ok-1", "ok-2"]
    errors = result.stderr.splitlines()
    assert len(errors) == 3
    assert errors[0].startswith("line 3: invalid JSON")
    assert errors[1] == "line 4: text: a non-empty string is required"
    assert errors[2] == "line 5: text: a non-empty string is required"


def test_score_reports_a_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"acme ok\n\xff not utf-8\nacme fine\n")
    result = sentimon("score", path)
    assert result.exit_code == 1
    assert result.stderr.startswith("line 2:")
    assert [o["text"] for o in scored(result)] == ["acme ok", "acme fine"]


def test_score_masks_brand_names_before_scoring(brands_file: Path) -> None:
    text = "@united\nI love @united\n"
    unmasked = scored(ok(sentimon("score", stdin=text)))
    masked = scored(ok(sentimon("score", "--brands", brands_file, stdin=text)))
    # Unmasked, VADER reads "@united" as the positive word "united"...
    assert unmasked[0]["sentiment"]["label"] == "positive"
    # ...masked, the brand's name alone carries no sentiment,
    assert masked[0]["brands"] == ["United"]
    assert masked[0]["sentiment"]["label"] == "neutral"
    assert masked[0]["sentiment"]["score"] == 0.0
    # and what is said about it still does, minus the name's own valence.
    assert masked[1]["sentiment"]["label"] == "positive"
    assert 0 < masked[1]["sentiment"]["score"] < unmasked[1]["sentiment"]["score"]


def test_score_refuses_a_bad_brands_file(tmp_path: Path) -> None:
    path = tmp_path / "brands.yaml"
    path.write_text("- name: Acme\n  query: '(acme'\n")
    result = failed(sentimon("score", "--brands", path, stdin="acme\n"))
    assert "[0] 'Acme'" in result.stderr
    assert "position 0" in result.stderr
    assert result.stdout == ""


def test_score_refuses_a_brand_defined_twice(tmp_path: Path) -> None:
    path = tmp_path / "brands.yaml"
    path.write_text("- name: Acme\n  query: acme\n- name: Acme\n  query: '@acmehq'\n")
    result = failed(sentimon("score", "--brands", path, stdin="acme\n"))
    assert "'Acme'" in result.stderr


# --- replay and migrate ------------------------------------------------------------------


def write_jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def stored(data_dir: Path, brand: str | None = None) -> dict[str, tuple[list[str], str]]:
    with database(data_dir) as engine, engine.connect() as conn:
        page = list_mentions(conn, MentionFilter(brand=brand), limit=500, cursor=None)
    return {m.id: (m.brands, m.sentiment.label) for m in page.items}


def test_replay_stores_the_mentions_and_reports_invalid_lines(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ok(sentimon("brands", "add", "Acme", "acme OR @acmehq", "--data-dir", data_dir))
    lines = [
        orjson.dumps(mention_doc(id="r1", text="Acme is wonderful, I love it")),
        orjson.dumps(mention_doc(id="r2", text="@acmehq is awful and broken")),
        b'{"id": "broken", ',
        orjson.dumps(mention_doc(id="naive", created_at="2026-03-02T10:15:00")),
        orjson.dumps(mention_doc(id="r3", text="Lunch was wonderful")),  # no tracked brand
        orjson.dumps(mention_doc(id="r1", text="Acme is wonderful, I love it")),  # repeat
    ]
    path = write_jsonl(tmp_path / "mentions.jsonl", lines)
    result = sentimon("replay", path, "--no-progress", "--data-dir", data_dir)
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stdout.strip() == (f"replayed {path}: 6 read, 3 accepted, 2 invalid, 1 duplicate")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("line 3 rejected: body: invalid JSON" in w for w in warnings), warnings
    assert any("line 4 rejected: created_at: naive datetime" in w for w in warnings), warnings
    assert stored(data_dir) == {"r1": (["Acme"], "positive"), "r2": (["Acme"], "negative")}


def test_replay_of_a_valid_file_with_a_brands_file_exits_0_and_stores_once(
    data_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "brands.yaml").write_text(BRANDS_YAML)
    path = write_jsonl(
        tmp_path / "mentions.jsonl",
        [
            orjson.dumps(mention_doc(id="g1", text="Globex released version 2")),
            orjson.dumps(mention_doc(id="b1", text="Acme and Globex are both wonderful")),
        ],
    )
    args = ("replay", path, "--brands", tmp_path / "brands.yaml", "--no-progress")
    first = ok(sentimon(*args, "--data-dir", data_dir))
    assert "2 read, 2 accepted, 0 invalid, 0 duplicate" in first.stdout
    assert stored(data_dir) == {
        "g1": (["Globex"], "neutral"),
        "b1": (["Acme", "Globex"], "positive"),
    }
    assert set(stored(data_dir, brand="Acme")) == {"b1"}
    with database(data_dir) as engine:
        assert [b.name for b in BrandStore(engine, SystemClock()).list()] == ["Acme", "Globex"]

    # A second run (a new process: its dedupe memory is empty) stores nothing twice.
    ok(sentimon(*args, "--data-dir", data_dir))
    assert len(stored(data_dir)) == 2


def test_replay_refuses_a_bad_rate(data_dir: Path, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [orjson.dumps(mention_doc())])
    result = sentimon("replay", path, "--rate", "0", "--data-dir", data_dir)
    assert result.exit_code == 2
    assert "--rate" in result.stderr
    assert not data_dir.exists()


def test_migrate_is_idempotent_and_keeps_data(data_dir: Path) -> None:
    first = ok(sentimon("migrate", "--data-dir", data_dir))
    assert first.stdout.strip() == "database is at the newest schema"
    ok(sentimon("brands", "add", "Acme", "acme", "--data-dir", data_dir))
    ok(sentimon("migrate", "--data-dir", data_dir))
    with database(data_dir) as engine:
        check_schema_current(engine)
    assert brand_lines(data_dir) == ["Acme\tacme"]

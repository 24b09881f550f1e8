"""X (Twitter) through the API v2 filtered stream, with one rule per tracked brand.

Each brand's query is translated into an X rule (tagged ``<prefix><brand>``); at every
connection the rules on the account are made to match the brands (rules with our prefix
that no brand needs are deleted; others are left alone). The stream is newline-delimited
JSON with blank keep-alive lines; a retweet is read as the retweeted post. After a
disconnection, what was posted since the checkpoint's last id is fetched with the recent
search, then the stream resumes. Reconnects follow X's documented backoff: linear from
250 ms to 16 s for network errors, exponential from 5 s to 320 s for HTTP errors, and
exponential from one minute for 429s.
"""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import httpx
import orjson

from services.core.brands import BrandDefinition, parse_query
from services.core.brands.query import And, Not, Or, QueryNode, Term
from services.core.models import Author, Engagement, Mention
from services.core.sources import XConfig
from services.ingest.sources.base import Batch, Checkpoint, Connector, Runtime
from services.ingest.sources.errors import AuthError, GarbageError, PlatformError, RateLimited
from services.ingest.sources.http import check_status, lines, make_client, network_error
from services.ingest.sources.protocol import InvalidRecord, SourceItem
from services.ingest.sources.text import (
    MAX_DESCRIPTION_CHARS,
    MAX_NAME_CHARS,
    bounded_id,
    clean_text,
    count,
    lang_tag,
    mention_text,
    obj,
    parse_time,
    short,
)

STREAM_READ_TIMEOUT_S = 30.0  # X sends a keep-alive every 20 s
MAX_RECOVERY_PAGES = 10
FIELDS = {
    "tweet.fields": "created_at,lang,public_metrics,conversation_id,referenced_tweets,"
    "author_id,note_tweet",
    "expansions": "author_id,referenced_tweets.id,referenced_tweets.id.author_id",
    "user.fields": "username,name,public_metrics,description,verified",
}
log = logging.getLogger(__name__)
_NO_LANGUAGE = frozenset({"und", "qme", "qht", "qam", "qct", "zxx", "art"})


# ------------------------------------------------------------------ rules (pure)


def _push_not(node: QueryNode, negate: bool) -> QueryNode:
    """The query with every NOT moved onto a term (De Morgan): X does not allow a
    negated group."""
    if isinstance(node, Term):
        return Not(node) if negate else node
    if isinstance(node, Not):
        return _push_not(node.child, not negate)
    children = tuple(_push_not(c, negate) for c in node.children)
    if isinstance(node, And):
        return Or(children) if negate else And(children)
    return And(children) if negate else Or(children)


def _term_rule(term: Term) -> str:
    if term.kind in ("handle", "hashtag"):
        return term.text
    if term.kind == "word" and term.text.isalnum():
        return term.text
    return '"' + term.text.replace('"', "") + '"'


def _rule(node: QueryNode, parent: type | None) -> str:
    if isinstance(node, Term):
        return _term_rule(node)
    if isinstance(node, Not):
        return "-" + _rule(node.child, Not)
    if isinstance(node, And):
        text = " ".join(_rule(c, And) for c in node.children)
        return f"({text})" if parent is Or or parent is Not else text
    text = " OR ".join(_rule(c, Or) for c in node.children)
    return f"({text})" if parent is not None else text


def rule_from_query(query: str) -> str:
    """An X filtered-stream rule equivalent to a brand query: ``AND`` is a space, ``OR``
    stays, ``NOT`` becomes ``-`` on each term, phrases stay quoted, ``@handles`` and
    ``#hashtags`` as written. Raises ``BrandQueryError`` for an invalid query."""
    return _rule(_push_not(parse_query(query), False), None)


def desired_rules(
    brands: Sequence[BrandDefinition], prefix: str, max_chars: int
) -> tuple[dict[str, str], list[str]]:
    """``{tag: rule}`` for the brands, and the brands left out (rule too long)."""
    rules: dict[str, str] = {}
    skipped: list[str] = []
    for brand in brands:
        rule = rule_from_query(brand.query)
        if len(rule) > max_chars:
            skipped.append(brand.name)
            continue
        rules[f"{prefix}{brand.name}"] = rule
    return rules, skipped


def rule_changes(
    current: Sequence[Mapping[str, Any]], desired: Mapping[str, str], prefix: str
) -> tuple[list[str], list[dict[str, str]]]:
    """``(ids to delete, rules to add)`` so that our rules (tags with ``prefix``) are
    exactly ``desired``; rules of anyone else on the account are not touched."""
    keep: set[tuple[str, str]] = set()
    delete: list[str] = []
    for rule in current:
        tag, value, rid = rule.get("tag"), rule.get("value"), rule.get("id")
        if not isinstance(tag, str) or not tag.startswith(prefix) or not isinstance(rid, str):
            continue
        if desired.get(tag) == value:
            keep.add((tag, str(value)))
        else:
            delete.append(rid)
    add = [{"value": v, "tag": t} for t, v in desired.items() if (t, v) not in keep]
    return delete, add


# --------------------------------------------------------------- mapping (pure)


def mention_from_tweet(
    tweet: object, includes: Mapping[str, Any] | None = None
) -> SourceItem | None:
    """A v2 ``Tweet`` object (with the response's ``includes``) as a mention. A retweet is
    the retweeted post when it is included (else ``None``); long posts use
    ``note_tweet.text``; HTML entities in X text are decoded."""
    includes = includes or {}
    tweets = {t.get("id"): t for t in includes.get("tweets") or [] if isinstance(t, Mapping)}
    users = {u.get("id"): u for u in includes.get("users") or [] if isinstance(u, Mapping)}
    if not isinstance(tweet, Mapping):
        return InvalidRecord("x tweet", "data: expected a tweet object")
    refs = {
        r.get("type"): r.get("id")
        for r in tweet.get("referenced_tweets") or []
        if isinstance(r, Mapping)
    }
    if "retweeted" in refs:
        original = tweets.get(refs["retweeted"])
        if not isinstance(original, Mapping):
            return None
        tweet = original
        refs = {
            r.get("type"): r.get("id")
            for r in tweet.get("referenced_tweets") or []
            if isinstance(r, Mapping)
        }
    tid = tweet.get("id")
    position = f"x tweet {str(tid)[:32]}"
    if not isinstance(tid, str) or not tid:
        return InvalidRecord(position, "data.id: missing")
    note = tweet.get("note_tweet")
    raw = note.get("text") if isinstance(note, Mapping) else None
    raw = raw if isinstance(raw, str) and raw else tweet.get("text")
    if not isinstance(raw, str):
        return InvalidRecord(position, "data.text: missing")
    text = mention_text(clean_text(html.unescape(raw)))
    if not text:
        return None
    created = parse_time(tweet.get("created_at"))
    if created is None:
        return InvalidRecord(position, "data.created_at: missing or invalid")
    author_id = tweet.get("author_id")
    if not isinstance(author_id, str) or not author_id:
        return InvalidRecord(position, "data.author_id: missing")
    user = obj(users.get(author_id))
    username = user.get("username") if isinstance(user.get("username"), str) else None
    user_metrics = obj(user.get("public_metrics"))
    metrics = obj(tweet.get("public_metrics"))
    lang = tweet.get("lang")
    reply_to = refs.get("replied_to")
    conversation = tweet.get("conversation_id")
    return Mention(
        id=bounded_id(tid),
        source="x",
        url=f"https://x.com/{username or 'i'}/status/{tid}" if tid.isdigit() else None,
        text=text,
        lang=None if lang in _NO_LANGUAGE else lang_tag(lang),
        created_at=created,
        author=Author(
            id=bounded_id(author_id),
            handle=bounded_id(username or author_id),
            name=short(str(user.get("name") or ""), MAX_NAME_CHARS),
            followers=count(user_metrics.get("followers_count")),
            description=short(str(user.get("description") or ""), MAX_DESCRIPTION_CHARS),
            verified=user.get("verified") is True,
        ),
        in_reply_to_id=bounded_id(reply_to) if isinstance(reply_to, str) and reply_to else None,
        conversation_id=bounded_id(conversation)
        if isinstance(conversation, str) and conversation
        else None,
        metrics=Engagement(
            likes=count(metrics.get("like_count")),
            reposts=count(metrics.get("retweet_count")) + count(metrics.get("quote_count")),
            replies=count(metrics.get("reply_count")),
        ),
    )


def newer(a: str, b: str | None) -> bool:
    """Whether snowflake id ``a`` is after ``b``."""
    return b is None or (len(a), a) > (len(b), b)


def x_backoff_s(error: BaseException, failures: int) -> float:
    """X's documented reconnect schedule for the ``failures``-th failure in a row."""
    n = max(failures, 1)
    if isinstance(error, RateLimited):
        return max(error.retry_after_s, min(60.0 * 2.0 ** min(n - 1, 10), 3600.0))
    if isinstance(error, PlatformError) and error.status == 0:
        return min(0.25 * n, 16.0)
    return min(5.0 * 2.0 ** min(n - 1, 10), 320.0)


# --------------------------------------------------------------------- the shell


class XConnector(Connector):
    """Checkpoint: ``{"last_id": <newest post id delivered>}``."""

    kind = "x"

    def __init__(
        self,
        config: XConfig,
        runtime: Runtime,
        *,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        super().__init__(config.name, runtime)
        self.config = config
        # The bearer token goes to X's own hosts only, checked per request.
        self._client_factory = client_factory or (
            lambda: make_client(
                runtime.urls,
                credential_hosts=runtime.urls.credential_hosts_for("x"),
                read_timeout_s=STREAM_READ_TIMEOUT_S,
            )
        )
        self._api = config.api_base.rstrip("/")
        self._synced: tuple[BrandDefinition, ...] | None = None

    def backoff_s(self, error: BaseException, failures: int) -> float:
        return x_backoff_s(error, failures)

    def _headers(self) -> dict[str, str]:
        token = self.runtime.credentials.x_bearer_token
        if token is None:
            raise AuthError("x: no bearer token (SENTIMON_X_BEARER_TOKEN)")
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    async def batches(self, checkpoint: Checkpoint | None) -> AsyncGenerator[Batch, None]:
        stored = (checkpoint or {}).get("last_id")
        last_id = stored if isinstance(stored, str) and stored.isdigit() else None
        headers = self._headers()
        async with self._client_factory() as client:
            rules = await self._sync_rules(client, headers)
            if last_id is not None and self.config.recover_with_search:
                newest: str | None = last_id
                async for batch in self._recover(client, headers, rules, last_id):
                    newest = _last(_batch(list(batch.items), newest), newest)
                    yield batch
                # Every rule is caught up: only now may the checkpoint move past them all.
                if newest != last_id:
                    last_id = newest
                    yield Batch([], {"last_id": last_id})
            what = "x stream"
            try:
                async with client.stream(
                    "GET", f"{self._api}/2/tweets/search/stream", params=FIELDS, headers=headers
                ) as response:
                    check_status(response, self.runtime.clock.now(), what)
                    async for line in lines(response):
                        if not line.strip():
                            if self._brands_changed():
                                await self._sync_rules(client, headers)
                            continue  # keep-alive
                        batch = self._stream_batch(line, last_id)
                        last_id = _last(batch, last_id)
                        yield batch
            except httpx.HTTPError as e:
                raise network_error(what, e) from e
        raise PlatformError(f"{what}: the server closed the stream", 0)

    def _stream_batch(self, line: bytes, last_id: str | None) -> Batch:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise GarbageError("x stream: a line that is not JSON") from e
        if not isinstance(doc, Mapping):
            raise GarbageError("x stream: a line that is not a JSON object")
        if "data" not in doc and doc.get("errors"):
            first = doc["errors"][0] if isinstance(doc["errors"], list) else {}
            title = first.get("title") if isinstance(first, Mapping) else None
            raise PlatformError(f"x stream: {title or 'error'}", 503)
        item = mention_from_tweet(doc.get("data"), doc.get("includes"))
        return _batch([] if item is None else [item], last_id)

    async def _recover(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        rules: Mapping[str, str],
        since_id: str,
    ) -> AsyncIterator[Batch]:
        what = "x recent search"
        for rule in rules.values():
            params: dict[str, str] = {**FIELDS, "query": rule, "since_id": since_id}
            params["max_results"] = "100"
            for _ in range(MAX_RECOVERY_PAGES):
                response = await self._call(
                    client, "GET", "/2/tweets/search/recent", what, headers, params=params
                )
                doc = _json_object(response, what)
                includes = doc.get("includes") if isinstance(doc.get("includes"), Mapping) else {}
                items: list[SourceItem] = []
                for tweet in reversed(doc.get("data") or []):
                    item = mention_from_tweet(tweet, includes)
                    if item is not None:
                        items.append(item)
                # Several rules' pages each end at their own newest id: the checkpoint
                # moves only once every rule is caught up (below), not per page.
                yield Batch(items, None)
                token = (doc.get("meta") or {}).get("next_token")
                if not isinstance(token, str):
                    break
                params["next_token"] = token

    async def _call(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        what: str,
        headers: dict[str, str],
        **kwargs: Any,
    ) -> httpx.Response:
        try:
            response = await client.request(method, self._api + path, headers=headers, **kwargs)
        except httpx.HTTPError as e:
            raise network_error(what, e) from e
        check_status(response, self.runtime.clock.now(), what)
        return response

    def _brands_changed(self) -> bool:
        return tuple(self.runtime.brands.definitions()) != self._synced

    async def _sync_rules(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> dict[str, str]:
        definitions = tuple(self.runtime.brands.definitions())
        prefix = self.config.rule_tag_prefix
        desired, skipped = desired_rules(definitions, prefix, self.config.max_rule_chars)
        for name in skipped:
            log.error(
                "x: brand %r has no rule: as an X rule its query is longer than %d characters",
                name,
                self.config.max_rule_chars,
            )
        what = "x rules"
        path = "/2/tweets/search/stream/rules"
        current = _json_object(await self._call(client, "GET", path, what, headers), what)
        data = current.get("data")
        rules = [r for r in data if isinstance(r, Mapping)] if isinstance(data, list) else []
        delete, add = rule_changes(rules, desired, prefix)
        if delete:
            await self._call(client, "POST", path, what, headers, json={"delete": {"ids": delete}})
        if add:
            answer = _json_object(
                await self._call(client, "POST", path, what, headers, json={"add": add}), what
            )
            for error in answer.get("errors") or []:
                if isinstance(error, Mapping):
                    log.error("x: rule %r refused: %s", error.get("value"), error.get("title"))
        self._synced = definitions
        return desired


def _batch(items: list[SourceItem], last_id: str | None) -> Batch:
    newest = last_id
    for item in items:
        if isinstance(item, Mention) and item.id.isdigit() and newer(item.id, newest):
            newest = item.id
    return Batch(items, None if newest is None else {"last_id": newest})


def _last(batch: Batch, last_id: str | None) -> str | None:
    if batch.checkpoint is not None:
        value = batch.checkpoint.get("last_id")
        return value if isinstance(value, str) else last_id
    return last_id


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError as e:
        raise GarbageError(f"{what}: not JSON") from e
    if not isinstance(doc, dict):
        raise GarbageError(f"{what}: expected a JSON object")
    return doc

"""Build the executive report of one brand against its competitive set, for one period.

``build_executive_report`` reads through ``queries`` (rollups for every total, bounded
queries for lists) and does its arithmetic with ``figures``. Alerts and measured accuracy
belong to other parts of Sentimon and are passed in as functions (``AlertsSource``,
``AccuracySource``); without them those sections are ``None``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from services.core import stories, terms
from services.core.adjusted import Adjusted
from services.core.authors import AuthorRole, influence, influence_ceiling
from services.core.reports import figures, queries
from services.core.reports.languages import language_mix
from services.core.reports.model import (
    Accuracy,
    Alert,
    BrandShare,
    Conversation,
    DecisionMakers,
    Denominator,
    ExecutiveReport,
    MentionItem,
    NetSentiment,
    Period,
    RoleFigures,
    SentimentOverTime,
    SentimentPoint,
    ShareOfVoice,
    Spike,
    Stories,
    StoryItem,
    Term,
    Terms,
    Voice,
    Volume,
    corrected,
)
from services.core.reports.responsiveness import build_responsiveness
from services.core.storage.report_rows import RoleCounts
from services.core.storage.review import adjustment_labels
from services.core.storage.stories import story_posts_spread

AlertsSource = Callable[[Connection, str, datetime, datetime], list[Alert] | None]
"""``(conn, brand, start, end) → alerts raised in [start, end)``, ``None`` if none are kept."""
AccuracySource = Callable[[Connection, str, datetime, datetime], Accuracy | None]
"""``(conn, brand, start, end) → measured accuracy``, or ``None`` without spot checks."""

TOP_MENTIONS = 5
TOP_VOICES = 10
# Most followed rows whose authors are ranked first, tried in turn: a store dense enough
# for its most followed authors to fill the first cut alone needs a lower one.
VOICE_CANDIDATE_ROWS = (2_000, 8_000, 32_000)
UNANSWERED = 10
DEFAULT_MIN_REACH = 1_000
TERM_SLICES = 10
TERMS_PER_SLICE = 50
TOP_TERMS = 10
STORY_SLICES = 10
STORIES_PER_SLICE = 200  # 2,000 mentions clustered at most: about 1 s on one core
TOP_STORIES = 5


@dataclass(frozen=True, slots=True)
class ReportRequest:
    brand: str
    competitors: tuple[str, ...]
    start: int  # epoch seconds, minute-aligned, inclusive
    end: int  # exclusive
    compare_previous: bool = True
    min_reach: int = DEFAULT_MIN_REACH
    owned_handles: tuple[str, ...] = ()  # the brand's own accounts, as listed now

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys((self.brand, *self.competitors)))

    @property
    def previous(self) -> tuple[int, int]:
        return self.start - (self.end - self.start), self.start


def iso(epoch: int | datetime) -> str:
    t = epoch if isinstance(epoch, datetime) else datetime.fromtimestamp(epoch, UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _net(c: RoleCounts) -> float | None:
    return figures.net_sentiment(c.positive, c.negative)


def _sum_roles(roles: dict[tuple[str, str], RoleCounts], brand: str) -> RoleCounts:
    out = RoleCounts()
    for role in AuthorRole:
        if (c := roles.get((brand, role.value))) is not None:
            out.add(c)
    return out


def _shares(
    names: Sequence[str],
    subject: str,
    now: dict[str, RoleCounts],
    before: dict[str, int] | None,
    polar: dict[str, tuple[int, int]],
    adjusted: Callable[[str], Adjusted | str],
) -> tuple[list[BrandShare], dict[str, int]]:
    total_m = sum(now[n].mentions for n in names)
    total_r = sum(now[n].reach for n in names)
    total_e = sum(now[n].engagement for n in names)
    total_before = sum(before.values()) if before is not None else 0
    rows = [
        BrandShare(
            **corrected(adjusted(n)),
            brand=n,
            subject=n == subject,
            mentions=now[n].mentions,
            reach=now[n].reach,
            engagement=now[n].engagement,
            share_of_mentions=figures.ratio(now[n].mentions, total_m),
            share_of_reach=figures.ratio(now[n].reach, total_r),
            share_of_engagement=figures.ratio(now[n].engagement, total_e),
            previous_share_of_mentions=(
                None if before is None else figures.ratio(before[n], total_before)
            ),
            net_sentiment=figures.net_sentiment(*polar[n]),
        )
        for n in names
    ]
    return rows, {"mentions": total_m, "reach": total_r, "engagement": total_e}


def _mention_item(row: queries.MentionRow) -> MentionItem:
    doc = row.parsed()
    author = doc.get("author") if isinstance(doc.get("author"), dict) else {}
    assert isinstance(author, dict)
    text = doc.get("text")
    url = doc.get("url")
    name = author.get("name")
    return MentionItem(
        id=row.mention_id,
        source=row.source,
        url=url if isinstance(url, str) else None,
        text=(text if isinstance(text, str) else "")[: queries.MAX_TEXT_CHARS],
        created_at=iso(row.created_at),
        author_handle=row.author_handle,
        author_name=name if isinstance(name, str) else None,
        author_role=row.author_role,
        followers=row.followers,
        engagement=row.engagement,
        label=row.label,
        score=row.score,
    )


def _ranked(rows: Sequence[Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The ``TOP_VOICES`` best of ``rows`` (``VoiceRow`` order) and of their decision
    makers, as ``(-influence, author id, row)``: no full sort of every author, and no
    object for each."""
    keyed = [(-influence(r[2], r[3], r[4], r[5]), r[0], r) for r in rows]
    dm = AuthorRole.DECISION_MAKER.value
    top = heapq.nsmallest(TOP_VOICES, keyed, key=lambda k: k[:2])
    top_dm = heapq.nsmallest(TOP_VOICES, (k for k in keyed if k[2][1] == dm), key=lambda k: k[:2])
    return top, top_dm


def _top_voice_rows(
    conn: Connection, req: ReportRequest
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Both rankings over every author of the period, computed if it can be from the
    authors of its most followed rows only (the first ``VOICE_CANDIDATE_ROWS`` count for
    which it can be): that is exact when the bound on everyone
    else (fewer followers than those rows, at most the period's largest engagement and
    replies per mention) stays below the tenth influence of both lists — one of them
    could not tie, let alone outrank it. Otherwise every author is grouped."""
    for rows in VOICE_CANDIDATE_ROWS:
        found = queries.voice_candidates(conn, req.brand, req.start, req.end, rows)
        if found is None:
            continue  # too few rows, or none strictly above the cut
        top, top_dm = _ranked(found.rows)
        if len(top) == TOP_VOICES and len(top_dm) == TOP_VOICES:
            ceiling = influence_ceiling(found.followers, found.engagement, found.replies)
            # Rounding to 0.1 moves a value by at most 0.05: 0.1 keeps it strictly below.
            if ceiling + 0.1 < min(-top[-1][0], -top_dm[-1][0]):
                return top, top_dm
    return _ranked(queries.voice_tuples(conn, req.brand, req.start, req.end))


def _voices(conn: Connection, req: ReportRequest) -> tuple[list[Voice], list[Voice]]:
    ranked, ranked_dm = _top_voice_rows(conn, req)
    top = [queries.VoiceRow(*r) for *_, r in ranked]
    top_dm = [queries.VoiceRow(*r) for *_, r in ranked_dm]
    names = queries.docs(conn, [v.last_pk for v in {*top, *top_dm}])

    def voice(v: queries.VoiceRow) -> Voice:
        author = names.get(v.last_pk, {}).get("author")
        author = author if isinstance(author, dict) else {}
        name, handle = author.get("name"), author.get("handle")
        return Voice(
            author_id=v.author_id,
            handle=handle if isinstance(handle, str) else v.author_id,
            name=name if isinstance(name, str) else None,
            role=v.role,
            followers=v.followers,
            mentions=v.mentions,
            engagement=v.engagement,
            replies=v.replies,
            positive=v.positive,
            negative=v.negative,
            net_sentiment=figures.net_sentiment(v.positive, v.negative),
            influence=influence(v.followers, v.mentions, v.engagement, v.replies),
        )

    return [voice(v) for v in top], [voice(v) for v in top_dm]


def _terms(conn: Connection, req: ReportRequest) -> Terms:
    p_start, p_end = req.previous
    return period_terms(
        terms.document_texts(
            queries.text_sample(conn, req.brand, req.start, req.end, TERM_SLICES, TERMS_PER_SLICE)
        ),
        terms.document_texts(
            queries.text_sample(conn, req.brand, p_start, p_end, TERM_SLICES, TERMS_PER_SLICE)
        ),
        req.names,
    )


def _stories(conn: Connection, req: ReportRequest) -> Stories:
    posts = story_posts_spread(conn, req.brand, req.start, req.end, STORY_SLICES, STORIES_PER_SLICE)
    return period_stories(posts)


def period_stories(posts: Sequence[stories.Post]) -> Stories:
    """The report's stories section from the period's sampled mentions: the largest
    clusters of repeated texts, each once with its combined reach. Pure."""
    found = distinct_text_stories(posts)[:TOP_STORIES]
    return Stories(
        stories=[StoryItem(**s.as_dict(len(posts))) for s in found],
        sample=len(posts),
        min_size=stories.MIN_STORY_SIZE,
    )


def distinct_text_stories(
    posts: Sequence[stories.Post], min_size: int = stories.MIN_STORY_SIZE
) -> list[stories.Story]:
    """``stories.stories(posts)``, the same stories in the same order, clustering each
    distinct text once: copies of one text (retweets, syndication) have the same shingles,
    so they are near-duplicates of each other (Jaccard 1) and of the same others. A text
    too short to have shingles is a cluster of one however often it repeats. Pure."""
    first_of: dict[str, int] = {}
    copies: list[list[int]] = []
    for i, p in enumerate(posts):
        k = first_of.setdefault(p.text, len(copies))
        if k == len(copies):
            copies.append([i])
        else:
            copies[k].append(i)
    groups: list[list[int]] = []
    reduced = [stories.reduce_text(posts[c[0]].text) for c in copies]
    for cluster in stories.reduced_clusters(reduced):
        indices = sorted(i for k in cluster for i in copies[k])
        if len(cluster) == 1 and len(indices) > 1 and len(reduced[cluster[0]]) < stories.MIN_CHARS:
            groups.extend([i] for i in indices)
        else:
            groups.append(indices)
    groups.sort(key=lambda g: (-len(g), g[0]))
    out = []
    for group in groups:
        if len(group) < min_size:
            continue
        members = tuple(posts[i] for i in group)
        first = min(members, key=lambda p: (p.created_at, p.source, p.id))
        out.append(stories.Story(members, first, sum(p.followers for p in members)))
    out.sort(key=lambda s: (-s.size, -s.combined_reach, s.first.created_at, s.first.id))
    return out


def period_terms(
    texts: Sequence[str], previous_texts: Sequence[str], names: Sequence[str]
) -> Terms:
    """The report's terms section from the two periods' sampled texts; the words of
    ``names`` (the brand and its competitors) are never terms. Pure."""
    exclude = terms.brand_words(names)
    words, tags = terms.count_terms(texts, exclude)
    p_words, p_tags = terms.count_terms(previous_texts, exclude)

    def out(changes: list[terms.RisingTerm]) -> list[Term]:
        return [
            Term(
                term=c.term,
                count=c.count,
                previous_count=c.previous_count,
                rate=c.rate,
                previous_rate=c.previous_rate,
            )
            for c in changes
        ]

    n, pn = len(texts), len(previous_texts)
    return Terms(
        rising_terms=out(terms.rising(words, n, p_words, pn, TOP_TERMS)),
        rising_themes=out(terms.rising(tags, n, p_tags, pn, TOP_TERMS)),
        top_terms=terms.top_terms(words, TOP_TERMS),
        sample={"current": n, "previous": pn},
    )


def build_executive_report(
    conn: Connection,
    req: ReportRequest,
    *,
    now: datetime,
    alerts: AlertsSource | None = None,
    accuracy: AccuracySource | None = None,
) -> ExecutiveReport:
    """The report for ``req``. Reads only; every total is from the rollups."""
    names = req.names
    brand = req.brand
    p_start, p_end = req.previous
    interval = figures.series_interval(req.start, req.end)
    series = queries.brand_series(conn, brand, req.start, req.end, interval)
    roles = queries.role_totals(conn, names, req.start, req.end)
    roles_before = queries.role_totals(conn, names, p_start, p_end) if req.compare_previous else {}
    totals = {n: _sum_roles(roles, n) for n in names}
    before = {n: _sum_roles(roles_before, n) for n in names} if req.compare_previous else None

    me = totals[brand]
    # Corrected by the analysts' spot checks: each brand's, and its decision makers'.
    labels = adjustment_labels(conn, req.start, req.end)
    span = (req.start, req.end)
    sov_rows, sov_totals = _shares(
        names,
        brand,
        totals,
        None if before is None else {n: before[n].mentions for n in names},
        {n: (totals[n].positive, totals[n].negative) for n in names},
        lambda n: labels.figure(n, totals[n], span),
    )
    set_words = ", ".join(names)
    of_set = f"all mentions of {set_words} in the period (a mention naming two counts for each)"
    what = {
        "mentions": f"number of {of_set}",
        "reach": f"author followers summed over {of_set}",
        "engagement": f"likes + reposts + replies summed over {of_set}",
    }
    sov = ShareOfVoice(
        brands=sov_rows,
        denominators={
            k: Denominator(of=k, total=v, description=what[k]) for k, v in sov_totals.items()
        },
    )

    prev_net = None if before is None else _net(before[brand])
    net = NetSentiment(
        **corrected(labels.figure(brand, me, span)),
        value=_net(me),
        previous=prev_net,
        change=figures.difference(_net(me), prev_net),
        positive=me.positive,
        neutral=me.neutral,
        negative=me.negative,
        denominator=Denominator(
            of="positive + negative mentions",
            total=me.positive + me.negative,
            description=f"mentions of {brand} scored positive or negative (neutral ones "
            "are left out)",
        ),
    )

    points = []
    usable = []
    first = req.start - req.start % interval
    for s in range(first, req.end, interval):
        c = series.get(s, RoleCounts())
        partial = s < req.start or s + interval > req.end
        usable.append(not partial)
        points.append(
            SentimentPoint(
                start=iso(s),
                partial=partial,
                mentions=c.mentions,
                positive=c.positive,
                neutral=c.neutral,
                negative=c.negative,
                net_sentiment=_net(c),
            )
        )
    spikes = [
        Spike(start=points[i].start, mentions=points[i].mentions, baseline=median, ratio=r)
        for i, median, r in figures.spikes([p.mentions for p in points], usable)
    ]

    # Among decision makers: the same share of voice, on the decision makers' mentions.
    dm = AuthorRole.DECISION_MAKER.value
    dm_counts = {n: roles.get((n, dm), RoleCounts()) for n in names}
    dm_rows, dm_totals = _shares(
        names,
        brand,
        dm_counts,
        None,
        {n: (dm_counts[n].positive, dm_counts[n].negative) for n in names},
        lambda n: labels.figure(n, dm_counts[n], span, dm),
    )
    dm_me = dm_counts[brand]
    dm_before = roles_before.get((brand, dm))
    dm_net = figures.net_sentiment(dm_me.positive, dm_me.negative)
    dm_prev_net = (
        None if dm_before is None else figures.net_sentiment(dm_before.positive, dm_before.negative)
    )
    me = _sum_roles(roles, brand)
    decision_makers = DecisionMakers(
        **corrected(labels.figure(brand, dm_me, span, dm)),
        mentions=dm_me.mentions,
        share_of_brand_mentions=figures.ratio(dm_me.mentions, me.mentions),
        share_of_voice=dm_rows,
        net_sentiment=dm_net,
        previous_net_sentiment=dm_prev_net,
        change=figures.difference(dm_net, dm_prev_net),
        denominators={
            "share_of_voice": Denominator(
                of="mentions by decision makers",
                total=dm_totals["mentions"],
                description=f"mentions of {set_words} by decision makers in the period",
            ),
            "share_of_brand_mentions": Denominator(
                of="mentions",
                total=me.mentions,
                description=f"all mentions of {brand} in the period",
            ),
            "net_sentiment": Denominator(
                of="positive + negative mentions by decision makers",
                total=dm_me.positive + dm_me.negative,
                description=f"mentions of {brand} by decision makers scored positive or negative",
            ),
        },
    )
    role_rows = []
    for role in AuthorRole:
        rc = roles.get((brand, role.value), RoleCounts())
        role_rows.append(
            RoleFigures(
                role=role.value,
                mentions=rc.mentions,
                share_of_brand_mentions=figures.ratio(rc.mentions, me.mentions),
                net_sentiment=figures.net_sentiment(rc.positive, rc.negative),
                positive=rc.positive,
                negative=rc.negative,
            )
        )

    talk_before = _sum_roles(roles_before, brand)
    conversation = Conversation(
        mentions_in_conversation=me.conversation,
        share=figures.ratio(me.conversation, me.mentions),
        previous_share=(
            figures.ratio(talk_before.conversation, talk_before.mentions)
            if req.compare_previous
            else None
        ),
        denominator=Denominator(
            of="mentions",
            total=me.mentions,
            description=f"all mentions of {brand} in the period; in a conversation = a reply, "
            "part of a thread someone else started, or replied to by others",
        ),
        min_reach=req.min_reach,
        unanswered_negative=[
            _mention_item(r)
            for r in queries.unanswered_negative(
                conn, brand, req.start, req.end, req.min_reach, UNANSWERED
            )
        ],
    )

    top_voices, top_dm_voices = _voices(conn, req)
    by_reach = queries.top_by_reach_labels(
        conn, brand, req.start, req.end, ("positive", "negative"), TOP_MENTIONS
    )
    start_dt, end_dt = queries.ts(req.start), queries.ts(req.end)
    notes = [
        "Net sentiment = (positive − negative) ÷ (positive + negative); changes are "
        "against the previous period of the same length.",
        "Influence (0–100) = 100 × (0.5 × reach + 0.3 × engagement + 0.2 × conversation), "
        "each a capped logarithm: followers (1 at 100 M), engagement per mention (1 at "
        "100 k), replies per mention (1 at 1,000).",
        f"Terms and themes are counted in a sample of up to {TERM_SLICES * TERMS_PER_SLICE} "
        "mentions of each period, spread evenly over it.",
        f"Stories are looked for among up to {STORY_SLICES * STORIES_PER_SLICE:,} mentions "
        "spread over the period: texts that repeat one another (syndicated, retweeted, "
        "copied with another link or a word changed) are one story, counted once, with "
        "their authors' followers summed as its reach.",
        "Adjusted figures correct the automated sentiment with the analysts' spot checks: "
        "each is an estimate with a 95 % interval (the true value lies in it 19 times in "
        "20), from the labels named beside it; the raw figure is the scorer's own.",
    ]
    return ExecutiveReport(
        brand=brand,
        competitors=[n for n in names if n != brand],
        period=Period(from_=iso(req.start), to=iso(req.end)),
        previous_period=Period(from_=iso(p_start), to=iso(p_end)) if req.compare_previous else None,
        generated_at=iso(now),
        volume=Volume(
            mentions=me.mentions,
            previous=None if before is None else before[brand].mentions,
            change=None
            if before is None
            else figures.relative_change(me.mentions, before[brand].mentions),
        ),
        share_of_voice=sov,
        net_sentiment=net,
        sentiment_over_time=SentimentOverTime(interval_seconds=interval, series=points),
        spikes=spikes,
        alerts=None if alerts is None else alerts(conn, brand, start_dt, end_dt),
        top_positive=[_mention_item(r) for r in by_reach["positive"]],
        top_negative=[_mention_item(r) for r in by_reach["negative"]],
        top_voices=top_voices,
        top_decision_maker_voices=top_dm_voices,
        decision_makers=decision_makers,
        roles=role_rows,
        conversation=conversation,
        terms=_terms(conn, req),
        stories=_stories(conn, req),
        responsiveness=build_responsiveness(
            conn,
            brand,
            req.start,
            req.end,
            negative_mentions=me.negative,
            owned_handles=req.owned_handles,
        ),
        language_mix=language_mix(conn, brand, req.start, req.end),
        accuracy=None if accuracy is None else accuracy(conn, brand, start_dt, end_dt),
        notes=notes,
    )

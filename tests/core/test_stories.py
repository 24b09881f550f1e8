"""Stories: syndicated copies of one text are one story; texts on one topic in different
words are not."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from services.core import stories
from services.core.stories import Post

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

HEADLINE = "Acme confirms a data breach affecting two million customer accounts, passwords reset"
SYNDICATED = [
    HEADLINE,
    f"{HEADLINE} https://t.co/a1b2c3",
    f"RT @newsdesk: {HEADLINE} https://bit.ly/3xYz",
    f"{HEADLINE.replace('confirms', 'admits')} #breach",
    f"via @reuters {HEADLINE}",
    f"{HEADLINE} via @techcrunch",
    HEADLINE.upper() + " https://example.com/story?id=7",
    HEADLINE.replace("two million", "2 million") + " — @wire",
]
# The same incident, each in its own words: not one story.
SAME_TOPIC = [
    "Acme data breach? My account password was reset this morning, not happy at all",
    "Hearing Acme got hacked, millions of customer accounts exposed apparently",
    "So Acme leaked our data again. Switching providers this week, done with them",
    "Acme's breach notice landed in my inbox. Two million accounts, what a mess",
    "Anyone else locked out of Acme after the password reset? Their support is swamped",
]


def post(i: int, text: str, *, author: str = "", followers: int = 100, minutes: int = 0) -> Post:
    return Post(
        source="demo",
        id=f"m{i}",
        text=text,
        author=author or f"user{i}",
        followers=followers,
        created_at=T0 + timedelta(minutes=minutes),
    )


def test_syndicated_copies_are_one_cluster_and_own_words_stay_apart() -> None:
    texts = SYNDICATED + SAME_TOPIC
    groups = stories.clusters(texts)
    assert sorted(groups[0]) == list(range(len(SYNDICATED)))
    assert all(len(g) == 1 for g in groups[1:])
    assert len(groups) == 1 + len(SAME_TOPIC)


def test_pairs_equal_exact_pairs_on_a_mixed_sample() -> None:
    rng = random.Random(5)
    texts = SYNDICATED + SAME_TOPIC
    # More near-duplicates at assorted distances: a word dropped at random from copies.
    for k in range(30):
        words = HEADLINE.split()
        for _ in range(rng.randint(0, 5)):
            del words[rng.randrange(len(words))]
        texts.append(" ".join(words) + f" https://t.co/{k}")
    sets = [stories.shingles(t) for t in texts]
    assert stories.near_duplicate_pairs(sets) == stories.exact_pairs(sets)


@pytest.mark.parametrize("block_rows", [1, 3, 7, 1_000])
@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
@pytest.mark.parametrize(("prefix_matches", "verify_pairs"), [(1, 2), (3, 50_000), (8, 7)])
def test_pairs_equal_exact_pairs_across_blocks_and_thresholds(
    monkeypatch: pytest.MonkeyPatch,
    block_rows: int,
    threshold: float,
    prefix_matches: int,
    verify_pairs: int,
) -> None:
    # Random texts over a small alphabet of words overlap at every degree; empty and short
    # texts (no shingles) are mixed in; slices of the product must not lose a pair.
    rng = random.Random(block_rows * 31 + int(threshold * 10))
    words = ["acme", "outage", "again", "support", "great", "billing", "down", "today"]
    texts = [" ".join(rng.choices(words, k=rng.randint(3, 9))) for _ in range(60)]
    texts += ["", "ok", HEADLINE, HEADLINE + " via @x"]
    sets = [stories.shingles(t) for t in texts]
    monkeypatch.setattr(stories, "BLOCK_ROWS", block_rows)
    monkeypatch.setattr(stories, "PREFIX_MATCHES", prefix_matches)
    monkeypatch.setattr(stories, "VERIFY_PAIRS", verify_pairs)
    found = stories.near_duplicate_pairs(sets, threshold)
    assert found == stories.exact_pairs(sets, threshold)
    assert stories.text_pairs(texts, threshold) == found
    assert found  # the sample does hold near-duplicates at each threshold


def test_pairs_from_texts_equal_pairs_of_their_shingle_sets_in_any_script() -> None:
    # Shingles numbered on arrays must be the strings' own sets: accents, case folding
    # that lengthens a text (ß), emoji beyond the BMP, a lone surrogate, tabs and
    # newlines, texts too short to have shingles, and copies of each.
    rng = random.Random(7)
    pieces = [
        "Straße gesperrt wegen Störung",
        "STRASSE GESPERRT wegen Störung!",
        "Ошибка оплаты у Acme снова сегодня",
        "ошибка оплаты у acme снова",
        "アクメの障害がまた発生しています本当に困る",
        "outage again 🔥🔥 acme\tdown\nfor everyone",
        "lone \ud800 surrogate in a long enough text here",
        "acme is down",
        "",
        HEADLINE,
    ]
    texts = [" ".join(rng.sample(pieces, rng.randint(1, 3))) for _ in range(80)]
    sets = [stories.shingles(t) for t in texts]
    for threshold in (0.2, 0.5, 0.8):
        assert stories.text_pairs(texts, threshold) == stories.exact_pairs(sets, threshold)


def test_an_alphabet_too_large_to_number_shingles_falls_back_to_string_sets() -> None:
    # 7,000 distinct characters: 7,000**5 does not fit in 63 bits.
    chars = [chr(0x4E00 + k) for k in range(7_000)]
    texts = ["".join(chars[k : k + 60]) for k in range(0, 7_000, 50)]
    texts += [texts[0] + "x", texts[3][:-2]]
    sets = [stories.shingles(t) for t in texts]
    assert stories._shingle_entries([stories.reduce_text(t) for t in texts]) is None
    found = stories.text_pairs(texts)
    assert found == stories.exact_pairs(sets) and (0, len(texts) - 2) in found


def test_a_pair_exactly_at_the_threshold_is_joined() -> None:
    a = frozenset({"aaaaa", "bbbbb", "ccccc"})
    b = frozenset({"aaaaa", "bbbbb", "ddddd"})  # 2 shared of 4: Jaccard exactly 0.5
    c = frozenset({"aaaaa", "eeeee", "fffff"})  # 1 of 5 with a: 0.2
    assert stories.near_duplicate_pairs([a, b, c], 0.5) == {(0, 1)}
    # b and c share one of five too: every pair is exactly at 0.2 or above.
    assert stories.near_duplicate_pairs([a, b, c], 0.2) == {(0, 1), (0, 2), (1, 2)}
    assert stories.near_duplicate_pairs([a, b, c], 0.21) == {(0, 1)}


def test_no_shingles_no_pairs() -> None:
    assert stories.near_duplicate_pairs([]) == set()
    assert stories.near_duplicate_pairs([frozenset(), frozenset()]) == set()


def test_reduce_text_drops_what_copies_change() -> None:
    assert stories.reduce_text("RT @a_b: Big NEWS, today! https://x.y/z #Acme via @c") == (
        "big news today acme"
    )
    assert stories.shingles("acme is down") == frozenset()  # too short to be a story


def reference_reduce_text(text: str) -> str:
    """``reduce_text`` as first written: every regex over the whole text."""
    t = re.sub(r"https?://\S+|www\.\S+", " ", text[: stories.MAX_TEXT_CHARS], flags=re.I)
    t = re.sub(r"^\s*(?:rt|via)\b\s*:?", " ", t, flags=re.I)
    t = re.sub(r"(?<!\w)@\w+", " ", t)
    t = re.sub(r"\b(?:via|h/t|ht)\s*$", " ", t.rstrip(" :-—|"), flags=re.I)
    return " ".join(re.sub(r"[\W_]+", " ", t.casefold()).split())


def test_reduce_text_equals_every_regex_over_the_whole_text() -> None:
    rng = random.Random(3)
    chars = "aAhHtTpPsSwW:/.@_ -—|\t\nRrVvIiİıſ😀ßé09#\u3000\xa0"
    endings = ["via", "VIA", "vİa", "vıa", "h/t", "H/T", "ht", "hT", "xvia", "_via", "é via"]
    spaces = [" ", "\t", "\n", "\u3000", "\xa0", "", " :", " —|", "-", "|"]
    texts = SYNDICATED + SAME_TOPIC
    for _ in range(4_000):
        texts.append("".join(rng.choice(chars) for _ in range(rng.randint(0, 40))))
        texts.append(
            "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))
            + rng.choice(["", " ", "@", "x"])
            + rng.choice(endings)
            + "".join(rng.choices(spaces, k=rng.randint(0, 3)))
        )
        texts.append(
            rng.choice(["http://x.y ", "HTTPS://a", "wWw.b.c", "@bob ", "RT @x: ", "hTTp"]).join(
                rng.sample(SYNDICATED + SAME_TOPIC, 2)
            )
        )
    for t in texts:
        assert stories.reduce_text(t) == reference_reduce_text(t), t


def test_largest_story_names_the_first_post_and_the_combined_reach() -> None:
    posts = [
        post(i, t, followers=1_000 * (i + 1), minutes=10 - i) for i, t in enumerate(SYNDICATED)
    ]
    posts += [post(100 + i, t, minutes=i) for i, t in enumerate(SAME_TOPIC)]
    story = stories.largest_story(posts)
    assert story is not None
    assert story.size == len(SYNDICATED)
    earliest = min(posts[: len(SYNDICATED)], key=lambda p: p.created_at)
    assert story.first == earliest
    assert story.combined_reach == sum(p.followers for p in posts[: len(SYNDICATED)])
    doc = story.as_dict(len(posts))
    assert doc["first_mention_id"] == earliest.id
    assert doc["first_author"] == earliest.author
    assert doc["share_of_window"] == pytest.approx(len(SYNDICATED) / len(posts), abs=1e-4)
    assert doc["sample_text"] == earliest.text


def test_no_story_below_the_minimum_size() -> None:
    posts = [post(i, t) for i, t in enumerate(SYNDICATED[:2] + SAME_TOPIC)]
    assert stories.largest_story(posts, min_size=3) is None
    assert stories.largest_story([]) is None


def test_drivers_name_the_loudest_author_and_source() -> None:
    posts = [post(i, f"text {i}", author="spammer") for i in range(6)]
    posts += [post(10 + i, f"other {i}", followers=5_000) for i in range(4)]
    posts[-1] = Post("rss", "r1", "x", "feed", 10, T0)
    d = stories.drivers(posts)
    assert d["top_authors"][0] == {"handle": "spammer", "mentions": 6, "followers": 100}
    assert d["top_author_share"] == pytest.approx(0.6)
    assert d["top_source"] == "demo"
    assert d["top_source_share"] == pytest.approx(0.9)
    assert d["authors"] == 5
    assert stories.drivers([])["top_author_share"] is None

"""An alert in one plain sentence: what rose, against what, how rare that is, the story it
repeats, who drives it and the terms that rose. Pure.

The alerts service writes the sentence into the alert's document when it raises it
(``summary``); every reader (the API, the alert page, chat and e-mail messages, reports)
shows that stored sentence. ``summarise`` works on the document alone, so an alert stored
before summaries existed can be summarised when it is read.

How rare: the p-value is the chance of a count at least this high in one window of a
normal week; a week holds ``7 days ÷ window`` windows, so a normal week shows
``p × windows`` such windows on average, and at least one with probability
``1 − exp(−p × windows)``. That is said as "about 1 in 10 million in a normal week" (or
"about 3 times in a normal week" when it is not rare at all).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

WEEK_S = 7 * 86_400
RISING_IN_SUMMARY = 3
DRIVER_SHARE = 0.5  # one author with at least this share of the mentions is named


def windows_per_week(window_s: int) -> float:
    return WEEK_S / window_s


def per_week(p_value: float, window_s: int) -> float:
    """How many windows as extreme a normal week shows on average."""
    return max(0.0, p_value) * windows_per_week(window_s)


def round_figure(x: float) -> str:
    """``x`` to one significant figure, in words past a million: 40, 3,000, 10 million."""
    if x < 10:
        return f"{max(1, round(x)):,}"
    digits = math.floor(math.log10(x))
    lead = math.floor(x / 10**digits + 0.5)
    if lead == 10:
        lead, digits = 1, digits + 1
    for power, word in ((12, "trillion"), (9, "billion"), (6, "million")):
        if digits >= power:
            return f"{lead * 10 ** (digits - power):,} {word}"
    return f"{lead * 10**digits:,}"


def rarity(p_value: float, window_s: int) -> str:
    """The p-value in words, as the chance of such a window in a normal week."""
    e = per_week(p_value, window_s)
    if e >= 1.5:
        return f"about {round(e):,} times in a normal week"
    if e >= 0.5:
        return "about once in a normal week"
    chance = -math.expm1(-e)  # at least one such window in the week
    if chance <= 1e-12:
        return "less than 1 in a trillion in a normal week"
    return f"about 1 in {round_figure(1 / chance)} in a normal week"


def window_words(window_s: int) -> str:
    if window_s == 86_400:
        return "a day"
    if window_s % 3_600 == 0:
        hours = window_s // 3_600
        return "an hour" if hours == 1 else f"{hours} hours"
    minutes = window_s // 60
    return "a minute" if minutes == 1 else f"{minutes} minutes"


def reach_words(reach: int) -> str:
    """Followers, short: 999, 1.2 k, 35 k, 1.2 M, 3 B."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if reach >= size:
            v = reach / size
            text = f"{v:.0f}" if v >= 10 else f"{v:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    return f"{reach:,}"


def _expected_count(x: float) -> str:
    if x >= 10:
        return f"about {round(x):,}"
    if x >= 0.05:
        return "about " + f"{x:.1f}".removesuffix(".0")
    return "almost none"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _handle(h: object) -> str:
    return f"@{h}" if isinstance(h, str) and h else "an unnamed author"


def summarise(doc: Mapping[str, Any]) -> str:
    """The sentence for an alert document (``schemas/alert.v1.json``'s ``data``); its
    ``story``, ``drivers`` and ``top_terms`` are used when present."""
    brand = doc["brand"]
    kind = doc["kind"]
    window_s = int(doc["rule"]["window_minutes"]) * 60
    count, total = int(doc["count"]), int(doc["total"])
    rare = rarity(float(doc["p_value"]), window_s)
    window = window_words(window_s)
    if kind == "negative_share":
        head = (
            f"The negative share of {brand}'s mentions rose to {_pct(doc['observed'])} "
            f"({count:,} of {total:,}) in {window} against about {_pct(doc['expected'])} "
            f"expected ({rare})"
        )
    else:
        what = "Negative mentions" if kind == "negative_spike" else "Mentions"
        head = (
            f"{what} of {brand} rose to {count:,} in {window} against "
            f"{_expected_count(float(doc['expected']))} expected ({rare})"
        )
    parts = [head]
    story = doc.get("story")
    if isinstance(story, Mapping):
        parts.append(
            f"{int(story['size']):,} of them repeat one story first posted by "
            f"{_handle(story.get('first_author'))}, combined reach "
            f"{reach_words(int(story['combined_reach']))}"
        )
    drivers = doc.get("drivers")
    if isinstance(drivers, Mapping) and drivers.get("top_authors"):
        share = drivers.get("top_author_share") or 0.0
        if share >= DRIVER_SHARE and int(drivers.get("authors", 0)) > 1:
            top = drivers["top_authors"][0]
            parts.append(f"{_pct(share)} of them from {_handle(top.get('handle'))}")
    rising = [str(t["term"]) for t in doc.get("top_terms") or []][:RISING_IN_SUMMARY]
    if rising:
        parts.append("rising: " + ", ".join(rising))
    return "; ".join(parts) + "."

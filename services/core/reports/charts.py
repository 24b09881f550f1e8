"""The report's charts as inline SVG, rendered on the server. Pure functions: data in,
markup out, every text escaped. No ``style`` attributes or scripts (the pages' CSP
forbids both); colours are presentation attributes, the rest is the page's CSS."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from services.core.reports.model import SentimentPoint

# Okabe–Ito: distinguishable with the common colour-vision deficiencies (as the dashboard).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8c6d1f", "#444444")
SENTIMENT = {"positive": "#1e8e3e", "neutral": "#9aa4b1", "negative": "#c5221f"}
W = 640  # viewBox width; the SVG scales to its container
NARROW = 360  # for phones: drawn narrower, so that its text stays readable when scaled


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def share_bars(
    rows: Sequence[tuple[str, Sequence[tuple[str, float | None]]]], title: str, width: int = W
) -> str:
    """One 100 % stacked bar per row (``(measure, [(brand, share), …])``), brands in order."""
    label_w, bar_w, row_h = 110, width - 114, 30
    height = row_h * len(rows) + 6
    out = [
        f'<svg class="chart-svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for r, (measure, shares) in enumerate(rows):
        y = 4 + r * row_h
        out.append(
            f'<text class="axis-label" x="0" y="{y + 17}">{escape(measure)}</text>'
            f'<rect class="bar-bg" x="{label_w}" y="{y}" width="{bar_w}" height="22" rx="3"/>'
        )
        x = float(label_w)
        for i, (brand, share) in enumerate(shares):
            if not share:
                continue
            w = bar_w * share
            pct = f"{100 * share:.0f}%"
            out.append(
                f'<rect x="{_num(x)}" y="{y}" width="{_num(w)}" height="22" fill="{colour(i)}">'
                f"<title>{escape(brand)}: {escape(measure)} {pct}</title></rect>"
            )
            if w >= 36:
                out.append(
                    f'<text class="bar-value" x="{_num(x + w / 2)}" y="{y + 15}" '
                    f'text-anchor="middle">{pct}</text>'
                )
            x += w
    out.append("</svg>")
    return "".join(out)


def _axis_labels(points: Sequence[SentimentPoint], x_of: list[float], y: float) -> list[str]:
    if not points:
        return []
    picks = sorted({0, len(points) // 2, len(points) - 1})
    out = []
    for i in picks:
        anchor = "start" if i == 0 else "end" if i == len(points) - 1 else "middle"
        label = points[i].start[:16].replace("T", " ")
        if label.endswith(" 00:00"):
            label = label[:10]
        out.append(
            f'<text class="axis-label" x="{_num(x_of[i])}" y="{y}" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    return out


def volume_columns(points: Sequence[SentimentPoint], title: str, width: int = W) -> str:
    """Mentions per bucket, stacked by sentiment (negative at the bottom)."""
    h, top, bottom, left = 200, 10, 24, 36
    plot_h = h - top - bottom
    n = max(1, len(points))
    slot = (width - left) / n
    peak = max((p.mentions for p in points), default=0)
    out = [
        f'<svg class="chart-svg" viewBox="0 0 {width} {h}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}"/>',
        f'<text class="axis-label" x="{left - 4}" y="{top + 8}" text-anchor="end">{peak:,}</text>',
        f'<text class="axis-label" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    if peak == 0:
        out.append(
            f'<text class="no-data" x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle">'
            "No mentions in this period</text>"
        )
    x_of = []
    for i, p in enumerate(points):
        x = left + i * slot
        x_of.append(x + slot / 2)
        y = float(top + plot_h)
        for label in ("negative", "neutral", "positive"):
            v = getattr(p, label)
            if not v or not peak:
                continue
            bh = plot_h * v / peak
            y -= bh
            out.append(
                f'<rect x="{_num(x + slot * 0.1)}" y="{_num(y)}" width="{_num(slot * 0.8)}" '
                f'height="{_num(bh)}" fill="{SENTIMENT[label]}"><title>{escape(p.start)}: '
                f"{v:,} {label}</title></rect>"
            )
    out += _axis_labels(points, x_of, h - 6)
    out.append("</svg>")
    return "".join(out)


def net_line(points: Sequence[SentimentPoint], title: str, width: int = W) -> str:
    """Net sentiment per bucket on a −100 %…+100 % scale; a gap where it is undefined."""
    h, top, bottom, left = 180, 10, 24, 44
    plot_h = h - top - bottom
    n = max(1, len(points))
    slot = (width - left) / n

    def y_of(v: float) -> float:
        return top + plot_h * (1 - (v + 1) / 2)

    out = [
        f'<svg class="chart-svg" viewBox="0 0 {width} {h}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>",
    ]
    for v, label in ((1, "+100%"), (0, "0"), (-1, "−100%")):
        cls = "axis zero" if v == 0 else "axis"
        out.append(
            f'<line class="{cls}" x1="{left}" y1="{_num(y_of(v))}" x2="{width}" '
            f'y2="{_num(y_of(v))}"/>'
            f'<text class="axis-label" x="{left - 4}" y="{_num(y_of(v) + 4)}" '
            f'text-anchor="end">{label}</text>'
        )
    x_of = [left + (i + 0.5) * slot for i in range(len(points))]
    segments: list[list[tuple[float, float]]] = [[]]
    for x, p in zip(x_of, points, strict=True):
        if p.net_sentiment is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((x, y_of(p.net_sentiment)))
    for seg in segments:
        if len(seg) > 1:
            d = " ".join(
                f"{'M' if i == 0 else 'L'}{_num(x)},{_num(y)}" for i, (x, y) in enumerate(seg)
            )
            out.append(f'<path class="net-line" d="{d}" fill="none" stroke="{PALETTE[0]}"/>')
    for x, p in zip(x_of, points, strict=True):
        if p.net_sentiment is not None:
            out.append(
                f'<circle cx="{_num(x)}" cy="{_num(y_of(p.net_sentiment))}" r="3" '
                f'fill="{PALETTE[0]}"><title>{escape(p.start)}: '
                f"{100 * p.net_sentiment:+.0f}%</title></circle>"
            )
    if not any(p.net_sentiment is not None for p in points):
        out.append(
            f'<text class="no-data" x="{width / 2}" y="{top + plot_h / 2 - 8}" '
            'text-anchor="middle">'
            "No positive or negative mentions in this period</text>"
        )
    out += _axis_labels(points, x_of, h - 6)
    out.append("</svg>")
    return "".join(out)


def expectation_chart(
    points: Sequence[tuple[str, float, float | None]],
    highlight: str,
    title: str,
    *,
    share: bool = False,
    width: int = W,
) -> str:
    """Observed values per window as columns (``highlight``, the alert's window, marked)
    against the expected line; ``points`` are ``(start, observed, expected)``, expected
    ``None`` where unknown. ``share``: values are 0–1, labelled in percent."""
    h, top, bottom, left = 200, 10, 24, 44
    plot_h = h - top - bottom
    n = max(1, len(points))
    slot = (width - left) / n
    peak = max([p[1] for p in points] + [p[2] or 0.0 for p in points] + [1e-9])

    def label(v: float) -> str:
        return f"{100 * v:.0f}%" if share else f"{v:,.0f}"

    def y_of(v: float) -> float:
        return top + plot_h * (1 - v / peak)

    out = [
        f'<svg class="chart-svg" viewBox="0 0 {width} {h}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}"/>',
        f'<text class="axis-label" x="{left - 4}" y="{top + 8}" text-anchor="end">'
        f"{label(peak)}</text>",
        f'<text class="axis-label" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    x_of = []
    for i, (start, observed, expected) in enumerate(points):
        x = left + i * slot
        x_of.append(x + slot / 2)
        bh = plot_h * observed / peak
        cls = "alert-window" if start == highlight else "observed"
        fill = SENTIMENT["negative"] if start == highlight else PALETTE[4]
        exp = "" if expected is None else f", expected {label(expected)}"
        out.append(
            f'<rect class="{cls}" x="{_num(x + slot * 0.1)}" y="{_num(y_of(observed))}" '
            f'width="{_num(slot * 0.8)}" height="{_num(bh)}" fill="{fill}">'
            f"<title>{escape(start[:16].replace('T', ' '))}: {label(observed)}{exp}</title></rect>"
        )
    line = [(x, e) for x, (_, _, e) in zip(x_of, points, strict=True) if e is not None]
    if len(line) > 1:
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{_num(x)},{_num(y_of(e))}" for i, (x, e) in enumerate(line)
        )
        out.append(
            f'<path class="expected-line" d="{d}" fill="none" stroke="{PALETTE[1]}" '
            'stroke-width="2" stroke-dasharray="5 3"/>'
        )
    picks = sorted({0, len(points) // 2, len(points) - 1}) if points else []
    for i in picks:
        anchor = "start" if i == 0 else "end" if i == len(points) - 1 else "middle"
        out.append(
            f'<text class="axis-label" x="{_num(x_of[i])}" y="{h - 6}" text-anchor="{anchor}">'
            f"{escape(points[i][0][:16].replace('T', ' '))}</text>"
        )
    out.append("</svg>")
    return "".join(out)

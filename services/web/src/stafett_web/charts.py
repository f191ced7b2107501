"""Simple bar charts, drawn on the server as SVG: no script, nothing from elsewhere.

A chart is an image with a title and a description (`role="img"`), and every bar carries its
number as text, so nothing is told by colour or length alone; the page shows the same figures in
a table beside it. A value withheld to protect a small group is drawn as no bar, with its label.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import msgspec

ROW = 28
LABEL = 140
BAR = 150
NUMBER = 80
WIDTH = LABEL + BAR + NUMBER


class Bar(msgspec.Struct, frozen=True):
    label: str
    value: float | None  # None: withheld
    shown: str  # the value as the reader reads it ("12", "0.4", "fewer than 5")


def bar_chart(chart_id: str, title: str, description: str, bars: Sequence[Bar]) -> str:
    """The SVG markup of a horizontal bar chart (safe to put in a page as it is)."""
    largest = max((b.value for b in bars if b.value is not None), default=0.0) or 1.0
    height = ROW * max(len(bars), 1) + 8
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
    ]
    for row, bar in enumerate(bars):
        y = 4 + row * ROW
        length = 0.0 if bar.value is None else max(bar.value / largest * BAR, 0.0)
        parts.append(
            f'<text class="chart-label" x="{LABEL - 8}" y="{y + 18}" text-anchor="end">'
            f"{escape(_short(bar.label))}</text>"
        )
        if length > 0:
            parts.append(
                f'<rect class="chart-bar" x="{LABEL}" y="{y + 4}" '
                f'width="{length:.1f}" height="18"/>'
            )
        parts.append(
            f'<text class="chart-value" x="{LABEL + length + 6:.1f}" y="{y + 18}">'
            f"{escape(bar.shown)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(label: str, most: int = 17) -> str:
    return label if len(label) <= most else f"{label[: most - 1]}…"

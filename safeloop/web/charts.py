"""Small server-rendered SVG charts for the dashboards (no JavaScript, no library).

A chart is built from our own numbers and labels; every label is escaped (``markupsafe``), so
the ``Markup`` it returns may be put into a page as is. Each bar may link to the list it counts.
Sizes are in viewBox units; CSS scales the chart to the column (375 px phones included).
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 340
ROW = 30
LABEL_W = 104
BAR_X = LABEL_W + 6
BAR_MAX = WIDTH - BAR_X - 48
BLUE, RED, GREY, GREEN = "#0b5cad", "#b3261e", "#9aa5b1", "#2e7d32"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # what is written after the bar ("12", "85%")
    href: str | None = None
    colour: str = BLUE


def _ems(text: str) -> float:
    """Approximate width in ems: CJK characters are square, Latin ones about half."""
    return sum(1.0 if ord(ch) >= 0x2E80 else 0.6 for ch in text)


def fitted(label: str, ems: float = LABEL_W / 13) -> str:
    """``label`` cut with "…" to fit ``ems`` ems (the full label is the row's tooltip)."""
    if _ems(label) <= ems:
        return label
    out = ""
    for ch in label:
        if _ems(out + ch) > ems - 1.6:
            break
        out += ch
    return out + "…"


def bars(title: str, items: list[Bar], *, top: float | None = None) -> Markup:
    """Horizontal bars, one row each, scaled to ``top`` (default: the largest value)."""
    peak = top if top is not None else max((b.value for b in items), default=0.0)
    height = ROW * max(len(items), 1) + 8
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
           f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>"]
    if not items:
        out.append(f'<text x="8" y="22" font-size="13" fill="{GREY}">暂无数据</text>')
    for i, bar in enumerate(items):
        y = 4 + i * ROW
        length = 0.0 if peak <= 0 else max(0.0, min(1.0, bar.value / peak)) * BAR_MAX
        row = [f"<title>{escape(bar.label)}：{escape(bar.text)}</title>",
               f'<text x="{LABEL_W}" y="{y + 19}" font-size="13" text-anchor="end" fill="#1b1f24">'
               f"{escape(fitted(bar.label))}</text>",
               f'<rect x="{BAR_X}" y="{y + 5}" width="{BAR_MAX}" height="18" rx="3" fill="#eef1f4"/>',
               f'<rect x="{BAR_X}" y="{y + 5}" width="{length:.1f}" height="18" rx="3" fill="{bar.colour}"/>',
               f'<text x="{BAR_X + BAR_MAX + 6}" y="{y + 19}" font-size="13" fill="#1b1f24">'
               f"{escape(bar.text)}</text>"]
        if bar.href:
            out.append(f'<a href="{escape(bar.href)}">{"".join(row)}</a>')
        else:
            out.append(f'<g>{"".join(row)}</g>')
    out.append("</svg>")
    return Markup("".join(out))


def rate_text(done: int, total: int) -> str:
    return f"{done / total:.0%}" if total else "—"

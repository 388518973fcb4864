"""The four-colour spatial distribution map of an enterprise's risks (安全风险四色分布图) as SVG.

Each area of the site plan is filled with the colour of the most severe risk point in it (红 重大,
橙 较大, 黄 一般, 蓝 低), light grey when nothing in it has been evaluated yet. The SVG is
standalone (it opens in a browser and prints) and a function of its input only: no ids, times or
random values, so the same map renders to the same bytes.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape, quoteattr

from core.errors import InvalidInput
from models.enums import RiskGrade
from safeloop.reports.risk_list import UNRATED
from safeloop.reports.risk_views import MapArea, RiskMap
from safeloop.reports.scope import zh_date
from states.risk_grading import RANKED, STYLES, highest

WIDTH = 1200
FRAME_X, FRAME_Y, FRAME_W = 30.0, 100.0, 860.0  # the plan's frame; its height follows the plan
FRAME_H_MIN, FRAME_H_MAX = 440.0, 730.0  # tall enough for the legend beside it; at most landscape
MARGIN = 30.0
PAD = 24.0
MIN_FONT = 9.0
PANEL_X = 910.0
UNRATED_FILL = "#E0E0E0"
UNRATED_INK = "#333333"
FONTS = ('"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", '
         '"WenQuanYi Micro Hei", sans-serif')
Point = tuple[float, float]


def _n(value: float) -> str:
    """Coordinates with one decimal and no "-0.0", so output is stable and compact."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _attrs(**values: str) -> str:
    return "".join(f" {name.replace('_', '-')}={quoteattr(value)}" for name, value in values.items())


def _validate(area: MapArea) -> tuple[list[Point], RiskGrade | None]:
    if len(area.polygon) < 3:
        raise InvalidInput(f"区域「{area.name}」的边界坐标只有 {len(area.polygon)} 个点，"
                           "至少需要 3 个点才能绘制")
    points: list[Point] = []
    for p in area.polygon:
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError, IndexError):
            raise InvalidInput(f"区域「{area.name}」的坐标「{p}」无效，应为 (x, y) 数值") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInput(f"区域「{area.name}」的坐标「{p}」无效，应为有限数值")
        points.append((x, y))
    for code, _name, grade in area.points:
        if grade and grade not in RiskGrade.__members__:
            raise InvalidInput(f"区域「{area.name}」中风险点「{code}」的风险等级「{grade}」无效，"
                               f"可用：{'、'.join(g.value for g in RiskGrade)}")
    return points, highest([grade for _code, _name, grade in area.points])


def _frame_height(polygons: list[list[Point]]) -> float:
    """A frame as tall as the plan needs at full width, so a wide site leaves no empty band."""
    if not polygons:
        return FRAME_H_MIN
    xs = [x for poly in polygons for x, _ in poly]
    ys = [y for poly in polygons for _, y in poly]
    bw, bh = max(xs) - min(xs), max(ys) - min(ys)
    wanted = (FRAME_W - 2 * PAD) * bh / bw + 2 * PAD if bw else FRAME_H_MAX
    return max(FRAME_H_MIN, min(FRAME_H_MAX, wanted))


def _fit(polygons: list[list[Point]], fh: float) -> tuple[float, float, float]:
    """Scale and offsets that fit every polygon into the frame, keeping the aspect ratio."""
    xs = [x for poly in polygons for x, _ in poly]
    ys = [y for poly in polygons for _, y in poly]
    fx, fy, fw = FRAME_X, FRAME_Y, FRAME_W
    rw, rh = fw - 2 * PAD, fh - 2 * PAD
    bw, bh = max(xs) - min(xs), max(ys) - min(ys)
    scales = [s for s in (rw / bw if bw else None, rh / bh if bh else None) if s is not None]
    scale = min(scales) if scales else 1.0
    ox = fx + PAD + (rw - bw * scale) / 2 - min(xs) * scale
    oy = fy + PAD + (rh - bh * scale) / 2 - min(ys) * scale
    return scale, ox, oy


def _centroid(poly: list[Point]) -> Point:
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1], strict=True):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(area) < 1e-9:  # degenerate (collinear) outline: the mean of its corners
        return sum(x for x, _ in poly) / len(poly), sum(y for _, y in poly) / len(poly)
    return cx / (3 * area), cy / (3 * area)


def _crossings(poly: list[Point], at: float, axis: int) -> list[tuple[float, float]]:
    """The inside stretches of the line ``axis`` = ``at`` (axis 1: horizontal, 0: vertical)."""
    other = 1 - axis
    hits = []
    for p0, p1 in zip(poly, poly[1:] + poly[:1], strict=True):
        a0, a1 = p0[axis], p1[axis]
        if (a0 <= at < a1) or (a1 <= at < a0):
            hits.append(p0[other] + (at - a0) * (p1[other] - p0[other]) / (a1 - a0))
    hits.sort()
    return list(zip(hits[::2], hits[1::2], strict=False))


def _room(poly: list[Point], x: float, y: float) -> tuple[float, float]:
    """Width and height of the largest box centred on (x, y) along each axis (0 when outside)."""
    def free(at: float, pos: float, axis: int) -> float:
        return next((2 * min(pos - lo, hi - pos) for lo, hi in _crossings(poly, at, axis) if lo <= pos <= hi),
                    0.0)

    return free(y, x, 1), free(x, y, 0)


def _fit_size(name: str, room: tuple[float, float], largest: float) -> float:
    """The largest font size at which the name (and the count line below it) fits the room."""
    width, height = room
    return min(largest, width * 0.9 / _ems(name), height / 2.4)


def _label_spot(poly: list[Point], name: str, largest: float) -> tuple[Point, tuple[float, float]]:
    """Where to centre an area's label: the centroid, unless it is outside the outline or
    cramped (an L- or U-shaped area) and another spot takes a clearly larger label.

    The other spots are the middles of the inside stretches of 15 horizontal lines across
    the area, each centred vertically; the first best one wins, so the choice is stable.
    """
    centroid = _centroid(poly)
    best, best_room = centroid, _room(poly, *centroid)
    best_size = _fit_size(name, best_room, largest) if min(best_room) > 0 else 0.0
    centroid_size = best_size
    top, bottom = min(y for _, y in poly), max(y for _, y in poly)
    for i in range(1, 16):
        y = top + (bottom - top) * i / 16
        for left, right in _crossings(poly, y, 1):
            x = (left + right) / 2
            y_mid = next(((lo + hi) / 2 for lo, hi in _crossings(poly, x, 0) if lo <= y <= hi), y)
            room = _room(poly, x, y_mid)
            size = _fit_size(name, room, largest)
            if min(room) > 0 and size > best_size:
                best, best_room, best_size = (x, y_mid), room, size
    if centroid_size >= 0.85 * best_size and min(_room(poly, *centroid)) > 0:
        return centroid, _room(poly, *centroid)
    return best, best_room


def _ems(text: str) -> float:
    """Approximate width in ems: CJK characters are square, Latin ones about half."""
    return sum(1.0 if ord(ch) >= 0x2E80 else 0.6 for ch in text) or 1.0


def _area_label(name: str, count: int, poly: list[Point], fill: str, ink: str) -> list[str]:
    """Name and count centred in the area; a strip too low for two lines shows only the name."""
    (x, y), (width, height) = _label_spot(poly, name, 18.0)
    big = max(MIN_FONT, min(18.0, width * 0.9 / _ems(name)))
    sub = f"{count} 个风险点"
    small = max(MIN_FONT, min(13.0, big, width * 0.9 / _ems(sub)))
    two_lines = height >= big + small + 8
    if not two_lines:
        big = max(MIN_FONT, min(big, height * 0.8))
    block = big + small + 4 if two_lines else big
    top = y - block / 2
    halo = _attrs(stroke=fill, stroke_width="3", paint_order="stroke", stroke_linejoin="round")
    out = [f'<text class="area-name" x="{_n(x)}" y="{_n(top + big * 0.88)}" font-size="{_n(big)}"'
           f' fill="{ink}" font-weight="bold" text-anchor="middle"{halo}>{escape(name)}</text>']
    if two_lines:
        out.append(f'<text class="area-count" x="{_n(x)}" y="{_n(top + big + 4 + small * 0.88)}"'
                   f' font-size="{_n(small)}" fill="{ink}" text-anchor="middle"{halo}>{escape(sub)}</text>')
    return out


def _north_arrow(cx: float, top: float) -> list[str]:
    return [
        '<g class="north-arrow">',
        f'<text x="{_n(cx)}" y="{_n(top + 14)}" font-size="16" font-weight="bold"'
        ' text-anchor="middle">北</text>',
        f'<polygon points="{_n(cx)},{_n(top + 22)} {_n(cx - 14)},{_n(top + 70)} {_n(cx)},{_n(top + 58)}"'
        ' fill="#333333" stroke="#333333" stroke-width="1"/>',
        f'<polygon points="{_n(cx)},{_n(top + 22)} {_n(cx + 14)},{_n(top + 70)} {_n(cx)},{_n(top + 58)}"'
        ' fill="#FFFFFF" stroke="#333333" stroke-width="1"/>',
        '</g>',
    ]


def _legend(top: float, counts: dict[RiskGrade | None, int]) -> list[str]:
    entries: list[tuple[str, str, str, int]] = [
        (STYLES[g].fill, f"{STYLES[g].colour}色", g.label, counts.get(g, 0)) for g in RANKED
    ]
    entries.append((UNRATED_FILL, "灰色", UNRATED, counts.get(None, 0)))
    row, width = 40.0, WIDTH - MARGIN - PANEL_X
    height = 44 + row * len(entries) + 8
    out = [
        '<g class="legend">',
        f'<rect x="{_n(PANEL_X)}" y="{_n(top)}" width="{_n(width)}" height="{_n(height)}"'
        ' fill="#FFFFFF" stroke="#333333" stroke-width="1"/>',
        f'<text x="{_n(PANEL_X + width / 2)}" y="{_n(top + 28)}" font-size="18" font-weight="bold"'
        ' text-anchor="middle">图　例</text>',
    ]
    for i, (fill, colour, label, count) in enumerate(entries):
        y = top + 44 + i * row
        out.append(f'<rect x="{_n(PANEL_X + 16)}" y="{_n(y)}" width="44" height="26" fill="{fill}"'
                   ' stroke="#333333" stroke-width="1"/>')
        out.append(f'<text x="{_n(PANEL_X + 72)}" y="{_n(y + 19)}" font-size="15">'
                   f'{escape(colour)}　{escape(label)}</text>')
        out.append(f'<text x="{_n(PANEL_X + width - 14)}" y="{_n(y + 19)}" font-size="13" fill="#555555"'
                   f' text-anchor="end">{count} 处</text>')
    out.append('</g>')
    return out


def render_risk_map(m: RiskMap) -> str:
    """The map as a standalone SVG document; a polygon of fewer than 3 points is refused."""
    checked = [(area, *_validate(area)) for area in m.areas]
    title = f"{m.enterprise}安全风险四色分布图"
    polygons = [poly for _area, poly, _grade in checked]
    fx, fy, fw, fh = FRAME_X, FRAME_Y, FRAME_W, _frame_height(polygons)
    height = round(fy + fh + MARGIN)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" role="img"{_attrs(aria_label=title)}>',
        f'<title>{escape(title)}</title>',
        f'<style>text {{ font-family: {FONTS}; }}</style>',
        f'<rect width="{WIDTH}" height="{height}" fill="#FFFFFF"/>',
        f'<text class="title" x="{WIDTH / 2:g}" y="52" font-size="28" font-weight="bold"'
        f' text-anchor="middle">{escape(title)}</text>',
        f'<text class="date" x="{_n(fx + fw)}" y="88" font-size="15" text-anchor="end">'
        f'绘制日期：{escape(zh_date(m.as_of))}</text>',
        f'<rect class="frame" x="{_n(fx)}" y="{_n(fy)}" width="{_n(fw)}" height="{_n(fh)}"'
        ' fill="#FAFAFA" stroke="#333333" stroke-width="1.5"/>',
    ]
    counts: dict[RiskGrade | None, int] = {}
    if not checked:
        out.append(f'<text class="empty" x="{_n(fx + fw / 2)}" y="{_n(fy + fh / 2)}" font-size="22"'
                   ' fill="#666666" text-anchor="middle">未登记区域坐标</text>')
    else:
        scale, ox, oy = _fit(polygons, fh)
        shapes, labels = ['<g class="areas">'], ['<g class="labels">']
        for area, poly, grade in checked:
            screen = [(ox + x * scale, oy + y * scale) for x, y in poly]
            fill = STYLES[grade].fill if grade else UNRATED_FILL
            ink = STYLES[grade].ink if grade else UNRATED_INK
            tip = "；".join(f"{code} {name}（{RiskGrade(g).label if g else UNRATED}）"
                           for code, name, g in area.points) or "无风险点"
            tags = _attrs(data_area=area.name, data_grade=grade.value if grade else "none")
            shapes.append(
                f'<polygon class="area"{tags}'
                f' points="{" ".join(f"{_n(x)},{_n(y)}" for x, y in screen)}" fill="{fill}"'
                f' stroke="#333333" stroke-width="1.5" stroke-linejoin="round">'
                f'<title>{escape(area.name)}：{escape(tip)}</title></polygon>')
            labels.extend(_area_label(area.name, len(area.points), screen, fill, ink))
            for _code, _name, g in area.points:
                key = RiskGrade(g) if g else None
                counts[key] = counts.get(key, 0) + 1
        out += [*shapes, '</g>', *labels, '</g>']
    out += _north_arrow(PANEL_X + (WIDTH - MARGIN - PANEL_X) / 2, fy)
    out += _legend(fy + 100, counts)
    note_y = fy + 100 + 44 + 40 * 5 + 8 + 28
    out += [
        f'<text class="note" x="{_n(PANEL_X)}" y="{_n(note_y)}" font-size="13" fill="#333333">'
        '注：区域颜色按区域内最高风险等级标示；</text>',
        f'<text class="note" x="{_n(PANEL_X)}" y="{_n(note_y + 20)}" font-size="13" fill="#333333">'
        f'风险点合计 {sum(counts.values())} 处。</text>',
        '</svg>',
    ]
    return "\n".join(out) + "\n"

"""风险分级管控 pages of an enterprise (``/risks/{enterprise}``): the four-colour distribution map,
the risk list with its Excel download, and the notice cards.

Everything is drawn by the product's own renderers from the product's own reads -- the map by
``safeloop.reports.risk_map.render_risk_map`` over ``safeloop.risks.risk_map``, the workbook by
``safeloop.reports.risk_list.write_risk_list_xlsx`` and the cards by ``risk_card.card`` /
``render_cards`` over ``safeloop.risks.risk_views`` -- restricted to the risk points the person
sees (``states.visibility``). An enterprise the person sees nothing of is "not found" (404).

The map is put inline: it is our own SVG, every name in it escaped by the renderer; its
``<style>`` element is dropped (the pages' CSP allows no inline style; ``views.css`` sets the
same font) and so is the XML declaration.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.responses import Response

from core.calendar.periods import local_date
from models.db import utcnow
from safeloop import risks
from safeloop.reports.risk_card import card, render_cards
from safeloop.reports.risk_list import by_severity, write_risk_list_xlsx
from safeloop.reports.risk_map import render_risk_map
from safeloop.web import focus
from safeloop.web.pages import Visit, see_other
from states.registry import WORKFLOWS

RISK = WORKFLOWS["risk"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PROLOGUE = re.compile(r"^<\?xml[^>]*\?>\s*")
_STYLE = re.compile(r"<style>[^<]*</style>")


def _enterprise(visit: Visit) -> focus.Focus:
    """The enterprise in the address, if the person sees something of it (else 404)."""
    return focus.focus_of(visit.session.connection(), visit.scope,
                          {"enterprise": visit.params["enterprise"]})


def inline_svg(svg: str) -> Markup:
    """The renderer's standalone SVG as an element for a page (see the module's docstring)."""
    return Markup(_STYLE.sub("", _PROLOGUE.sub("", svg), count=1))


def _attachment(name: str) -> str:
    return f"attachment; filename=\"risk.{name.rsplit('.', 1)[-1]}\"; filename*=UTF-8''{quote(name)}"


def choose(visit: Visit) -> Response:
    """``/risks``: the enterprises the person sees; straight to the one when there is one."""
    found = focus.enterprises(visit.session.connection(), visit.scope)
    if len(found) == 1:
        return see_other(f"/risks/{quote(found[0][0])}")
    return visit.page("risk_choose.html", enterprises=found)


def overview(visit: Visit) -> Response:
    which = _enterprise(visit)
    zone = visit.settings.timezone
    day = local_date(utcnow(), zone)
    visible = visit.scope.where(RISK)
    name, views = risks.risk_views(visit.session, which.key, zone=zone, visible=visible)
    layout = risks.risk_map(visit.session, which.key, as_of=day, zone=zone, visible=visible)
    ordered = by_severity(views)
    return visit.page("risk.html", focus=which, enterprise=name, map_svg=inline_svg(render_risk_map(layout)),
                      risks=ordered, cards=[card(r) for r in ordered], day=day.isoformat())


def workbook(visit: Visit) -> Response:
    """The risk list (风险清单) as .xlsx, written on request for what the person sees."""
    which = _enterprise(visit)
    zone = visit.settings.timezone
    day = local_date(utcnow(), zone)
    name, views = risks.risk_views(visit.session, which.key, zone=zone, visible=visit.scope.where(RISK))
    with tempfile.TemporaryDirectory(prefix="safeloop-risk-") as folder:
        path = Path(folder) / "risk-list.xlsx"
        write_risk_list_xlsx(views, path, enterprise=name, as_of=day)
        body = path.read_bytes()
    return Response(body, media_type=XLSX, headers={
        "Content-Disposition": _attachment(f"{name}风险清单{day.isoformat()}.xlsx")})


def printable_cards(visit: Visit) -> Response:
    """The notice cards (告知卡) as the printable document (a download: it carries its own styles)."""
    which = _enterprise(visit)
    zone = visit.settings.timezone
    day = local_date(utcnow(), zone)
    name, views = risks.risk_views(visit.session, which.key, zone=zone, visible=visit.scope.where(RISK))
    html = render_cards(views, enterprise=name, as_of=day)
    return Response(html.encode("utf-8"), media_type="text/html; charset=utf-8", headers={
        "Content-Disposition": _attachment(f"{name}风险告知卡{day.isoformat()}.html")})


def mount(app: Any, page: Callable[..., Any]) -> None:
    add = app.router.add_route
    add("/risks", page(choose), methods=["GET"], include_in_schema=False)
    add("/risks/{enterprise}", page(overview), methods=["GET"], include_in_schema=False)
    add("/risks/{enterprise}/list.xlsx", page(workbook), methods=["GET"], include_in_schema=False)
    add("/risks/{enterprise}/cards.html", page(printable_cards), methods=["GET"], include_in_schema=False)

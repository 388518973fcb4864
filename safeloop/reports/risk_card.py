"""The notice cards (安全风险告知卡) of an enterprise's risk points as one printable HTML page.

A card is posted at the risk point, so it must stand on its own: grade and colour, what can go
wrong, the control measures by kind, what to do in an emergency and whom to call. One card per
printed A4 page; every value from the data is escaped by the template (autoescape on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from models.enums import MeasureKind
from safeloop.reports.bulletin import template_environment
from safeloop.reports.risk_list import (
    UNRATED,
    by_severity,
    colour_label,
    grade_label,
    grade_of,
    measure_label,
    ordered_measures,
    tier_label,
)
from safeloop.reports.risk_views import RiskView
from safeloop.reports.scope import zh_date
from states.risk_grading import STYLES

TEMPLATE = "risk_card.html.j2"
UNRATED_FILL = "#9E9E9E"  # darker than the map's grey so the band and border show when printed
UNRATED_INK = "#FFFFFF"


@dataclass(frozen=True)
class Card:
    code: str
    name: str
    area: str
    unit: str
    grade: str  # RiskGrade value or "none"
    grade_label: str
    colour: str
    fill: str
    ink: str
    tier: str
    hazard_factors: list[str]
    accident_types: list[str]
    consequences: str
    groups: list[tuple[str, list[str]]]  # (MeasureKind label, texts), emergency measures excluded
    emergency: list[str]
    control_unit: str
    responsible: str
    contacts: str
    emergency_contacts: list[str]


def card(risk: RiskView) -> Card:
    grade = grade_of(risk)
    groups: dict[str, list[str]] = {}
    for m in ordered_measures(risk.measures):
        if m.kind != MeasureKind.emergency:
            groups.setdefault(measure_label(m.kind), []).append(m.text)
    return Card(
        code=risk.code, name=risk.name, area=risk.area, unit=risk.unit,
        grade=grade.value if grade else "none", grade_label=grade_label(grade) if grade else UNRATED,
        colour=colour_label(grade), fill=STYLES[grade].fill if grade else UNRATED_FILL,
        ink=STYLES[grade].ink if grade else UNRATED_INK, tier=tier_label(grade),
        hazard_factors=list(risk.hazard_factors), accident_types=list(risk.accident_types),
        consequences=risk.consequences, groups=list(groups.items()),
        emergency=[m.text for m in risk.measures if m.kind == MeasureKind.emergency],
        control_unit=risk.control_unit, responsible=risk.responsible, contacts=risk.contacts,
        emergency_contacts=list(risk.emergency_contacts),
    )


def render_cards(risks: list[RiskView], *, enterprise: str, as_of: date) -> str:
    """One HTML document with a card per risk point, most severe first (then by code)."""
    template = template_environment("html").get_template(TEMPLATE)
    cards = [card(risk) for risk in by_severity(risks)]
    return template.render(cards=cards, enterprise=enterprise, day=zh_date(as_of))

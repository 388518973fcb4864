"""What the risk outputs (list, map, notice cards) are drawn from: plain values, no database.

``safeloop.risk_query`` fills these from the tables; the renderers only format them, so each
can be tested with hand-made values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Measure:
    kind: str  # engineering | management | training | ppe | emergency (models.enums.MeasureKind)
    text: str


@dataclass(frozen=True)
class RiskView:
    """One risk point with everything the list and its notice card show."""

    code: str  # FX-000001
    name: str  # e.g. 液氨储罐区
    kind: str  # facility | operation (models.enums.RiskKind)
    enterprise: str
    unit: str  # unit name where the risk point is
    area: str  # area name on the site plan
    hazard_factors: list[str]
    accident_types: list[str]
    consequences: str
    measures: list[Measure]
    grade: str | None  # models.enums.RiskGrade value; None until evaluated
    method: str | None  # lec | ls
    factors: dict[str, float]
    score: float | None
    control_unit: str  # the unit that controls it (管控单位)
    responsible: str  # responsible person's name
    contacts: str  # phone numbers etc., free text
    emergency_contacts: list[str] = field(default_factory=list)  # e.g. "急救 120"
    state: str = ""  # zh-CN state label
    approved_on: date | None = None
    next_review: date | None = None


@dataclass(frozen=True)
class MapArea:
    """One area of the enterprise's site plan: a polygon and the risk points inside it.

    Coordinates are in site-plan units with the origin at the top-left corner, x to the right
    and y downwards (as on an image of the plan); the map scales them to fit.
    """

    name: str
    polygon: list[tuple[float, float]]
    points: list[tuple[str, str, str | None]]  # (code, name, grade) of each risk point there


@dataclass(frozen=True)
class RiskMap:
    enterprise: str
    as_of: date
    areas: list[MapArea]

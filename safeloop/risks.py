"""Risk register services around the risk workflow: site-plan areas, loading a register file,
and reading risk points back as the plain views the list, map and notice cards are drawn from.

State changes of risk points go through ``states.engine`` (the ``risk`` workflow); areas are
reference data, changed here with an audit row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import insert, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from core.calendar import local_date
from core.errors import InvalidInput, NotFound, PermissionDenied, SafeloopError
from core.yamlfile import parse_model, read_text, where
from models import Person, Unit
from models.db import as_utc, utcnow
from models.tables import ENTERPRISE as ENT
from models.tables import PERSON, UNIT
from models.tables import RISK_POINT as RP
from models.tables import ROLE_GRANT as GRANT
from models.tables import SITE_AREA as AREA
from safeloop.reports.risk_views import MapArea, Measure, RiskMap, RiskView
from states import engine
from states.workflows.risk import RISK, EvaluateParams, IdentifyParams

AREA_EDITORS = ("safety_officer", "unit_head", "principal")
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


def parse_polygon(text: str) -> list[tuple[float, float]]:
    """``"x,y x,y x,y"`` (site-plan units) into points; at least three, all numbers."""
    points = []
    for pair in text.replace(";", " ").split():
        x, sep, y = pair.partition(",")
        try:
            points.append((float(x), float(y)))
        except ValueError:
            raise InvalidInput(f"坐标「{pair}」应为 x,y 形式的数字") from None
        if not sep:
            raise InvalidInput(f"坐标「{pair}」应为 x,y 形式的数字")
    return _checked_polygon(points)


def _checked_polygon(points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    if len(points) < 3:
        raise InvalidInput(f"区域多边形至少需要 3 个顶点，收到 {len(points)} 个")
    if any(len(p) != 2 for p in points):
        raise InvalidInput("区域多边形的每个顶点应为 [x, y]")
    bad = _non_finite(points)
    if bad is not None:
        raise InvalidInput(
            f"区域多边形第 {bad + 1} 个顶点 {list(points[bad])} 不是有限数字（nan/inf 不能画图）")
    return [(float(p[0]), float(p[1])) for p in points]


def _non_finite(points: Sequence[Sequence[float]]) -> int | None:
    """Index of the first vertex with a NaN or infinite coordinate (it would break map drawing)."""
    for n, point in enumerate(points):
        try:
            if not all(math.isfinite(float(c)) for c in point):
                return n
        except (TypeError, ValueError):
            return n
    return None


def enterprise_of(session: Session, key: str) -> tuple[int, str]:
    found = session.connection().execute(select(ENT.c.id, ENT.c.name).where(ENT.c.key == key)).first()
    if found is None:
        raise NotFound(f"企业「{key}」不存在")
    return int(found[0]), str(found[1])


def _check_editor(session: Session, enterprise_id: int, actor: str) -> str:
    """The role by which ``actor`` may edit the enterprise's risk register (for the audit row)."""
    conn = session.connection()
    person = conn.execute(select(PERSON.c.id).where(PERSON.c.key == actor)).scalar()
    if person is None:
        raise NotFound(f"人员「{actor}」不存在")
    held = conn.execute(select(GRANT.c.role).join(UNIT, UNIT.c.id == GRANT.c.unit_id).where(
        GRANT.c.person_id == person, UNIT.c.enterprise_id == enterprise_id,
        GRANT.c.role.in_(AREA_EDITORS))).first()
    if held is None:
        raise PermissionDenied(
            f"{actor} 无权登记该企业的区域：需要该企业的安全管理员、单位负责人或主要负责人")
    return str(held[0])


def set_area(session: Session, enterprise: str, name: str, polygon: Sequence[Sequence[float]],
             *, actor: str, as_of: datetime | None = None) -> tuple[int, bool]:
    """Register or redraw an area of the site plan; returns (area id, created?)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("区域名称不能为空，最多 100 个字符")
    points = _checked_polygon(polygon)
    try:
        enterprise_id, _ = enterprise_of(session, enterprise)
        role = _check_editor(session, enterprise_id, actor)
        conn = session.connection()
        moment = as_of or utcnow()
        existing = conn.execute(select(AREA.c.id).where(
            AREA.c.enterprise_id == enterprise_id, AREA.c.name == name)).scalar()
        value = [list(p) for p in points]
        if existing is None:
            area_id = conn.execute(insert(AREA).values(
                enterprise_id=enterprise_id, name=name, polygon=value, created_at=moment,
                updated_at=moment).returning(AREA.c.id)).scalar_one()
        else:
            area_id = existing
            conn.execute(update(AREA).where(AREA.c.id == existing).values(
                polygon=value, updated_at=moment))
        engine.record(session, entity_type="site_area", entity_code=f"{enterprise}/{name}",
                      event="add_area" if existing is None else "redraw_area", actor=actor,
                      role=role, data={"polygon": value}, as_of=moment)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return int(area_id), existing is None


# ---- the register file -----------------------------------------------------------------------


class AreaIn(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=100)
    polygon: list[list[float]] = Field(min_length=3)

    @field_validator("polygon")
    @classmethod
    def _pairs(cls, value: list[list[float]]) -> list[list[float]]:
        if any(len(p) != 2 for p in value):
            raise ValueError("每个顶点应为 [x, y]")
        bad = _non_finite(value)
        if bad is not None:
            raise ValueError(f"第 {bad + 1} 个顶点不是有限数字（nan/inf）")
        return value


class EvaluationIn(BaseModel):
    model_config = _STRICT
    method: str
    factors: dict[str, float]

    @field_validator("factors")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, v in value.items() if not math.isfinite(v))
        if bad:
            raise ValueError(f"因子 {'、'.join(bad)} 不是有限数字（nan/inf）")
        return value


class PointIn(IdentifyParams):
    evaluation: EvaluationIn | None = None


class RegisterIn(BaseModel):
    model_config = _STRICT
    enterprise: str = Field(min_length=1)
    areas: list[AreaIn] = []
    risk_points: list[PointIn] = []


@dataclass
class LoadReport:
    areas: int = 0
    created: list[str] | None = None
    skipped: list[str] | None = None
    evaluated: int = 0


def load_register(session: Session, path: Path, *, actor: str,
                  as_of: datetime | None = None) -> LoadReport:
    """Load areas and risk points from a YAML register; everything is validated (file, line and
    key named) before anything is written. Points already registered (same unit and name) are
    skipped, so loading the file again adds only what is new."""
    register, root = parse_model(read_text(path, "风险点文件"), path.name, RegisterIn)
    for n, point in enumerate(register.risk_points):
        if point.evaluation is not None:
            try:
                EvaluateParams.model_validate(point.evaluation.model_dump())
            except ValidationError as exc:
                message = "；".join(str(e.get("ctx", {}).get("error", e["msg"])) for e in exc.errors())
                spot = where(path.name, root, ["risk_points", n, "evaluation"])
                raise InvalidInput(f"{spot}：{message}") from exc
    enterprise_id, _ = enterprise_of(session, register.enterprise)
    _check_editor(session, enterprise_id, actor)
    existing = _check_points(session, enterprise_id, register, path.name, root, actor, as_of)
    session.rollback()
    report = LoadReport(created=[], skipped=[])
    for area in register.areas:
        set_area(session, register.enterprise, area.name, area.polygon, actor=actor, as_of=as_of)
        report.areas += 1
    for point in register.risk_points:
        if (point.unit, point.name) in existing:
            report.skipped.append(existing[point.unit, point.name])  # type: ignore[union-attr]
            continue
        data = point.model_dump(mode="json", exclude={"evaluation"}, exclude_none=True)
        created = engine.create(session, RISK, actor=actor, data=data, as_of=as_of)
        existing[point.unit, point.name] = created.code  # a repeat later in the file is skipped
        report.created.append(created.code)  # type: ignore[union-attr]
        if point.evaluation is not None:
            engine.fire(session, RISK, created.entity_id, "evaluate", actor=actor,
                        data=point.evaluation.model_dump(), as_of=as_of)
            report.evaluated += 1
    return report


def _check_points(session: Session, enterprise_id: int, register: RegisterIn, source: str,
                  root: Any, actor: str, as_of: datetime | None) -> dict[tuple[str, str], str]:
    """Refuse the file before its first write: every point's unit is in the enterprise, its area
    is registered (or in the file), and the engine would let ``actor`` register it. Returns the
    codes of points already registered, by (unit key, name)."""
    conn = session.connection()
    known = dict(conn.execute(select(UNIT.c.key, UNIT.c.enterprise_id).where(
        UNIT.c.key.in_([p.unit for p in register.risk_points]))).all())
    areas = {a.name for a in register.areas} | set(conn.execute(
        select(AREA.c.name).where(AREA.c.enterprise_id == enterprise_id)).scalars())
    existing = {(unit, name): code for unit, name, code in conn.execute(
        select(UNIT.c.key, RP.c.name, RP.c.code).join(UNIT, UNIT.c.id == RP.c.unit_id)
        .where(RP.c.enterprise_id == enterprise_id, RP.c.state != "retired"))}
    for n, point in enumerate(register.risk_points):
        spot = where(source, root, ["risk_points", n, "unit"])
        if known.get(point.unit) != enterprise_id:
            raise InvalidInput(f"{spot}：单位「{point.unit}」不存在或不属于企业「{register.enterprise}」")
        if point.area and point.area not in areas:
            raise InvalidInput(f"{where(source, root, ['risk_points', n, 'area'])}：区域「{point.area}」"
                               "未登记（在 areas 中给出其坐标）")
        # the area may be one this file adds: checked above, so left out of the engine's check
        data = point.model_dump(mode="json", exclude={"evaluation", "area"}, exclude_none=True)
        try:
            engine.check_create(session, RISK, actor=actor, data=data, as_of=as_of)
        except SafeloopError as exc:
            raise type(exc)(f"{spot}：{exc.message}", **exc.details) from exc
    return existing


# ---- views for the outputs -------------------------------------------------------------------


def risk_views(session: Session, enterprise: str, *, zone: str, include_retired: bool = False,
               visible: Any = None) -> tuple[str, list[RiskView]]:
    """Every risk point of an enterprise as the list and the cards show it (``visible``: a
    reader's scope over the risk point table, from ``states.visibility``)."""
    enterprise_id, enterprise_name = enterprise_of(session, enterprise)
    control = aliased(Unit)
    responsible = aliased(Person)
    conditions = [RP.c.enterprise_id == enterprise_id]
    if visible is not None:
        conditions.append(visible)
    if not include_retired:
        conditions.append(RP.c.state != "retired")
    rows = session.connection().execute(
        select(RP, UNIT.c.name.label("unit_name"), AREA.c.name.label("area_name"),
               control.name.label("control_name"), responsible.name.label("person_name"),
               responsible.phone.label("person_phone"))
        .join(UNIT, UNIT.c.id == RP.c.unit_id)
        .outerjoin(AREA, AREA.c.id == RP.c.area_id)
        .outerjoin(control, control.id == RP.c.control_unit_id)
        .outerjoin(responsible, responsible.id == RP.c.responsible_id)
        .where(*conditions).order_by(RP.c.id)).mappings().all()
    session.rollback()
    views = []
    for r in rows:
        contacts = r["contacts"] or (r["person_phone"] or "")
        views.append(RiskView(
            code=r["code"], name=r["name"], kind=r["kind"], enterprise=enterprise_name,
            unit=r["unit_name"], area=r["area_name"] or "", hazard_factors=list(r["hazard_factors"] or []),
            accident_types=list(r["accident_types"] or []), consequences=r["consequences"] or "",
            measures=[Measure(m["kind"], m["text"]) for m in r["measures"] or []],
            grade=r["approved_grade"] or r["grade"], method=r["method"],
            factors=dict(r["factors"] or {}), score=r["score"],
            control_unit=r["control_name"] or "", responsible=r["person_name"] or "",
            contacts=contacts, emergency_contacts=list(r["emergency_contacts"] or []),
            state=RISK.state_label(r["state"]),
            approved_on=_day(r["approved_at"], zone), next_review=_day(r["review_due"], zone),
        ))
    return enterprise_name, views


def _day(value: datetime | None, zone: str) -> date | None:
    return local_date(as_utc(value), zone) if value is not None else None


def risk_map(session: Session, enterprise: str, *, as_of: date, zone: str,
             visible: Any = None) -> RiskMap:
    """The enterprise's areas with the risk points in each (grade in force, else evaluated);
    ``visible``: a reader's scope over the risk point table."""
    enterprise_id, name = enterprise_of(session, enterprise)
    conn = session.connection()
    areas = conn.execute(select(AREA.c.id, AREA.c.name, AREA.c.polygon).where(
        AREA.c.enterprise_id == enterprise_id).order_by(AREA.c.name)).all()
    points: dict[int, list[tuple[str, str, str | None]]] = {}
    for area_id, code, point_name, approved, graded in conn.execute(
            select(RP.c.area_id, RP.c.code, RP.c.name, RP.c.approved_grade, RP.c.grade)
            .where(RP.c.enterprise_id == enterprise_id, RP.c.state != "retired",
                   RP.c.area_id.is_not(None), *([] if visible is None else [visible]))
            .order_by(RP.c.code)):
        points.setdefault(area_id, []).append((code, point_name, approved or graded))
    session.rollback()
    return RiskMap(name, as_of, [
        MapArea(a.name, [(float(x), float(y)) for x, y in a.polygon or []], points.get(a.id, []))
        for a in areas])

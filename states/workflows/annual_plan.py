"""A regulator's annual supervision-inspection plan (年度监督检查计划) as data.

    draft ─file (备案 with the 安委办)─▶ filed ─activate─▶ active ─close─▶ closed
    update_entries (draft), refresh (active): recompute frequencies

Entries list enterprises and a yearly frequency; an enterprise with an open major hazard or an
active listing gets at least twice its base frequency (加大监督检查频次), with the reason shown.
An active plan becomes inspection plans (source = regulator) that the daily materialisation
turns into tasks; their failed items open hazards with source = regulator.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import and_, func, select

from models.enums import HazardGrade
from models.tables import ANNUAL_PLAN as ANNUAL_PLAN_TABLE
from models.tables import DEPARTMENT, ENTERPRISE, HAZARD, JURISDICTION, LISTING
from states.references import department_serves_jurisdiction
from states.workflow import STRICT, Branch, Context, EmptyParams, EventRule, Subject, Workflow
from states.workflows.common import REG, STAY, stamp
from states.workflows.hazard import OPEN_STATES as OPEN_HAZARD
from states.workflows.listing import ACTIVE as ACTIVE_LISTING

STATES = {"draft": "草拟", "filed": "已备案", "active": "执行中", "closed": "已结束"}


ENTRIES = "计划条目：JSON 列表 [{enterprise, frequency}]"  # the entries field's description


class EntryIn(BaseModel):
    model_config = STRICT
    enterprise: str = Field(description="企业单位编号")
    frequency: int = Field(ge=1, le=52, description="每年检查次数")


class DraftParams(BaseModel):
    model_config = STRICT
    jurisdiction: str = Field(description="辖区编号")
    year: int = Field(ge=2000, le=2100, description="计划年度")
    department: str | None = Field(default=None, description="编制计划的监管部门编号")
    entries: list[EntryIn] = Field(min_length=1, description=ENTRIES)


class EntriesParams(BaseModel):
    model_config = STRICT
    entries: list[EntryIn] = Field(min_length=1, description=ENTRIES)


class EffectiveEntry(BaseModel):
    model_config = STRICT
    enterprise: str
    name: str
    industry: str
    base_frequency: int
    frequency: int
    reason: str


class FrequencyParams(BaseModel):
    """Nothing to give: the engine records every entry's effective frequency with its reason,
    and which enterprises' frequency it doubled (``annotate``); replay reads them back."""

    model_config = STRICT
    entries: list[EffectiveEntry] | None = None
    doubled: list[str] | None = None


def _enterprises(ctx: Context, jurisdiction_id: int) -> dict[str, dict[str, Any]]:
    """Enterprises in the jurisdiction and every jurisdiction below it."""
    jur, ent = JURISDICTION, ENTERPRISE
    path = ctx.conn.execute(select(jur.c.path).where(jur.c.id == jurisdiction_id)).scalar()
    rows = ctx.conn.execute(
        select(ent.c.id, ent.c.key, ent.c.name, ent.c.industry)
        .join(jur, jur.c.id == ent.c.jurisdiction_id).where(jur.c.path.startswith(path or "/"))
    ).mappings()
    return {r["key"]: dict(r) for r in rows}


def entries_in_jurisdiction(subject: Subject, ctx: Context) -> str | None:
    known = _enterprises(ctx, subject.row["jurisdiction_id"])
    keys = [e["enterprise"] for e in subject.data["entries"]]
    unknown = sorted(set(keys) - set(known))
    if unknown:
        return "这些企业不在本辖区：" + "、".join(unknown)
    if len(set(keys)) != len(keys):
        return "同一企业列了不止一次"
    return None


def effective_entries(ctx: Context, jurisdiction_id: int,
                      entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry with its effective frequency: doubled where a major hazard is open or listed."""
    known = _enterprises(ctx, jurisdiction_id)
    ids = [known[e["enterprise"]]["id"] for e in entries]
    haz, lst = HAZARD, LISTING
    majors = dict(ctx.conn.execute(
        select(haz.c.enterprise_id, func.count()).where(and_(
            haz.c.enterprise_id.in_(ids), haz.c.grade == HazardGrade.major.value,
            haz.c.state.in_((*OPEN_HAZARD, "accepted")))).group_by(haz.c.enterprise_id)).all())
    listings = dict(ctx.conn.execute(
        select(lst.c.enterprise_id, func.count()).where(and_(
            lst.c.enterprise_id.in_(ids), lst.c.state.in_(ACTIVE_LISTING)))
        .group_by(lst.c.enterprise_id)).all())
    result = []
    for entry in entries:
        ent = known[entry["enterprise"]]
        base = int(entry.get("base_frequency", entry["frequency"]))
        reasons = []
        if majors.get(ent["id"]):
            reasons.append(f"存在未销号重大隐患 {majors[ent['id']]} 项")
        if listings.get(ent["id"]):
            reasons.append(f"有挂牌督办 {listings[ent['id']]} 项")
        result.append({
            "enterprise": entry["enterprise"], "name": ent["name"], "industry": ent["industry"],
            "base_frequency": base, "frequency": base * 2 if reasons else base,
            "reason": "；".join(reasons) + "，加大监督检查频次（不少于基准的两倍）" if reasons
            else "按基准频次",
        })
    return result


def on_draft(subject: Subject, ctx: Context) -> dict[str, Any]:
    department = None
    if subject.data.get("department"):
        table = DEPARTMENT
        department = ctx.conn.execute(select(table.c.id).where(
            table.c.key == subject.data["department"])).scalar()
    return {"year": subject.data["year"], "department_id": department,
            "entries": _plain(subject.data["entries"])}


def department_known(subject: Subject, ctx: Context) -> str | None:
    """The plan's department exists (else NotFound) and serves the plan's jurisdiction."""
    key = subject.data.get("department")
    if key is None:
        return None
    return department_serves_jurisdiction(ctx, key, subject.row["jurisdiction_id"])


def on_entries(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"entries": _plain(subject.data["entries"])}


def _plain(entries: list[Any]) -> list[dict[str, Any]]:
    return [{"enterprise": e["enterprise"], "frequency": e["frequency"]} for e in entries]


def frequencies(subject: Subject, ctx: Context) -> list[dict[str, Any]]:
    """The entries' effective frequencies: as recorded in the audit row (replay), else computed
    now from the open major hazards and listings (memoised: annotate and effect both ask)."""
    if subject.data.get("entries") is not None:
        return [dict(e) for e in subject.data["entries"]]
    key = ("annual_plan.frequencies", subject.row["id"], subject.row["version"], ctx.as_of)
    if key not in ctx.memo:
        ctx.memo[key] = effective_entries(ctx, subject.row["jurisdiction_id"],
                                          subject.row["entries"] or [])
    return [dict(e) for e in ctx.memo[key]]


def note_frequencies(subject: Subject, ctx: Context) -> dict[str, Any]:
    entries = frequencies(subject, ctx)
    return {"entries": entries,
            "doubled": [e["enterprise"] for e in entries if e["frequency"] > e["base_frequency"]]}


def on_activate(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"entries": frequencies(subject, ctx), "activated_at": ctx.as_of}


def on_refresh(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"entries": frequencies(subject, ctx)}


def plan_year_started(subject: Subject, ctx: Context) -> str | None:
    if date(subject.row["year"], 12, 31) < ctx.as_of.date():
        return f"{subject.row['year']} 年已过，不能再启用"
    return None


_events = [
    EventRule(
        name="update_entries", label="修改计划条目", sources=("draft",), branches=STAY,
        roles=REG, params=EntriesParams, guards=(entries_in_jurisdiction,), effect=on_entries,
    ),
    EventRule(
        name="file", label="报安委办备案", sources=("draft",), branches=(Branch("filed"),), roles=REG,
        params=EmptyParams, effect=stamp("filed_at"),
    ),
    EventRule(
        name="activate", label="启用", sources=("filed",), branches=(Branch("active"),), roles=REG,
        params=FrequencyParams, guards=(plan_year_started,), effect=on_activate,
        annotate=note_frequencies, computed=("entries", "doubled"),
    ),
    EventRule(
        name="refresh", label="按隐患情况调整频次", sources=("active",), branches=STAY,
        roles=("system", "regulator"), params=FrequencyParams, effect=on_refresh,
        annotate=note_frequencies, computed=("entries", "doubled"),
    ),
    EventRule(
        name="close", label="结束", sources=("active",), branches=(Branch("closed"),), roles=REG,
        params=EmptyParams, effect=stamp("closed_at"),
    ),
]

DRAFT = EventRule(
    name="draft", label="编制年度监督检查计划", sources=(), branches=(Branch("draft"),), roles=REG,
    params=DraftParams, guards=(department_known, entries_in_jurisdiction), effect=on_draft,
)

ANNUAL_PLAN = Workflow(
    name="annual_plan",
    label="年度监督检查计划",
    table=ANNUAL_PLAN_TABLE,
    code_prefix="JH",
    states=STATES,
    terminal=frozenset({"closed"}),
    create_event=DRAFT,
    events={rule.name: rule for rule in _events},
    scope="jurisdiction",
)


# ---- regulator inspection plans from active annual plans ------------------------------------

CADENCE_BY_FREQUENCY = ((52, "weekly"), (12, "monthly"), (4, "quarterly"), (1, "yearly"))


def cadence_for(frequency: int) -> str:
    """The least frequent cadence that inspects at least ``frequency`` times a year."""
    for per_year, cadence in reversed(CADENCE_BY_FREQUENCY):
        if per_year >= frequency:
            return cadence
    return "weekly"

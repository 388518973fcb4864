"""Load the organisation (jurisdictions, departments, enterprises, unit trees, people, roles)
from a YAML file, idempotently: keys in the file are the user's stable ids; rerunning the same file
changes nothing, an edited file updates what changed. Every error names the key and line, and
nothing is written unless the whole file is valid — including its integrity against the
database (``orgcheck``: duplicate ids, units moving between enterprises, open work losing its
holder's authority, depth limits).

The file is also the source of accounts: each person it lists gets one (no password yet, so
no login), and a person this same file (by name) listed before but no longer lists has their
account disabled, never deleted (``accounts.store.sync_with_org``); files may be partial, so
people of other files are left alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, delete, insert, select, update
from sqlmodel import Session

from core.yamlfile import parse_model, read_text
from models.enums import Role, Tier
from models.tables import DEPARTMENT, ENTERPRISE, JURISDICTION, PERSON, ROLE_GRANT, UNIT
from safeloop import orgcheck
from safeloop.accounts import store as accounts
from states import engine

KEY = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
UNIT_ROLES = {Role.inspector, Role.rectifier, Role.safety_officer, Role.unit_head, Role.principal}


class JurisdictionIn(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=KEY)
    name: str = Field(min_length=1)
    parent: str | None = None


class DepartmentIn(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=KEY)
    name: str = Field(min_length=1)
    jurisdiction: str
    industries: list[str] = []


class UnitIn(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=KEY)
    name: str = Field(min_length=1)
    tier: Tier
    units: list[UnitIn] = []


class EnterpriseIn(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=KEY)
    name: str = Field(min_length=1)
    industry: str = Field(min_length=1)
    jurisdiction: str
    units: list[UnitIn] = Field(min_length=1)


class RoleIn(BaseModel):
    model_config = _STRICT
    role: Literal[
        "inspector", "rectifier", "safety_officer", "unit_head", "principal", "regulator",
        "auditor",
    ]
    unit: str | None = None
    jurisdiction: str | None = None
    department: str | None = None

    @model_validator(mode="after")
    def _scope(self) -> RoleIn:
        if self.role in UNIT_ROLES and (self.unit is None or self.jurisdiction is not None):
            raise ValueError(f"角色 {self.role} 须指定 unit（单位），不能指定 jurisdiction")
        if self.role == Role.regulator and (self.jurisdiction is None or self.unit is not None):
            raise ValueError("角色 regulator 须指定 jurisdiction（辖区），不能指定 unit")
        if self.role == Role.auditor and (self.unit is None) == (self.jurisdiction is None):
            raise ValueError("角色 auditor 须指定 unit 或 jurisdiction 之一")
        return self


def _channel_url(url: str) -> str:
    """A person's own notification channel: an Apprise URL (secrets as ${ENV_VAR})."""
    from notifications.routing import url_problem

    problem = url_problem(url)
    if problem:
        raise ValueError(f"通知地址 {url}：{problem}")
    return url


class PersonIn(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=KEY)
    name: str = Field(min_length=1)
    phone: str | None = None
    email: str | None = None
    roles: list[RoleIn] = []
    channels: list[Annotated[str, AfterValidator(_channel_url)]] = []


class OrgFile(BaseModel):
    model_config = _STRICT
    jurisdictions: list[JurisdictionIn] = Field(min_length=1)
    departments: list[DepartmentIn] = []
    enterprises: list[EnterpriseIn] = []
    people: list[PersonIn] = []


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    audit_seq: int | None = None
    # accounts created, disabled (people this file no longer lists) and enabled again
    accounts: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, created: bool) -> None:
        target = self.created if created else self.updated
        target[kind] = target.get(kind, 0) + 1


# ---- parsing -------------------------------------------------------------------------------


def parse(text: str, source: str = "组织文件") -> tuple[OrgFile, yaml.Node | None]:
    return parse_model(text, source, OrgFile)


# ---- writing --------------------------------------------------------------------------------


class _Writer:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.report = LoadReport()

    def ids(self, table: Any) -> dict[str, int]:
        return {k: i for i, k in self.conn.execute(select(table.c.id, table.c.key))}

    def upsert(self, kind: str, table: Any, key: str, values: dict[str, Any]) -> int:
        existing = self.conn.execute(select(table).where(table.c.key == key)).mappings().first()
        if existing is None:
            new_id = self.conn.execute(
                insert(table).values(key=key, **values).returning(table.c.id)
            ).scalar_one()
            self.report.count(kind, created=True)
            return int(new_id)
        if any(existing[c] != v for c, v in values.items()):
            self.conn.execute(update(table).where(table.c.id == existing["id"]).values(values))
            self.report.count(kind, created=False)
        return int(existing["id"])

    def repath(self, table: Any) -> None:
        """Recompute every materialised path from the parent links (``/1/4/9/``), so rows not in
        the file below a moved one follow it; only changed paths are written."""
        rows = {i: (parent, path) for i, parent, path in
                self.conn.execute(select(table.c.id, table.c.parent_id, table.c.path))}
        paths: dict[int, str] = {}
        for start in rows:
            chain = []
            node: int | None = start
            while node is not None and node not in paths:
                chain.append(node)
                node = rows[node][0]
            prefix = paths[node] if node is not None else "/"
            for row in reversed(chain):
                prefix = paths[row] = f"{prefix}{row}/"
        for row, path in paths.items():
            if rows[row][1] != path:
                self.conn.execute(update(table).where(table.c.id == row).values(path=path))


def load(session: Session, path: Path, *, actor: str = "admin") -> LoadReport:
    """Validate the whole file (against itself and the database) before the first write, then
    write it in one transaction with an audit row, or raise having written nothing."""
    text = read_text(path, "组织文件")
    org, root = parse(text, path.name)
    try:
        orgcheck.check(session.connection(), org, root, path.name)
        writer = _Writer(session.connection())
        _write(writer, org)
        report = writer.report
        listed = {k: i for k, i in writer.ids(PERSON).items() if k in {p.id for p in org.people}}
        report.accounts = accounts.sync_with_org(session, path.name, listed, actor=actor)
        report.audit_seq = engine.record(
            session, entity_type="org", entity_code=path.name, event="load_org", actor=actor,
            role="admin",
            data={"sha256": hashlib.sha256(text.encode()).hexdigest(),
                  "created": report.created, "updated": report.updated},
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return report


def _write(w: _Writer, org: OrgFile) -> None:
    """Write a checked file (``orgcheck.check`` has vouched for every reference)."""
    jt, dt, et, ut, pt, gt = (
        JURISDICTION, DEPARTMENT, ENTERPRISE,
        UNIT, PERSON, ROLE_GRANT,
    )
    jur = w.ids(jt)
    for j in org.jurisdictions:
        jur[j.id] = w.upsert("jurisdiction", jt, j.id, {
            "name": j.name, "parent_id": jur[j.parent] if j.parent is not None else None})
    w.repath(jt)
    dep = w.ids(dt)
    for d in org.departments:
        dep[d.id] = w.upsert("department", dt, d.id, {
            "name": d.name, "jurisdiction_id": jur[d.jurisdiction],
            "industries": ",".join(d.industries)})
    enterprises = {e.id: w.upsert("enterprise", et, e.id, {
        "name": e.name, "industry": e.industry, "jurisdiction_id": jur[e.jurisdiction]})
        for e in org.enterprises}
    units = w.ids(ut)
    for node, enterprise, parent, _, _ in orgcheck.walk_units(org):  # parents before children
        units[node.id] = w.upsert("unit", ut, node.id, {
            "name": node.name, "tier": node.tier.value, "enterprise_id": enterprises[enterprise],
            "parent_id": units[parent] if parent is not None else None})
    w.repath(ut)
    for p in org.people:
        channels = json.dumps(p.channels, ensure_ascii=False) if p.channels else None
        pid = w.upsert("person", pt, p.id, {"name": p.name, "phone": p.phone, "email": p.email,
                                            "channels": channels})
        wanted = {(r.role, units.get(r.unit or ""), jur.get(r.jurisdiction or ""),
                   dep.get(r.department or "")) for r in p.roles}
        have = {
            (g.role, g.unit_id, g.jurisdiction_id, g.department_id): g.id
            for g in w.conn.execute(select(gt).where(gt.c.person_id == pid))
        }
        for grant, gid in have.items():
            if grant not in wanted:
                w.conn.execute(delete(gt).where(gt.c.id == gid))
                w.report.count("role_grant_removed", created=True)
        for role, unit_id, jur_id, dep_id in sorted(wanted - have.keys(), key=str):
            w.conn.execute(insert(gt).values(person_id=pid, role=role, unit_id=unit_id,
                                             jurisdiction_id=jur_id, department_id=dep_id))
            w.report.count("role_grant", created=True)

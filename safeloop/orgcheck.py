"""Check an org file against itself and the database before its first write.

The org loader writes only after this passes, so a refused file changes nothing. Refused:

* an id defined twice (jurisdictions, departments, enterprises, units, people), naming both lines
  — YAML lists would otherwise let the last one silently win;
* a reference to something not defined (in the database or, for jurisdiction parents, earlier in
  the file);
* a jurisdiction chain deeper than ``MAX_JURISDICTION_DEPTH`` or a cycle of jurisdictions, and a
  unit tree deeper than ``MAX_UNIT_DEPTH`` (the materialised paths are bounded; real trees are
  集团→厂矿→车间→班组, four levels);
* a unit the database holds under one enterprise placed under another: its hazards, tasks and
  risk points stay with the old enterprise and its safety officer would lose authority over them
  (moving units between enterprises is not something a reload may do silently);
* a change that takes away a person's authority over open work they hold — the owner or acceptor
  of an open hazard, the assignee or inspector of an open inspection task, the assignee of an
  active inspection plan, the person responsible for a risk point — whether by removing their role
  or by moving the unit, enterprise or jurisdiction their role covered. Hand the work over first.

People and units not in the file are never deleted by a load; ``roles: []`` removes all roles.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import Connection, or_, select
from sqlalchemy.orm import aliased

from core.errors import InvalidInput
from core.yamlfile import line_of, where
from models.db import utcnow
from models.tables import (
    DEPARTMENT,
    ENTERPRISE,
    INSPECTION_PLAN,
    INSPECTION_TASK,
    JURISDICTION,
    PERSON,
    RISK_POINT,
    ROLE_GRANT,
    UNIT,
)
from models.tables import HAZARD as HAZARD_TABLE
from states.workflows.hazard import HAZARD
from states.workflows.hazard import OPEN_STATES as OPEN_HAZARD
from states.workflows.inspection import INSPECTORS
from states.workflows.inspection import OPEN_STATES as OPEN_TASK
from states.workflows.risk import OPEN_STATES as OPEN_RISK

MAX_UNIT_DEPTH = 20
MAX_JURISDICTION_DEPTH = 16
SHOWN = 3  # codes named per kind of open work; the rest are counted

Grant = tuple[str, str | None, str | None]  # role, unit key, jurisdiction key
UNIT_ROLES = ("inspector", "rectifier", "safety_officer", "unit_head", "principal")
OWNER_ROLES = tuple(dict.fromkeys(HAZARD.events["submit"].roles + HAZARD.events["draft_plan"].roles))
ACCEPTOR_ROLES = HAZARD.events["accept"].roles


@dataclass
class Tree:
    """Where units, enterprises and jurisdictions hang, by key: the database, or it plus the file."""

    unit_parent: dict[str, str | None] = field(default_factory=dict)
    unit_enterprise: dict[str, str] = field(default_factory=dict)
    enterprise_jurisdiction: dict[str, str] = field(default_factory=dict)
    jurisdiction_parent: dict[str, str | None] = field(default_factory=dict)

    def copy(self) -> Tree:
        return Tree(dict(self.unit_parent), dict(self.unit_enterprise),
                    dict(self.enterprise_jurisdiction), dict(self.jurisdiction_parent))


def _chain(start: str | None, parent: dict[str, str | None]) -> list[str]:
    """``start`` and its ancestors (bounded, so a cycle cannot loop)."""
    out: list[str] = []
    node = start
    while node is not None and node not in out and len(out) <= 256:
        out.append(node)
        node = parent.get(node)
    return out


def _covers(grants: set[Grant], unit: str, roles: Sequence[str], tree: Tree) -> bool:
    units = set(_chain(unit, tree.unit_parent))
    enterprise = tree.unit_enterprise.get(unit)
    jurs = set(_chain(tree.enterprise_jurisdiction.get(enterprise or ""), tree.jurisdiction_parent))
    return any(role in roles and ((u is not None and u in units) or (j is not None and j in jurs))
               for role, u, j in grants)


def walk_units(org: Any) -> Iterator[tuple[Any, str, str | None, int, list[Any]]]:
    """Every unit of the file as (unit, enterprise key, parent key, depth, loc), iteratively."""
    for i, e in enumerate(org.enterprises):
        stack = [(u, None, 1, ["enterprises", i, "units", k]) for k, u in enumerate(e.units)]
        stack.reverse()
        while stack:
            unit, parent, depth, loc = stack.pop()
            yield unit, e.id, parent, depth, loc
            children = [(c, unit.id, depth + 1, [*loc, "units", k]) for k, c in enumerate(unit.units)]
            stack.extend(reversed(children))


class Checker:
    def __init__(self, conn: Connection, org: Any, root: yaml.Node | None, source: str) -> None:
        self.conn, self.org, self.root, self.source = conn, org, root, source
        self.problems: list[str] = []

    def at(self, loc: Sequence[Any], message: str) -> None:
        self.problems.append(f"{where(self.source, self.root, loc)}：{message}")

    def line(self, loc: Sequence[Any]) -> int | None:
        return line_of(self.root, loc)

    # ---- the file against itself ----------------------------------------------------------

    def duplicates(self) -> None:
        kinds: list[tuple[str, list[tuple[str, list[Any]]]]] = [
            (label, [(x.id, [section, i]) for i, x in enumerate(getattr(self.org, section))])
            for label, section in (("辖区", "jurisdictions"), ("监管部门", "departments"),
                                   ("企业", "enterprises"), ("人员", "people"))
        ]
        kinds.append(("单位", [(u.id, loc) for u, _, _, _, loc in walk_units(self.org)]))
        for label, entries in kinds:
            first: dict[str, list[Any]] = {}
            for key, loc in entries:
                if key in first:
                    self.at([*loc, "id"], f"{label}编号「{key}」重复（第 {self.line([*first[key], 'id'])} "
                            "行已定义）；每个编号只能定义一次")
                else:
                    first[key] = loc

    # ---- the file against the database ----------------------------------------------------

    def database_tree(self) -> tuple[Tree, set[str]]:
        jt, et, ut, dt = (JURISDICTION, ENTERPRISE,
                          UNIT, DEPARTMENT)
        c = self.conn
        jur = {i: k for i, k in c.execute(select(jt.c.id, jt.c.key))}
        ent = {i: k for i, k in c.execute(select(et.c.id, et.c.key))}
        units = {i: k for i, k in c.execute(select(ut.c.id, ut.c.key))}
        tree = Tree()
        for key, parent in c.execute(select(jt.c.key, jt.c.parent_id)):
            tree.jurisdiction_parent[key] = jur.get(parent)
        for key, jid in c.execute(select(et.c.key, et.c.jurisdiction_id)):
            tree.enterprise_jurisdiction[key] = jur[jid]
        for key, eid, parent in c.execute(select(ut.c.key, ut.c.enterprise_id, ut.c.parent_id)):
            tree.unit_enterprise[key] = ent[eid]
            tree.unit_parent[key] = units.get(parent)
        departments = set(c.execute(select(dt.c.key)).scalars())
        return tree, departments

    def references(self, before: Tree, departments: set[str]) -> Tree:
        """Check every reference and the shapes; returns the tree as it will be after the load."""
        org, after = self.org, before.copy()
        for i, j in enumerate(org.jurisdictions):
            if j.parent is not None and j.parent not in after.jurisdiction_parent:
                self.at(["jurisdictions", i, "parent"], f"上级辖区「{j.parent}」未定义（须先定义）")
            after.jurisdiction_parent[j.id] = j.parent
        for i, j in enumerate(org.jurisdictions):
            chain = _chain(j.id, after.jurisdiction_parent)
            top = after.jurisdiction_parent.get(chain[-1])
            if top is not None:
                self.at(["jurisdictions", i, "parent"], f"辖区「{j.id}」的上级关系形成循环")
            elif len(chain) > MAX_JURISDICTION_DEPTH:
                self.at(["jurisdictions", i, "parent"],
                        f"辖区「{j.id}」的层级超过 {MAX_JURISDICTION_DEPTH} 级")
        departments = departments | {d.id for d in org.departments}
        for i, d in enumerate(org.departments):
            if d.jurisdiction not in after.jurisdiction_parent:
                self.at(["departments", i, "jurisdiction"], f"辖区「{d.jurisdiction}」未定义")
        for i, e in enumerate(org.enterprises):
            if e.jurisdiction not in after.jurisdiction_parent:
                self.at(["enterprises", i, "jurisdiction"], f"辖区「{e.jurisdiction}」未定义")
            after.enterprise_jurisdiction[e.id] = e.jurisdiction
        for unit, enterprise, parent, depth, loc in walk_units(org):
            if depth > MAX_UNIT_DEPTH:
                self.at([*loc, "id"], f"单位「{unit.id}」位于第 {depth} 级，单位树最多 {MAX_UNIT_DEPTH} 级")
            old = before.unit_enterprise.get(unit.id)
            if old is not None and old != enterprise:
                self.at([*loc, "id"], f"单位「{unit.id}」属于企业「{old}」，"
                        f"此文件把它放到企业「{enterprise}」下；单位不能在企业之间移动（其隐患、排查任务和风险点属于原企业，原企业安全管理员会失去"
                        "对它们的管理权限）。如确需调整，请新建单位")
            after.unit_enterprise[unit.id] = enterprise
            after.unit_parent[unit.id] = parent
        for i, p in enumerate(org.people):
            for k, r in enumerate(p.roles):
                loc = ["people", i, "roles", k]
                if r.unit is not None and r.unit not in after.unit_enterprise:
                    self.at([*loc, "unit"], f"单位「{r.unit}」未定义")
                if r.jurisdiction is not None and r.jurisdiction not in after.jurisdiction_parent:
                    self.at([*loc, "jurisdiction"], f"辖区「{r.jurisdiction}」未定义")
                if r.department is not None and r.department not in departments:
                    self.at([*loc, "department"], f"监管部门「{r.department}」未定义")
        return after

    # ---- open work --------------------------------------------------------------------------

    def grants(self, person_ids: list[int] | None) -> dict[str, set[Grant]]:
        gt, pt = ROLE_GRANT, PERSON
        ut, jt = UNIT, JURISDICTION
        query = (select(pt.c.key, gt.c.role, ut.c.key, jt.c.key)
                 .join(pt, pt.c.id == gt.c.person_id)
                 .outerjoin(ut, ut.c.id == gt.c.unit_id)
                 .outerjoin(jt, jt.c.id == gt.c.jurisdiction_id))
        if person_ids is not None:
            query = query.where(gt.c.person_id.in_(person_ids))
        held: dict[str, set[Grant]] = {}
        for person, role, unit, jur in self.conn.execute(query):
            held.setdefault(person, set()).add((role, unit, jur))
        return held

    def open_work(self, person_ids: list[int] | None) -> Iterator[tuple[str, str, str, str, Sequence[str]]]:
        """(person key, label, code, unit key, roles that may act on it) for open work held."""
        pt, ut = PERSON, UNIT
        ht, tt = HAZARD_TABLE, INSPECTION_TASK
        plt, rt = INSPECTION_PLAN, RISK_POINT
        today = utcnow().date()
        sources = [
            (ht, ht.c.owner_id, ht.c.code, ht.c.state.in_(OPEN_HAZARD), "整改责任人：隐患", OWNER_ROLES),
            (ht, ht.c.acceptor_id, ht.c.code, ht.c.state.in_(OPEN_HAZARD), "验收人：隐患", ACCEPTOR_ROLES),
            (tt, tt.c.assignee_id, tt.c.code, tt.c.state.in_(OPEN_TASK), "检查人：排查任务", INSPECTORS),
            (tt, tt.c.inspector_id, tt.c.code, tt.c.state.in_(OPEN_TASK), "检查人：排查任务", INSPECTORS),
            (plt, plt.c.assignee_id, plt.c.key,
             or_(plt.c.active_until.is_(None), plt.c.active_until >= today), "检查人：排查计划",
             INSPECTORS),
            (rt, rt.c.responsible_id, rt.c.code, rt.c.state.in_(OPEN_RISK), "责任人：风险点", UNIT_ROLES),
        ]
        for table, holder, code, is_open, label, roles in sources:
            person, unit = aliased(pt), aliased(ut)
            query = (select(person.c.key, code, unit.c.key)
                     .join(person, person.c.id == holder).join(unit, unit.c.id == table.c.unit_id)
                     .where(is_open).order_by(code))
            if person_ids is not None:
                query = query.where(holder.in_(person_ids))
            for person_key, item, unit_key in self.conn.execute(query):
                yield person_key, label, item, unit_key, roles

    def authority(self, before: Tree, after: Tree) -> None:
        """Refuse a load that would leave someone holding open work they may no longer act on."""
        pt = PERSON
        in_file = {p.id: i for i, p in enumerate(self.org.people)}
        ids = dict(self.conn.execute(select(pt.c.key, pt.c.id).where(pt.c.key.in_(list(in_file)))).all())
        wanted = {p.id: {(r.role, r.unit, r.jurisdiction) for r in p.roles} for p in self.org.people}
        moved = any(before.unit_parent.get(k, v) != v for k, v in after.unit_parent.items()) or any(
            before.enterprise_jurisdiction.get(k, v) != v for k, v in after.enterprise_jurisdiction.items()
        ) or any(before.jurisdiction_parent.get(k, v) != v for k, v in after.jurisdiction_parent.items())
        held_before = self.grants(None if moved else list(ids.values()))
        losing = [k for k in ids if held_before.get(k, set()) - wanted[k]]
        if not moved and not losing:
            return
        scope = None if moved else [ids[k] for k in losing]
        lost: dict[str, dict[str, list[str]]] = {}
        for person, label, code, unit, roles in self.open_work(scope):
            old = held_before.get(person, set())
            new = wanted.get(person, old)
            if _covers(old, unit, roles, before) and not _covers(new, unit, roles, after):
                lost.setdefault(person, {}).setdefault(label, []).append(code)
        for person, kinds in lost.items():
            work = "；".join(
                f"{label} {'、'.join(codes[:SHOWN])}{' 等' if len(codes) > SHOWN else ''}共 {len(codes)} 项"
                for label, codes in kinds.items())
            message = (f"人员「{person}」仍负责未完成的工作，按此文件加载后将无权处理：{work}。"
                       "请先把这些工作转交他人（如重新分派隐患、调整排查计划），或保留其角色")
            if person in in_file:
                self.at(["people", in_file[person], "roles"], message)
            else:
                self.problems.append(f"{self.source}：{message}")


def check(conn: Connection, org: Any, root: yaml.Node | None, source: str) -> None:
    """Raise ``InvalidInput`` listing every problem, or return; reads only."""
    checker = Checker(conn, org, root, source)
    checker.duplicates()
    if not checker.problems:
        before, departments = checker.database_tree()
        after = checker.references(before, departments)
        if not checker.problems:
            checker.authority(before, after)
    if checker.problems:
        raise InvalidInput("；".join(checker.problems), errors=checker.problems)

"""Loading the org file: idempotent reloads, updates, role replacement, subtree role coverage,
and its integrity: duplicate ids, depth, unit moves and open work are checked before any write."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from core.errors import InvalidInput
from models import Person, RoleGrant, Unit
from safeloop import orgcheck, orgfile
from tests.conftest import DEMO_ORG
from tests.helpers import NOW, assign, fire, table_counts, walk_to


def test_reload_is_idempotent(session):
    first = orgfile.load(session, DEMO_ORG)
    assert first.created["unit"] == 10 and first.created["person"] == 11
    before = table_counts(session)
    again = orgfile.load(session, DEMO_ORG)
    assert again.created == {} and again.updated == {}
    after = table_counts(session)
    assert {k: v for k, v in after.items() if k not in ("audit_entry",)} == {
        k: v for k, v in before.items() if k not in ("audit_entry",)}
    assert after["audit_entry"] == before["audit_entry"] + 1  # the load itself is audited


def test_edit_updates_names_paths_and_roles(session, tmp_path: Path):
    orgfile.load(session, DEMO_ORG)
    text = DEMO_ORG.read_text(encoding="utf-8")
    text = text.replace("name: 合成一班", "name: 合成甲班")
    text = text.replace("      - {role: rectifier, unit: jinhua-team-a}\n", "")
    edited = tmp_path / "org.yaml"
    edited.write_text(text, encoding="utf-8")
    report = orgfile.load(session, edited)
    assert report.updated == {"unit": 1}
    assert report.created == {"role_grant_removed": 1}
    unit = session.exec(select(Unit).where(Unit.key == "jinhua-team-a")).one()
    parent = session.exec(select(Unit).where(Unit.key == "jinhua-ws-synth")).one()
    assert unit.name == "合成甲班" and unit.path == f"{parent.path}{unit.id}/"
    sun = session.exec(select(Person).where(Person.key == "sun.banzhang")).one()
    roles = session.exec(select(RoleGrant.role).where(RoleGrant.person_id == sun.id)).all()
    assert roles == ["inspector"]


# ---- integrity: checked before the first write, a refusal changes nothing ------------------------


def _state(session) -> tuple[dict[str, int], tuple[object, ...]]:
    counts = table_counts(session)
    head = tuple(session.connection().execute(text("SELECT seq, hash FROM audit_head")).one())
    session.rollback()
    return counts, head


def _refused(session, path: Path) -> str:
    before = _state(session)
    with pytest.raises(InvalidInput) as err:
        orgfile.load(session, path)
    assert _state(session) == before
    return err.value.message


def _demo(tmp_path: Path, old: str = "", new: str = "", name: str = "org.yaml") -> Path:
    text = DEMO_ORG.read_text(encoding="utf-8")
    if old:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _line(path: Path, needle: str, nth: int = 1) -> int:
    lines = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if needle in line]
    return lines[nth - 1]


def test_duplicate_ids_are_refused_naming_both_lines(session, tmp_path: Path):
    people = _demo(tmp_path, "  - id: zhou.weixiu\n", "  - id: sun.banzhang\n")
    message = _refused(session, people)
    first, second = _line(people, "id: sun.banzhang"), _line(people, "id: sun.banzhang", 2)
    assert (f"org.yaml 第 {second} 行 people.4.id：人员编号「sun.banzhang」重复（第 {first} 行已定义）"
            in message), message
    units = _demo(tmp_path, "id: xinfeng-team-weld", "id: jinhua-team-a", "units.yaml")
    message = _refused(session, units)
    assert f"单位编号「jinhua-team-a」重复（第 {_line(units, 'id: jinhua-team-a')} 行已定义）" in message
    assert session.connection().execute(text("SELECT count(*) FROM person")).scalar() == 0


def test_duplicate_yaml_keys_in_the_org_file_are_refused(session, tmp_path: Path):
    path = _demo(tmp_path, "    name: 孙班长\n", "    name: 孙班长\n    name: 钱班长\n")
    message = _refused(session, path)
    assert f"第 {_line(path, '钱班长')} 行：键「name」重复（第 {_line(path, '孙班长')} 行已出现）" in message


def _deep_org(levels: int) -> str:
    lines = ["jurisdictions: [{id: j, name: 辖区}]", "enterprises:",
             "  - {id: e, name: 企业, industry: 化工, jurisdiction: j, units: [", ]
    tail = []
    for n in range(levels):
        lines.append(f"    {{id: u{n}, name: 单位{n}, tier: team, units: [")
        tail.append("]}")
    return "\n".join(lines) + "".join(tail) + "]}\n"


def test_a_400_level_unit_tree_is_refused_cleanly_and_the_unit_depth_limit_is_named(session,
                                                                                    tmp_path: Path):
    deep = tmp_path / "deep.yaml"
    deep.write_text(_deep_org(400), encoding="utf-8")
    assert "嵌套超过 64 层" in _refused(session, deep)
    limit = orgcheck.MAX_UNIT_DEPTH
    over = tmp_path / "over.yaml"
    over.write_text(_deep_org(limit + 1), encoding="utf-8")
    assert f"单位「u{limit}」位于第 {limit + 1} 级，单位树最多 {limit} 级" in _refused(session, over)
    ok = tmp_path / "ok.yaml"
    ok.write_text(_deep_org(limit), encoding="utf-8")
    assert orgfile.load(session, ok).created["unit"] == limit
    deepest = session.exec(select(Unit).where(Unit.key == f"u{limit - 1}")).one()
    assert deepest.path.count("/") == limit + 1


def test_moving_a_unit_to_another_enterprise_is_refused(session, tmp_path: Path):
    orgfile.load(session, DEMO_ORG)
    moved = _demo(tmp_path, """                  - id: jinhua-team-b
                    name: 合成二班
                    tier: team
""", "")
    text = moved.read_text(encoding="utf-8").replace("""              - id: xinfeng-team-weld
                name: 焊接班
                tier: team
""", """              - id: xinfeng-team-weld
                name: 焊接班
                tier: team
              - id: jinhua-team-b
                name: 合成二班
                tier: team
""")
    moved.write_text(text, encoding="utf-8")
    message = _refused(session, moved)
    assert f"第 {_line(moved, 'id: jinhua-team-b')} 行" in message, message
    assert "单位「jinhua-team-b」属于企业「jinhua」，此文件把它放到企业「xinfeng」下" in message


def test_moving_a_unit_within_its_enterprise_moves_the_paths_below_it(session, tmp_path: Path):
    orgfile.load(session, DEMO_ORG)
    partial = tmp_path / "partial.yaml"  # team-tank is not listed: it must follow its workshop
    partial.write_text("""jurisdictions: [{id: xz-edz, name: 忻州经济开发区}]
enterprises:
  - id: jinhua
    name: 山西晋华化工集团有限公司
    industry: 化工
    jurisdiction: xz-edz
    units:
      - id: jinhua-group
        name: 晋华化工集团公司
        tier: group
        units:
          - id: jinhua-plant2
            name: 储运厂
            tier: plant
            units:
              - {id: jinhua-ws-storage, name: 储运车间, tier: workshop}
""", encoding="utf-8")
    orgfile.load(session, partial)
    keys = {u.id: u.key for u in session.exec(select(Unit)).all()}
    tank = session.exec(select(Unit).where(Unit.key == "jinhua-team-tank")).one()
    assert [keys[int(i)] for i in tank.path.strip("/").split("/")] == [
        "jinhua-group", "jinhua-plant2", "jinhua-ws-storage", "jinhua-team-tank"]


def test_removing_a_role_that_open_work_depends_on_is_refused(org, tmp_path: Path):
    codes = [fire_code(org, walk_to(org, "rectifying")) for _ in range(4)]  # owner: sun.banzhang
    before_roles = "      - {role: rectifier, unit: jinhua-team-a}\n"
    removed = _demo(tmp_path, before_roles, "")
    message = _refused(org, removed)
    assert f"第 {_line(removed, 'id: sun.banzhang') + 3} 行 people.3.roles" in message, message
    assert (f"人员「sun.banzhang」仍负责未完成的工作，按此文件加载后将无权处理：整改责任人：隐患 "
            f"{'、'.join(codes[:3])} 等共 4 项") in message, message
    everything = _demo(tmp_path, "      - {role: inspector, unit: jinhua-team-a}\n" + before_roles,
                       "", "none.yaml")
    everything.write_text(everything.read_text(encoding="utf-8").replace(
        "    name: 孙班长\n    roles:\n", "    name: 孙班长\n    roles: []\n"), encoding="utf-8")
    assert "人员「sun.banzhang」仍负责未完成的工作" in _refused(org, everything)
    # another grant that still covers the work: the role may go
    covered = _demo(tmp_path, before_roles, "      - {role: rectifier, unit: jinhua-ws-synth}\n",
                    "covered.yaml")
    assert orgfile.load(org, covered).created == {"role_grant": 1, "role_grant_removed": 1}


def test_moving_a_unit_away_from_the_role_that_covered_its_open_work_is_refused(org, tmp_path: Path):
    hid = walk_to(org, "reported")
    assign(org, hid, owner="zhou.weixiu")  # rectifier of the whole synthesis workshop
    code = fire_code(org, hid)
    moved = _demo(tmp_path, """                  - id: jinhua-team-a
                    name: 合成一班
                    tier: team
""", "")
    moved.write_text(moved.read_text(encoding="utf-8").replace("""                  - id: jinhua-team-tank
                    name: 罐区班
                    tier: team
""", """                  - id: jinhua-team-tank
                    name: 罐区班
                    tier: team
                  - id: jinhua-team-a
                    name: 合成一班
                    tier: team
"""), encoding="utf-8")
    message = _refused(org, moved)
    assert f"人员「zhou.weixiu」仍负责未完成的工作，按此文件加载后将无权处理：整改责任人：隐患 {code}" \
        in message
    assert "sun.banzhang" not in message  # his roles are on the team itself and move with it


def test_removing_the_designated_acceptor_role_is_refused(org, tmp_path: Path):
    hid = walk_to(org, "reported")
    fire(org, hid, "assign", "li.anquan",
         data={"owner": "sun.banzhang", "acceptor": "zhao.chejian", "deadline": NOW + timedelta(days=7)})
    path = _demo(tmp_path, "      - {role: unit_head, unit: jinhua-ws-synth}\n",
                 "      - {role: unit_head, unit: jinhua-ws-storage}\n")
    message = _refused(org, path)
    code = fire_code(org, hid)
    assert f"人员「zhao.chejian」仍负责未完成的工作，按此文件加载后将无权处理：验收人：隐患 {code}" in message


def fire_code(session, hazard_id: int) -> str:
    code = session.connection().execute(text("SELECT code FROM hazard WHERE id = :i"),
                                        {"i": hazard_id}).scalar_one()
    session.rollback()
    return str(code)

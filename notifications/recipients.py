"""Resolve an outbox recipient spec to people and channels, from the org tables and the routing.

Specs (``models/outbox.py``): ``person:<id>``; ``role:<role>@unit:<unit id>`` = people holding
the role in that unit or an ancestor unit, or -- regulators, auditors -- in the jurisdiction of
its enterprise or an ancestor jurisdiction (the same test as ``states.actors.Actor.roles_at``);
``role:<role>`` = every holder (e.g. all auditors). A person's channels are those in the org
file, those under ``people`` in the routing, and e-mail through the routing's ``email`` URL;
unit and role channels of the routing are added for role specs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from core.errors import InvalidInput
from models.tables import ENTERPRISE, JURISDICTION, PERSON, UNIT
from models.tables import ROLE_GRANT as GRANT
from notifications.routing import Channel, Routing

_SPEC = re.compile(r"^(?:person:(?P<person>\d+)|role:(?P<role>[a-z_]+)(?:@unit:(?P<unit>\d+))?)$")


@dataclass(frozen=True)
class PersonInfo:
    id: int
    key: str
    name: str
    email: str | None
    channels: tuple[str, ...]


@dataclass(frozen=True)
class UnitInfo:
    id: int
    key: str
    name: str
    path: str
    enterprise_id: int


@dataclass
class Resolved:
    """Who a spec reaches and on which channels (deduplicated by URL as written)."""

    people: list[PersonInfo] = field(default_factory=list)
    channels: dict[str, Channel] = field(default_factory=dict)

    def add(self, channel: Channel) -> None:
        self.channels.setdefault(channel.url, channel)

    def merge(self, other: Resolved) -> None:
        known = {p.id for p in self.people}
        self.people += [p for p in other.people if p.id not in known]
        for channel in other.channels.values():
            self.add(channel)


class Directory:
    """The organisation as the dispatcher needs it, read once per dispatch run."""

    def __init__(self, conn: Connection) -> None:
        self.people: dict[int, PersonInfo] = {}
        for pid, key, name, email, channels in conn.execute(select(
                PERSON.c.id, PERSON.c.key, PERSON.c.name, PERSON.c.email, PERSON.c.channels)):
            urls = tuple(json.loads(channels)) if channels else ()
            self.people[pid] = PersonInfo(pid, key, name, email, urls)
        self.by_key = {p.key: p for p in self.people.values()}
        self.units: dict[int, UnitInfo] = {
            r[0]: UnitInfo(*r) for r in conn.execute(select(
                UNIT.c.id, UNIT.c.key, UNIT.c.name, UNIT.c.path, UNIT.c.enterprise_id))}
        self.unit_by_key = {u.key: u for u in self.units.values()}
        self.enterprise_names: dict[int, str] = dict(
            conn.execute(select(ENTERPRISE.c.id, ENTERPRISE.c.name)).all())  # type: ignore[arg-type]
        self.enterprise_jur_path: dict[int, str] = dict(conn.execute(  # type: ignore[arg-type]
            select(ENTERPRISE.c.id, JURISDICTION.c.path)
            .join(JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)).all())
        self.grants: list[tuple[int, str, int | None, int | None]] = [
            tuple(r) for r in conn.execute(select(  # type: ignore[misc]
                GRANT.c.person_id, GRANT.c.role, GRANT.c.unit_id, GRANT.c.jurisdiction_id))]
        self._holders: dict[tuple[str, int | None], list[PersonInfo]] = {}

    def check(self, routing: Routing) -> None:
        """Routing keys must name people and units of the org: a typo is an error, not silence."""
        problems = [f"{routing.source} people.{k}：人员「{k}」不在组织结构中"
                    for k in routing.people if k not in self.by_key]
        problems += [f"{routing.source} units.{k}：单位「{k}」不在组织结构中"
                     for k in routing.units if k not in self.unit_by_key]
        for name, rule in routing.rules.items():
            for spec in (*rule.also, *(s for lv in rule.levels.values() for s in lv.also)):
                key = spec.split(":", 1)[1] if spec.startswith("person:") else \
                    spec.rsplit("@unit:", 1)[1] if "@unit:" in spec else None
                if key is None:
                    continue
                known = self.by_key if spec.startswith("person:") else self.unit_by_key
                if key not in known:
                    problems.append(f"{routing.source} rules.{name}.also：「{spec}」中的「{key}」"
                                    f"不在组织结构中")
        if problems:
            raise InvalidInput("；".join(problems), errors=problems)

    def holders(self, role: str, unit_id: int | None) -> list[PersonInfo]:
        """People holding ``role`` covering the unit (any holder when ``unit_id`` is None)."""
        cache_key = (role, unit_id)
        if cache_key in self._holders:
            return self._holders[cache_key]
        unit = self.units.get(unit_id) if unit_id is not None else None
        if unit_id is not None and unit is None:
            found: list[PersonInfo] = []
        else:
            jur_path = self.enterprise_jur_path.get(unit.enterprise_id, "") if unit else ""
            ids = sorted({
                pid for pid, r, g_unit, g_jur in self.grants if r == role and (
                    unit is None
                    or (g_unit is not None and f"/{g_unit}/" in unit.path)
                    or (g_jur is not None and f"/{g_jur}/" in jur_path))})
            found = [self.people[i] for i in ids if i in self.people]
        self._holders[cache_key] = found
        return found

    def ancestors(self, unit_id: int) -> list[UnitInfo]:
        unit = self.units.get(unit_id)
        if unit is None:
            return []
        ids = [int(p) for p in unit.path.strip("/").split("/") if p]
        return [self.units[i] for i in ids if i in self.units]

    def unit_spec(self, spec: str, entity_unit: int | None) -> str | None:
        """A routing rule spec (keys, ``@unit`` = the entity's unit) as an outbox spec (ids)."""
        if spec.startswith("person:"):
            person = self.by_key.get(spec[7:])
            return f"person:{person.id}" if person else None
        if spec.endswith("@unit"):
            return f"{spec[:-5]}@unit:{entity_unit}" if entity_unit is not None else None
        if "@unit:" in spec:
            role, key = spec.split("@unit:", 1)
            unit = self.unit_by_key.get(key)
            return f"{role}@unit:{unit.id}" if unit else None
        return spec


def person_channels(person: PersonInfo, routing: Routing) -> list[Channel]:
    channels = [Channel(url) for url in person.channels]
    channels += list(routing.people.get(person.key, ()))
    if routing.email and person.email:
        channels.append(Channel(routing.email.replace("{email}", person.email), frozenset({"email"})))
    return channels


def resolve(spec: str, directory: Directory, routing: Routing) -> Resolved:
    """The people and channels an outbox spec reaches (empty if nobody or nothing is routed)."""
    out = Resolved()
    match = _SPEC.match(spec)
    if match is None:
        return out
    if match["person"]:
        person = directory.people.get(int(match["person"]))
        if person is not None:
            out.people.append(person)
            for channel in person_channels(person, routing):
                out.add(channel)
        return out
    role = match["role"]
    unit_id = int(match["unit"]) if match["unit"] else None
    for person in directory.holders(role, unit_id):
        out.people.append(person)
        for channel in person_channels(person, routing):
            out.add(channel)
    for channel in routing.roles.get(role, ()):
        out.add(channel)
    if unit_id is not None:
        for unit in directory.ancestors(unit_id):
            for channel in routing.units.get(unit.key, ()):
                if channel.roles is None or role in channel.roles:
                    out.add(channel)
    return out


def resolve_all(specs: Iterable[str], directory: Directory, routing: Routing) -> Resolved:
    out = Resolved()
    for spec in specs:
        out.merge(resolve(spec, directory, routing))
    return out

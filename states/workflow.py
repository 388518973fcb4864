"""Workflows as data: states, events, who may fire them, guards, effects and notifications.

A ``Workflow`` builds its ``transitions`` Machine once (``model=None``) and fires events on a
lightweight ``Subject`` holding the loaded row, so no per-row machine is ever created. Guards and
effects run outside the machine's callbacks: the machine only decides the destination state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table
from transitions import Machine, MachineError

from core.errors import InvalidInput
from core.messages import zh_error
from core.rules import Rules

ANY_OTHER = "="  # reflexive transition: stay in the same state
# Documented input limits (README "输入限制"): identifiers, free text, whole event input.
MAX_ID_CHARS = 64
MAX_TEXT_CHARS = 4000
# Event parameters refuse unknown fields, trim text, cap every string and refuse non-finite
# numbers (1e400, nan, inf), in every workflow.
STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, str_max_length=MAX_TEXT_CHARS,
                    allow_inf_nan=False)


class EmptyParams(BaseModel):
    """For events that take no parameters: anything given is refused by name."""

    model_config = STRICT


class EvidenceRef(BaseModel):
    """A file in the evidence store, named by its content hash; the engine checks it is there."""

    model_config = STRICT
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    name: str = Field(max_length=255)
    size: int = Field(ge=0)
    path: str | None = Field(default=None, max_length=300)  # relative to the storage folder


@dataclass
class Subject:
    """The entity as the machine sees it: current state, current row, and the event's input."""

    state: str | None
    row: Mapping[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    comment: str | None = None


@dataclass(frozen=True)
class Context:
    """Who fires, in which role, when, and read access for guards and effects.

    ``conn`` is the transaction's connection (read-only use); ``memo`` is a per-batch cache for
    immutable lookups such as a checklist template's items; ``rules`` the rules in force (zone,
    calendar, risk bands, listing clocks …) the entry point set on the session, which guards and
    effects read instead of the settings (DOMAIN.md's defaults when a caller gives none).
    """

    actor: str
    actor_id: int | None
    role: str
    as_of: datetime
    resolve_person: Callable[[str], int]
    conn: Any = None
    memo: dict[Any, Any] = field(default_factory=dict)
    # The roles a person holds where this entity lives (for checks on people an event names).
    roles_of: Callable[[str], set[str]] | None = None
    # The moment rules compare deadlines with: the later of the business time and the recording
    # time, unless the caller explicitly simulates another time (demo, imports, replays).
    reference_time: datetime | None = None
    rules: Rules = field(default_factory=Rules)

    @property
    def now(self) -> datetime:
        return self.reference_time or self.as_of


@dataclass(frozen=True)
class Spawn:
    """An entity another workflow creates in the same transaction (e.g. a failed item's hazard)."""

    workflow: Workflow
    data: dict[str, Any]


Guard = Callable[[Subject, Context], str | None]  # returns a zh-CN refusal, or None if it passes
Effect = Callable[[Subject, Context], dict[str, Any]]  # returns column changes
Notify = Callable[[Subject, Context], list[str]]  # returns recipient specs for the outbox
Spawner = Callable[[Subject, Context], "list[Spawn]"]  # entities to create with the event
Cascader = Callable[[Subject, Context], "list[Cascade]"]  # events it fires on other entities
# Facts computed at fire time that the audit row must carry (e.g. a risk's old and new grade);
# the keys must be optional fields of the event's params so replay can read them back.
Annotator = Callable[[Subject, Context], dict[str, Any]]


@dataclass(frozen=True)
class Cascade:
    """An event fired on another entity in the same transaction, by the system actor."""

    workflow: Workflow
    entity: int
    event: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Branch:
    """One possible destination; the first branch whose ``when`` holds is taken."""

    dest: str
    when: Callable[[Subject], bool] | None = None


@dataclass(frozen=True)
class EventRule:
    name: str
    label: str
    sources: tuple[str, ...]
    branches: tuple[Branch, ...]
    roles: tuple[str, ...]
    params: type[BaseModel] | None = None
    guards: tuple[Guard, ...] = ()
    effect: Effect | None = None
    notify: Notify | None = None
    requires_reason: bool = False
    spawn: Spawner | None = None
    cascade: Cascader | None = None
    annotate: Annotator | None = None
    # Params fields that ``annotate`` fills in (replay reads them back): never taken from input.
    computed: tuple[str, ...] = ()


@dataclass
class Workflow:
    name: str
    label: str
    table: Table
    code_prefix: str
    states: dict[str, str]  # name -> zh-CN label
    terminal: frozenset[str]
    create_event: EventRule
    events: dict[str, EventRule]
    # True when rows are created set-wise (one audit row per batch, ``batch`` column) rather
    # than one create event each: replay then starts them in the create event's state.
    materialized: bool = False
    # "unit": rows carry unit_id/enterprise_id (roles from the unit tree and jurisdiction);
    # "jurisdiction": rows carry jurisdiction_id only (regulators' own plans).
    scope: str = "unit"
    # What each level of the ``escalate`` event means (zh-CN), for the notifications' payload.
    level_labels: Mapping[int, str] = field(default_factory=dict)

    def __hash__(self) -> int:  # workflows are singletons: identity is enough
        return id(self)

    @cached_property
    def machine(self) -> Machine:
        machine = Machine(
            model=None,
            states=list(self.states),
            initial=None,
            send_event=True,
            auto_transitions=False,
        )
        for rule in self.events.values():
            for source in rule.sources:
                for branch in rule.branches:
                    dest = source if branch.dest == ANY_OTHER else branch.dest
                    conditions = [_condition(branch.when)] if branch.when else []
                    machine.add_transition(rule.name, source, dest, conditions=conditions)
        return machine

    def payload_labels(self, rule: EventRule, data: Mapping[str, Any]) -> dict[str, str]:
        """The labels an outbox payload carries so ``notifications/`` needs no workflow module:
        ``entity_label`` and, for an escalation, ``level_label``."""
        labels = {"entity_label": self.label}
        level = data.get("level") if rule.name == "escalate" else None
        if level and level in self.level_labels:
            labels["level_label"] = self.level_labels[level]
        return labels

    def state_label(self, state: str | None) -> str:
        return self.states.get(state or "", state or "（无）")

    def event_label(self, event: str) -> str:
        rule = self.events.get(event)
        return rule.label if rule else event

    def events_from(self, state: str | None) -> list[EventRule]:
        return [rule for rule in self.events.values() if state in rule.sources]

    def destination(self, subject: Subject, event: str) -> str | None:
        """Run the machine for ``event`` on ``subject``; return the new state or None if refused."""
        try:
            moved = self.machine.events[event].trigger(subject)
        except MachineError:
            return None
        return subject.state if moved else None


def _condition(when: Callable[[Subject], bool]) -> Callable[[Any], bool]:
    return lambda event_data: when(event_data.model)


def validate_params(rule: EventRule, data: Mapping[str, Any]) -> BaseModel | None:
    """Validate an event's input with its params model; errors name the field."""
    if rule.params is None:
        if data:
            raise InvalidInput(
                f"操作「{rule.label}」不接受参数：{', '.join(sorted(data))}", fields=sorted(data)
            )
        return None
    try:
        return rule.params.model_validate(dict(data))
    except Exception as exc:  # pydantic.ValidationError
        errors = getattr(exc, "errors", lambda: [])()
        parts = [(f"{'.'.join(str(p) for p in e['loc'])}：" if e["loc"] else "") + zh_error(e)
                 for e in errors] or [str(exc)]
        raise InvalidInput(
            f"操作「{rule.label}」的参数有误：" + "；".join(parts),
            fields=[".".join(str(p) for p in e["loc"]) for e in errors],
        ) from exc

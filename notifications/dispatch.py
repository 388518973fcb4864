"""Dispatch the outbox: claim due rows, resolve, render, send to every channel, record, retry.

Flow of one batch:
1. claim due rows with a lease (``store.claim``), plus the rest of any digest they belong to;
2. due-soon reminders of one person and one local day become one digest message (held until the
   digest hour, ``notify_digest_time``, if it has not come yet); a digest's members are fixed
   when it is formed, so retries resend the same digest;
3. each message is resolved to channels (``recipients``), rendered (``templates``) and sent to
   each channel separately in a thread pool; a channel that already has it (its delivery key is
   recorded as sent) is skipped;
4. results are recorded every fraction of a second: each channel's delivery row, and for every
   message whose sends are all back, ``sent`` -- or another attempt after an exponential
   backoff (``next_attempt_at``) -- or ``dead`` after ``notify_max_attempts``, which queues an
   alert (``notify.dead``) to the auditors and the routing's ``alerts`` channels.
Transitions never wait for any of this: the engine only wrote the outbox rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_
from sqlalchemy.engine import Engine

from core.errors import InvalidInput
from models.db import as_utc
from models.enums import HazardGrade
from notifications import channels, store
from notifications.recipients import Directory, PersonInfo, Resolved, resolve_all
from notifications.routing import Channel, Routing, expand
from notifications.templates import (
    DIGEST_PREFIX,
    Rendered,
    TemplateSet,
    base_context,
    local_time,
    plain,
)
from states.registry import WORKFLOWS
from states.workflows.hazard import ESCALATION_LEVELS

OUT = store.OUT
ALERT_TEMPLATES = frozenset({"notify.dead", "notify.unrouted"})
FLUSH_SECONDS = 0.25
FLUSH_RESULTS = 200


@dataclass(frozen=True)
class DispatchConfig:
    max_attempts: int = 8
    backoff_s: float = 30.0
    backoff_max_s: float = 3600.0
    concurrency: int = 16
    batch_size: int = 200
    timeout_s: float = 10.0
    lease_s: float = 300.0
    digest_time: str | None = "08:00"
    zone: str = "Asia/Shanghai"
    run_budget_s: float | None = 50.0
    digest_items: int = 20

    @classmethod
    def from_settings(cls, settings: Any) -> DispatchConfig:
        digest = settings.notify_digest_time or None
        if digest is not None:
            try:
                dtime.fromisoformat(digest)
            except ValueError as exc:
                raise InvalidInput(f"SAFELOOP_NOTIFY_DIGEST_TIME「{digest}」应为 HH:MM") from exc
        return cls(
            max_attempts=settings.notify_max_attempts, backoff_s=settings.notify_backoff_s,
            backoff_max_s=settings.notify_backoff_max_s,
            concurrency=settings.notify_concurrency, batch_size=settings.notify_batch_size,
            timeout_s=settings.notify_timeout_s, lease_s=settings.notify_lease_s,
            digest_time=settings.notify_digest_time or None, zone=settings.timezone,
            run_budget_s=settings.notify_run_budget_s,
        )

    def backoff(self, attempts: int) -> timedelta:
        """Wait before attempt ``attempts + 1``: base, 2×base, 4×base … capped."""
        return timedelta(seconds=min(self.backoff_s * 2 ** max(0, attempts - 1),
                                     self.backoff_max_s))


@dataclass
class DispatchReport:
    batches: int = 0
    claimed: int = 0
    messages: int = 0
    delivered: int = 0  # messages whose every channel has it
    sends_ok: int = 0
    sends_failed: int = 0
    retrying: int = 0
    dead: int = 0
    unrouted: int = 0
    skipped: int = 0
    held: int = 0
    digests: int = 0
    alerts: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Clock:
    """``as_of`` advancing with the wall clock: leases and backoff stay right in a long run."""

    def __init__(self, as_of: datetime) -> None:
        self.start = as_utc(as_of) or datetime.now(UTC)
        self.t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)


@dataclass
class Message:
    """One thing to send: an outbox row, or a digest of several; sent to each channel."""

    key: str
    rows: list[dict[str, Any]]
    template: str
    specs: list[str]
    rendered: Rendered | None = None
    channels: list[Channel] = field(default_factory=list)
    people: list[PersonInfo] = field(default_factory=list)
    outstanding: int = 0
    failures: list[str] = field(default_factory=list)
    covers: str | None = None

    @property
    def lead(self) -> dict[str, Any]:
        return self.rows[0]


def delivery_key(message_key: str, url: str) -> str:
    return hashlib.sha256(f"{message_key}\n{url}".encode()).hexdigest()


def dispatcher_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    """Sends what the outbox holds; several may run at once (leases keep them apart)."""

    def __init__(self, engine: Engine, routing: Routing, templates: TemplateSet,
                 config: DispatchConfig | None = None, owner: str | None = None) -> None:
        self.engine = engine
        self.routing = routing
        self.templates = templates
        self.config = config or DispatchConfig()
        self.owner = owner or dispatcher_id()
        self.zone = ZoneInfo(self.config.zone)
        self.lease = timedelta(seconds=self.config.lease_s)

    # ---- the loop ---------------------------------------------------------------------------

    def run(self, as_of: datetime | None = None, *, max_batches: int | None = None) -> DispatchReport:
        """Dispatch until nothing is due, the batch limit or the time budget is reached."""
        clock = Clock(as_of or datetime.now(UTC))
        report = DispatchReport()
        started = time.monotonic()
        with self.engine.connect() as conn:
            directory = Directory(conn)
            conn.rollback()
            directory.check(self.routing)
            with ThreadPoolExecutor(max_workers=self.config.concurrency,
                                    thread_name_prefix="notify") as pool:
                while max_batches is None or report.batches < max_batches:
                    budget = self.config.run_budget_s
                    if budget is not None and time.monotonic() - started > budget:
                        break
                    rows = store.claim(conn, now=clock.now(), owner=self.owner, lease=self.lease,
                                       limit=self.config.batch_size)
                    if not rows:
                        break
                    rows += self._claim_siblings(conn, rows, clock)
                    report.batches += 1
                    report.claimed += len(rows)
                    self._batch(conn, pool, directory, rows, clock, report)
        report.seconds = time.monotonic() - started
        return report

    def _claim_siblings(self, conn: Connection, rows: list[dict[str, Any]],
                        clock: Clock) -> list[dict[str, Any]]:
        """The other due members of digests in this batch, so a digest is never split."""
        frozen = {r["digest_of"] for r in rows if r["digest_of"] is not None}
        open_groups = {(r["recipient"], r["template"]) for r in rows
                       if r["digest_of"] is None and self._digestible(r)}
        found: list[dict[str, Any]] = []
        if frozen:
            found += store.claim(conn, now=clock.now(), owner=self.owner, lease=self.lease,
                                 limit=None, where=OUT.c.digest_of.in_(sorted(frozen)))
        for recipient, template in sorted(open_groups):
            found += store.claim(conn, now=clock.now(), owner=self.owner, lease=self.lease,
                                 limit=None, where=and_(OUT.c.recipient == recipient,
                                                        OUT.c.template == template,
                                                        OUT.c.digest_of.is_(None)))
        return found

    def _digestible(self, row: dict[str, Any]) -> bool:
        rule = self.routing.rule(row["template"])
        return (rule.digest and row["recipient"].startswith("person:")
                and self.templates.has(DIGEST_PREFIX + row["event"]))

    # ---- one batch --------------------------------------------------------------------------

    def _batch(self, conn: Connection, pool: ThreadPoolExecutor, directory: Directory,
               rows: list[dict[str, Any]], clock: Clock, report: DispatchReport) -> None:
        facts = store.audit_facts(conn, [r["audit_seq"] for r in rows])
        entities = self._entities(conn, rows)
        messages, skipped = self._messages(conn, rows, clock, report)
        outcomes: list[dict[str, Any]] = []
        now = clock.now()
        for row in skipped:
            outcomes.append(_outcome(row, "skipped", row["attempts"], None, "路由规则已关闭该类通知",
                                     None))
        report.skipped += len(skipped)
        unrouted: list[dict[str, Any]] = []
        for message in messages:
            resolved = self._resolve(message, directory, entities)
            message.channels = list(resolved.channels.values())
            if not message.channels:
                unrouted += message.rows
                for row in message.rows:
                    outcomes.append(_outcome(row, "unrouted", row["attempts"], None,
                                             f"没有可用的通知渠道（接收人 {row['recipient']}）", None))
                continue
            message.people = resolved.people
        report.unrouted += len(unrouted)
        alerts = self._unrouted_alert(unrouted, now)
        report.alerts += len(alerts)
        if outcomes or alerts:
            store.record(conn, [], outcomes, alerts, self.owner)
        routed = [m for m in messages if m.channels]
        report.messages += len(routed)

        def render(message: Message) -> Rendered:
            return self._render(message, directory, message.people, facts, entities, clock)

        self._send(conn, pool, routed, render, clock, report)

    def _entities(self, conn: Connection,
                  rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
        wanted: dict[str, list[int]] = {}
        for r in rows:
            if r["entity_type"] in WORKFLOWS:
                wanted.setdefault(r["entity_type"], []).append(r["entity_id"])
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for kind, ids in wanted.items():
            for eid, row in store.rows_by_id(conn, WORKFLOWS[kind].table, ids).items():
                found[(kind, eid)] = row
        return found

    def _messages(self, conn: Connection, rows: list[dict[str, Any]], clock: Clock,
                  report: DispatchReport) -> tuple[list[Message], list[dict[str, Any]]]:
        """Group rows into messages: singles, fixed digests, new digests (or hold them)."""
        messages: list[Message] = []
        skipped: list[dict[str, Any]] = []
        frozen: dict[int, list[dict[str, Any]]] = {}
        fresh: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for row in rows:
            if not self.routing.rule(row["template"]).enabled:
                skipped.append(row)
            elif row["digest_of"] is not None:
                frozen.setdefault(row["digest_of"], []).append(row)
            elif self._digestible(row):
                day = as_utc(row["created_at"]).astimezone(self.zone).date().isoformat()  # type: ignore[union-attr]
                fresh.setdefault((row["recipient"], row["template"], day), []).append(row)
            else:
                messages.append(Message(f"outbox:{row['id']}", [row], row["template"],
                                        [row["recipient"]]))
        for lead, members in frozen.items():
            messages.append(self._digest(lead, members))
        now = clock.now()
        for (_recipient, _template, day), members in fresh.items():
            due = self._digest_due(day)
            if due is not None and now < due:
                store.release(conn, members, self.owner, due)
                report.held += len(members)
                continue
            if len(members) == 1:
                row = members[0]
                messages.append(Message(f"outbox:{row['id']}", [row], row["template"],
                                        [row["recipient"]]))
                continue
            lead = min(r["id"] for r in members)
            store.freeze_digest(conn, lead, [r["id"] for r in members])
            for r in members:
                r["digest_of"] = lead
            messages.append(self._digest(lead, members))
        report.digests += sum(1 for m in messages if m.key.startswith("digest:"))
        return messages, skipped

    def _digest(self, lead: int, members: list[dict[str, Any]]) -> Message:
        members.sort(key=lambda r: r["id"])
        first = members[0]
        return Message(f"digest:{lead}", members, DIGEST_PREFIX + first["event"],
                       [first["recipient"]], covers=json.dumps([r["id"] for r in members]))

    def _digest_due(self, day: str) -> datetime | None:
        if not self.config.digest_time:
            return None
        at = dtime.fromisoformat(self.config.digest_time)
        local = datetime.combine(datetime.fromisoformat(day).date(), at, tzinfo=self.zone)
        return local.astimezone(UTC)

    def _resolve(self, message: Message, directory: Directory,
                 entities: dict[tuple[str, int], dict[str, Any]]) -> Resolved:
        lead = message.lead
        rule = self.routing.rule(lead["template"])
        entity = entities.get((lead["entity_type"], lead["entity_id"]), {})
        unit_id = entity.get("unit_id")
        extra = list(rule.also)
        tags = set(rule.tags)
        if rule.levels:
            level = _payload(lead).get("level") or entity.get("escalation_level")
            sub = rule.levels.get(int(level)) if level else None
            if sub is not None:
                extra += sub.also
                tags |= sub.tags
        specs = list(message.specs)
        for spec in extra:
            converted = directory.unit_spec(spec, unit_id)
            if converted and converted not in specs:
                specs.append(converted)
        resolved = resolve_all(specs, directory, self.routing)
        if lead["template"] in ALERT_TEMPLATES:
            for channel in self.routing.alerts:
                resolved.add(channel)
        if tags:
            resolved.channels = {u: c for u, c in resolved.channels.items() if c.tags & tags}
        return resolved

    def preview(self, row: dict[str, Any], as_of: datetime | None = None) -> Rendered:
        """The message a row makes (its whole digest if it is in one), rendered as now."""
        clock = Clock(as_of or datetime.now(UTC))
        with self.engine.connect() as conn:
            directory = Directory(conn)
            rows = store.digest_members(conn, row["digest_of"]) if row["digest_of"] else [row]
            conn.rollback()
            facts = store.audit_facts(conn, [r["audit_seq"] for r in rows])
            entities = self._entities(conn, rows)
        message = (self._digest(row["digest_of"], rows) if row["digest_of"] else
                   Message(f"outbox:{row['id']}", rows, row["template"], [row["recipient"]]))
        resolved = self._resolve(message, directory, entities)
        return self._render(message, directory, resolved.people, facts, entities, clock)

    # ---- rendering --------------------------------------------------------------------------

    def _context(self, row: dict[str, Any], directory: Directory,
                 facts: dict[int, dict[str, Any]],
                 entities: dict[tuple[str, int], dict[str, Any]], clock: Clock) -> dict[str, Any]:
        payload = _payload(row)
        fact = facts.get(row["audit_seq"])
        if fact is not None and (fact["entity_type"], fact["entity_id"], fact["event"]) != (
                row["entity_type"], row["entity_id"], row["event"]):
            fact = None  # e.g. a checkpoint points at the chain's head, not at its own event
        entity = entities.get((row["entity_type"], row["entity_id"]), {})
        workflow = WORKFLOWS.get(row["entity_type"])
        data = dict(fact["data"]) if fact else {}
        actor = payload.get("actor") or (fact["actor"] if fact else None)
        person = directory.by_key.get(actor) if actor else None
        unit = directory.units.get(entity.get("unit_id")) if entity.get("unit_id") else None
        deadline = payload.get("deadline") or entity.get("deadline")
        if deadline is None and entity.get("period_end") is not None:
            deadline = as_utc(entity["period_end"]) - timedelta(seconds=1)  # type: ignore[operator]
        level = data.get("level") if row["event"] == "escalate" else None
        grade = entity.get("grade")
        context = {k: v for k, v in payload.items() if k not in ("deadline",)}
        context.update(
            entity_type=row["entity_type"], entity_label=workflow.label if workflow else None,
            actor=actor,
            actor_name=person.name if person else ("系统" if actor in (None, "system") else actor),
            deadline=local_time(deadline, self.config.zone) or None,
            comment=fact["comment"] if fact else None, data=data, level=level,
            level_label=ESCALATION_LEVELS.get(level) if level else None,
            grade=grade, grade_label=_grade_label(grade),
            unit=unit.key if unit else None, unit_name=unit.name if unit else None,
            enterprise_name=directory.enterprise_names.get(entity.get("enterprise_id")),  # type: ignore[arg-type]
            now=local_time(clock.now(), self.config.zone), outbox_id=row["id"],
            payload=payload,
        )
        if workflow is not None:
            context.setdefault("state_label", workflow.state_label(payload.get("state")))
            context.setdefault("event_label", workflow.event_label(row["event"]))
        return context

    def _render(self, message: Message, directory: Directory, people: list[PersonInfo],
                facts: dict[int, dict[str, Any]],
                entities: dict[tuple[str, int], dict[str, Any]], clock: Clock) -> Rendered:
        single = people[0] if len(people) == 1 else None
        who = {"recipient": {"key": single.key, "name": single.name}} if single else {}
        if single:
            who["as_"] = single.key  # type: ignore[assignment]
        contexts = [self._context(r, directory, facts, entities, clock) for r in message.rows]
        if len(message.rows) == 1 and not message.key.startswith("digest:"):
            return self._safe_render(message.template, base_context(**{**contexts[0], **who}))
        items = [{"code": c.get("code"), "title": c.get("title"), "deadline": c.get("deadline"),
                  "state_label": c.get("state_label")} for c in contexts]
        day = as_utc(message.lead["created_at"]).astimezone(self.zone).date().isoformat()  # type: ignore[union-attr]
        shown = min(len(items), self.config.digest_items)
        while True:
            context = base_context(**{
                "items": items[:shown], "count": len(items), "more": len(items) - shown,
                "day": day, "now": local_time(clock.now(), self.config.zone), **who})
            rendered = self._safe_render(message.template, context)
            size = len(f"{rendered.title}\n{plain(rendered.body)}".encode())
            if size <= channels.IM_LIMIT_BYTES or shown <= 1:
                return rendered
            shown -= 1

    def _safe_render(self, name: str, context: dict[str, Any]) -> Rendered:
        """A template that fails at run time falls back to the generic one: send, don't drop."""
        try:
            return self.templates.render(name, context)
        except Exception:
            return self.templates.render("default", context)

    # ---- sending and recording --------------------------------------------------------------

    def _send(self, conn: Connection, pool: ThreadPoolExecutor, messages: list[Message],
              render: Callable[[Message], Rendered], clock: Clock,
              report: DispatchReport) -> None:
        """Render and submit each message's sends (the pool starts while the rest render), then
        record results as they come back, flushing every ``FLUSH_SECONDS``."""
        keys = {(m.key, c.url): delivery_key(m.key, c.url) for m in messages for c in m.channels}
        already = store.sent_keys(conn, list(keys.values()))
        futures: dict[Future[channels.SendResult], tuple[Message, Channel, datetime]] = {}
        finished: queue.SimpleQueue[Future[channels.SendResult]] = queue.SimpleQueue()
        deliveries: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []

        def failed_now(message: Message, channel: Channel, started: datetime, error: str) -> None:
            deliveries.append(self._delivery(message, channel, keys, started,
                                             channels.SendResult(False, error, 0)))
            report.sends_failed += 1
            message.failures.append(error)
            message.outstanding -= 1
            if message.outstanding == 0:
                outcomes.extend(self._finish(message, clock.now(), report))

        for message in messages:
            todo = [c for c in message.channels if keys[(message.key, c.url)] not in already]
            message.outstanding = len(todo)
            if not todo:
                outcomes += self._finish(message, clock.now(), report)
                continue
            message.rendered = render(message)
            text_body = plain(message.rendered.body)
            for channel in todo:
                started = clock.now()
                try:
                    url = expand(channel.url)
                except InvalidInput as exc:
                    failed_now(message, channel, started, exc.message)
                    continue
                body = message.rendered.body if channel.markdown else text_body
                future = pool.submit(channels.send, url, message.rendered.title, body,
                                     markdown=channel.markdown, timeout=self.config.timeout_s)
                futures[future] = (message, channel, started)
                future.add_done_callback(finished.put)
        last_flush = lease_renewed = time.monotonic()
        while futures or deliveries or outcomes:
            done: list[Future[channels.SendResult]] = []
            if futures:
                try:
                    done.append(finished.get(timeout=FLUSH_SECONDS))
                    while True:
                        done.append(finished.get_nowait())
                except queue.Empty:
                    pass
            for future in done:
                message, channel, started = futures.pop(future)
                result = future.result()
                deliveries.append(self._delivery(message, channel, keys, started, result))
                if result.ok:
                    report.sends_ok += 1
                else:
                    report.sends_failed += 1
                    message.failures.append(f"{channels.mask(channel.url)}: {result.error}")
                message.outstanding -= 1
                if message.outstanding == 0:
                    outcomes += self._finish(message, clock.now(), report)
            due = (time.monotonic() - last_flush >= FLUSH_SECONDS
                   or len(deliveries) >= FLUSH_RESULTS or not futures)
            if due and (deliveries or outcomes):
                alerts = [a for o in outcomes if (a := o.pop("_alert", None))]
                report.alerts += len(alerts)
                store.record(conn, deliveries, outcomes, alerts, self.owner)
                deliveries, outcomes = [], []
                last_flush = time.monotonic()
            if futures and time.monotonic() - lease_renewed > self.config.lease_s / 3:
                open_ids = sorted({r["id"] for m, _c, _s in futures.values() for r in m.rows})
                store.extend_lease(conn, open_ids, self.owner, clock.now() + self.lease)
                lease_renewed = time.monotonic()

    def _delivery(self, message: Message, channel: Channel, keys: dict[tuple[str, str], str],
                  started: datetime, result: channels.SendResult) -> dict[str, Any]:
        finished = started + timedelta(seconds=result.seconds)
        return {
            "key": keys[(message.key, channel.url)], "outbox_id": message.lead["id"],
            "covers": message.covers, "channel": channels.mask(channel.url),
            "scheme": channel.scheme[:32], "status": "sent" if result.ok else "failed",
            "attempts": 1, "last_error": result.error, "first_attempt_at": started,
            "last_attempt_at": finished, "sent_at": finished if result.ok else None,
        }

    def _finish(self, message: Message, now: datetime,
                report: DispatchReport) -> list[dict[str, Any]]:
        """The outbox outcome of every row of a message whose sends are all back."""
        if not message.failures:
            report.delivered += 1
            return [_outcome(r, "sent", r["attempts"] + 1, None, None, now) for r in message.rows]
        attempts = max(r["attempts"] for r in message.rows) + 1
        error = "；".join(message.failures)[:4000]
        if attempts >= self.config.max_attempts:
            report.dead += 1
            outcomes = [_outcome(r, "dead", attempts, None, error, None) for r in message.rows]
            if message.lead["template"] not in ALERT_TEMPLATES:
                outcomes[0]["_alert"] = self._dead_alert(message, attempts, error, now)
            return outcomes
        report.retrying += 1
        retry_at = now + self.config.backoff(attempts)
        return [_outcome(r, "pending", attempts, retry_at, error, None) for r in message.rows]

    def _dead_alert(self, message: Message, attempts: int, error: str,
                    now: datetime) -> dict[str, Any]:
        lead = message.lead
        payload = {"dead_id": lead["id"], "dead_template": lead["template"],
                   "dead_code": _payload(lead).get("code"), "dead_recipient": lead["recipient"],
                   "attempts": attempts, "last_error": error[:500]}
        return _alert_row(lead["audit_seq"], lead["id"], "dead", "notify.dead", payload, now)

    def _unrouted_alert(self, rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        rows = [r for r in rows if r["template"] not in ALERT_TEMPLATES]
        if not rows:
            return []
        items = [{"id": r["id"], "template": r["template"], "code": _payload(r).get("code"),
                  "recipient": r["recipient"]} for r in rows[:10]]
        payload = {"count": len(rows), "items": items, "more": max(0, len(rows) - 10)}
        return [_alert_row(rows[0]["audit_seq"], rows[0]["id"], "unrouted", "notify.unrouted",
                           payload, now)]


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(row.get("payload") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _grade_label(grade: Any) -> str | None:
    try:
        return HazardGrade(grade).label if grade else None
    except ValueError:
        return None


def _outcome(row: dict[str, Any], status: str, attempts: int, retry_at: datetime | None,
             error: str | None, sent_at: datetime | None) -> dict[str, Any]:
    return {"b_id": row["id"], "v_status": status, "v_attempts": attempts, "v_next": retry_at,
            "v_error": error, "v_sent": sent_at}


def _alert_row(audit_seq: int, outbox_id: int, event: str, template: str,
               payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"created_at": now, "audit_seq": audit_seq, "entity_type": "outbox",
            "entity_id": outbox_id, "event": event, "recipient": "role:auditor",
            "template": template, "payload": json.dumps(payload, ensure_ascii=False),
            "status": "pending", "attempts": 0}


def from_settings(engine: Engine, settings: Any, *, owner: str | None = None) -> Dispatcher:
    """A dispatcher with the configured templates, routing and limits (files checked here)."""
    from notifications import routing as routing_mod
    from notifications import templates as templates_mod

    templates = templates_mod.load_cached(settings.notify_templates, settings.timezone)
    routing = routing_mod.load_cached(settings.notify_routing, templates.names())
    return Dispatcher(engine, routing, templates, DispatchConfig.from_settings(settings), owner)

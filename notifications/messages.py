"""Which outbox rows go out together: one message per row, or one digest per person and day.

Due-soon reminders of one person and one local day become one digest, held until the digest
hour (``notify_digest_time``) if it has not come yet. A digest's members are fixed when it is
formed (``digest_of``), so a retry resends the same digest and a batch never splits one. The
grouping rules live here, apart from rendering and sending, so they read in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_

from models.db import as_utc
from notifications import store
from notifications.config import Clock, DispatchConfig, DispatchReport
from notifications.recipients import PersonInfo
from notifications.routing import Channel, Routing
from notifications.templates import DIGEST_PREFIX, Rendered, TemplateSet

OUT = store.OUT


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


def payload_of(row: dict[str, Any]) -> dict[str, Any]:
    """The row's payload as a dict; a payload that is not a JSON object counts as empty."""
    try:
        value = json.loads(row.get("payload") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def single(row: dict[str, Any]) -> Message:
    return Message(f"outbox:{row['id']}", [row], row["template"], [row["recipient"]])


def digest(lead: int, members: list[dict[str, Any]]) -> Message:
    """The digest led by outbox row ``lead``, its members in id order."""
    members.sort(key=lambda r: r["id"])
    first = members[0]
    return Message(f"digest:{lead}", members, DIGEST_PREFIX + first["event"],
                   [first["recipient"]], covers=json.dumps([r["id"] for r in members]))


class Grouper:
    """Forms a batch's messages; claims and releases rows under the dispatcher's lease."""

    def __init__(self, routing: Routing, templates: TemplateSet, config: DispatchConfig,
                 owner: str, lease: timedelta) -> None:
        self.routing = routing
        self.templates = templates
        self.digest_time = config.digest_time
        self.zone = ZoneInfo(config.zone)
        self.owner = owner
        self.lease = lease

    def digestible(self, row: dict[str, Any]) -> bool:
        rule = self.routing.rule(row["template"])
        return (rule.digest and row["recipient"].startswith("person:")
                and self.templates.has(DIGEST_PREFIX + row["event"]))

    def claim_siblings(self, conn: Connection, rows: list[dict[str, Any]],
                       clock: Clock) -> list[dict[str, Any]]:
        """The other due members of digests in this batch, so a digest is never split."""
        frozen = {r["digest_of"] for r in rows if r["digest_of"] is not None}
        open_groups = {(r["recipient"], r["template"]) for r in rows
                       if r["digest_of"] is None and self.digestible(r)}
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

    def group(self, conn: Connection, rows: list[dict[str, Any]], clock: Clock,
              report: DispatchReport) -> tuple[list[Message], list[dict[str, Any]]]:
        """Group rows into messages: singles, fixed digests, new digests (or hold them).

        Returns the messages and the rows a disabled routing rule skips.
        """
        messages: list[Message] = []
        skipped: list[dict[str, Any]] = []
        frozen: dict[int, list[dict[str, Any]]] = {}
        fresh: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for row in rows:
            if not self.routing.rule(row["template"]).enabled:
                skipped.append(row)
            elif row["digest_of"] is not None:
                frozen.setdefault(row["digest_of"], []).append(row)
            elif self.digestible(row):
                day = as_utc(row["created_at"]).astimezone(self.zone).date().isoformat()  # type: ignore[union-attr]
                fresh.setdefault((row["recipient"], row["template"], day), []).append(row)
            else:
                messages.append(single(row))
        for lead, members in frozen.items():
            messages.append(digest(lead, members))
        now = clock.now()
        for (_recipient, _template, day), members in fresh.items():
            due = self._digest_due(day)
            if due is not None and now < due:
                store.release(conn, members, self.owner, due)
                report.held += len(members)
                continue
            if len(members) == 1:
                messages.append(single(members[0]))
                continue
            lead = min(r["id"] for r in members)
            store.freeze_digest(conn, lead, [r["id"] for r in members])
            for r in members:
                r["digest_of"] = lead
            messages.append(digest(lead, members))
        report.digests += sum(1 for m in messages if m.key.startswith("digest:"))
        return messages, skipped

    def _digest_due(self, day: str) -> datetime | None:
        if not self.digest_time:
            return None
        at = dtime.fromisoformat(self.digest_time)
        local = datetime.combine(datetime.fromisoformat(day).date(), at, tzinfo=self.zone)
        return local.astimezone(UTC)

"""Send each message to each of its channels and record what came back.

Sends run in a thread pool while the rest of the batch renders; a channel that already has a
message (its delivery key is recorded as sent) is skipped. Results are recorded every fraction of
a second: each channel's delivery row, and for every message whose sends are all back its outbox
outcome -- ``sent``, another attempt after an exponential backoff, or ``dead`` after
``max_attempts``, which queues an alert (``notify.dead``) for the auditors. Kept apart from
grouping and rendering: this is the only part that talks to the network.
"""

from __future__ import annotations

import hashlib
import json
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from core.errors import InvalidInput
from notifications import channels, store
from notifications.config import Clock, DispatchConfig, DispatchReport
from notifications.messages import Message, payload_of
from notifications.routing import Channel, expand
from notifications.templates import Rendered, plain

ALERT_TEMPLATES = frozenset({"notify.dead", "notify.unrouted", "calendar.coverage"})
FLUSH_SECONDS = 0.25
FLUSH_RESULTS = 200


def delivery_key(message_key: str, url: str) -> str:
    return hashlib.sha256(f"{message_key}\n{url}".encode()).hexdigest()


class Sender:
    """Sends messages and records deliveries and outcomes under the dispatcher's lease."""

    def __init__(self, config: DispatchConfig, owner: str, lease: timedelta) -> None:
        self.config = config
        self.owner = owner
        self.lease = lease

    def send(self, conn: Connection, pool: ThreadPoolExecutor, messages: list[Message],
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
                outcomes.extend(self.finish(message, clock.now(), report))

        for message in messages:
            todo = [c for c in message.channels if keys[(message.key, c.url)] not in already]
            message.outstanding = len(todo)
            if not todo:
                outcomes += self.finish(message, clock.now(), report)
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
                    outcomes += self.finish(message, clock.now(), report)
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

    def finish(self, message: Message, now: datetime,
               report: DispatchReport) -> list[dict[str, Any]]:
        """The outbox outcome of every row of a message whose sends are all back."""
        if not message.failures:
            report.delivered += 1
            return [outcome(r, "sent", r["attempts"] + 1, None, None, now) for r in message.rows]
        attempts = max(r["attempts"] for r in message.rows) + 1
        error = "；".join(message.failures)[:4000]
        if attempts >= self.config.max_attempts:
            report.dead += 1
            outcomes = [outcome(r, "dead", attempts, None, error, None) for r in message.rows]
            if message.lead["template"] not in ALERT_TEMPLATES:
                outcomes[0]["_alert"] = _dead_alert(message, attempts, error, now)
            return outcomes
        report.retrying += 1
        retry_at = now + self.config.backoff(attempts)
        return [outcome(r, "pending", attempts, retry_at, error, None) for r in message.rows]


def outcome(row: dict[str, Any], status: str, attempts: int, retry_at: datetime | None,
            error: str | None, sent_at: datetime | None) -> dict[str, Any]:
    """One outbox row's new status, as ``store.record`` writes it."""
    return {"b_id": row["id"], "v_status": status, "v_attempts": attempts, "v_next": retry_at,
            "v_error": error, "v_sent": sent_at}


def unrouted_alert(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """One ``notify.unrouted`` alert for the rows no channel could take (alerts excepted)."""
    rows = [r for r in rows if r["template"] not in ALERT_TEMPLATES]
    if not rows:
        return []
    items = [{"id": r["id"], "template": r["template"], "code": payload_of(r).get("code"),
              "recipient": r["recipient"]} for r in rows[:10]]
    payload = {"count": len(rows), "items": items, "more": max(0, len(rows) - 10)}
    return [_alert_row(rows[0]["audit_seq"], rows[0]["id"], "unrouted", "notify.unrouted",
                       payload, now)]


def _dead_alert(message: Message, attempts: int, error: str, now: datetime) -> dict[str, Any]:
    lead = message.lead
    payload = {"dead_id": lead["id"], "dead_template": lead["template"],
               "dead_code": payload_of(lead).get("code"), "dead_recipient": lead["recipient"],
               "attempts": attempts, "last_error": error[:500]}
    return _alert_row(lead["audit_seq"], lead["id"], "dead", "notify.dead", payload, now)


def _alert_row(audit_seq: int, outbox_id: int, event: str, template: str,
               payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"created_at": now, "audit_seq": audit_seq, "entity_type": "outbox",
            "entity_id": outbox_id, "event": event, "recipient": "role:auditor",
            "template": template, "payload": json.dumps(payload, ensure_ascii=False),
            "status": "pending", "attempts": 0}

"""Flow ``dispatch-notifications``: send what the outbox holds (every minute).

One Prefect task runs the dispatcher until nothing is due or its time budget is spent; sends run
concurrently inside it (a task per message would cost ~20 ms of server CPU each). Several runs,
or several workers, may overlap: rows are leased, and delivery keys stop double sends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task

from flows.common import resolve_as_of, settings_for
from models.db import make_engine
from notifications.dispatch import from_settings


@task(name="dispatch-outbox")
def dispatch_task(as_of: datetime, max_batches: int | None) -> dict[str, Any]:
    settings = settings_for()
    engine = make_engine(settings.database_url, busy_timeout_s=settings.sqlite_busy_timeout_s)
    try:
        report = from_settings(engine, settings).run(as_of, max_batches=max_batches)
    finally:
        engine.dispose()
    return report.to_dict()


@flow(name="dispatch-notifications", log_prints=True)
def dispatch_notifications(as_of: datetime | None = None,
                           max_batches: int | None = None) -> dict[str, Any]:
    """通知分发：领取待发送的 outbox 消息，逐个渠道发送并记录结果，失败按指数退避重试。"""
    result = dispatch_task(resolve_as_of(as_of), max_batches)
    print(f"通知分发：消息 {result['messages']}（送达 {result['delivered']}，待重试 "
          f"{result['retrying']}，失败 {result['dead']}，无渠道 {result['unrouted']}，"
          f"暂存摘要 {result['held']}），发送成功 {result['sends_ok']}，失败 {result['sends_failed']}")
    return result

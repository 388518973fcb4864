"""Flow ``audit-checkpoint``: publish the audit chain's head (table, file, auditors), nightly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task

from flows.common import flow_run_id, resolve_as_of, session_for, settings_for
from states import checkpoint


@task(name="take-checkpoint")
def checkpoint_task(as_of: datetime, run_id: str | None) -> dict[str, Any]:
    settings = settings_for()
    file = settings.storage_dir / checkpoint.CHECKPOINT_FILE
    with session_for(settings) as session:
        point = checkpoint.take(session, as_of=as_of, file=file, flow_run_id=run_id)
    return {**point.__dict__, "file": str(file)}


@flow(name="audit-checkpoint", log_prints=True)
def audit_checkpoint(as_of: datetime | None = None) -> dict[str, Any]:
    """审计检查点：记录审计链的链头序号和哈希（数据表 + 文件），并通知审计员。"""
    result = checkpoint_task(resolve_as_of(as_of), flow_run_id())
    print(f"审计检查点：第 {result['seq']} 条，链头 {result['hash'][:16]}…")
    return result

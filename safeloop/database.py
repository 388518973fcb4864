"""Open the configured database for a command or flow, refusing one it cannot use.

``require_ready`` is the check a command runs before its first query: a database that cannot be
reached, or where ``safeloop init`` never ran, is bad input (exit 2) with a zh-CN message, not a
driver traceback from whichever query happened to come first.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from core.errors import InvalidInput
from core.settings import mask_url
from models.db import schema_ready

NOT_INITIALISED = "数据库尚未初始化，请先运行 safeloop init"


def require_ready(engine: Engine) -> None:
    """Refuse a database that cannot be reached or has no schema yet."""
    shown = mask_url(engine.url.set(drivername=engine.url.get_backend_name())
                     .render_as_string(hide_password=False))
    database = engine.url.database or ""
    if (engine.dialect.name == "sqlite" and database not in ("", ":memory:")
            and not database.startswith("file:") and not Path(database).exists()):
        raise InvalidInput(f"{NOT_INITIALISED}（{shown}：文件不存在）")  # connecting would create it
    try:
        ready = schema_ready(engine)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise InvalidInput(f"无法连接数据库 {shown}：{mask_url(reason)}") from exc
    if not ready:
        raise InvalidInput(f"{NOT_INITIALISED}（{shown}）")

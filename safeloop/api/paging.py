"""Opaque cursors for keyset pagination: (sort key value, id) of the last row a page showed.

A cursor is base64url JSON, not a secret: a forged one can only move within what the caller may
see (the scope condition is applied to every page). A cursor that does not decode, or was made for
another sort, is bad input naming the ``cursor`` parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from core.errors import InvalidInput

BAD_CURSOR = "分页游标无效或已过期，请从第一页重新查询"


def encode(sort: str, value: Any, entity_id: int) -> str:
    if isinstance(value, datetime):
        value = {"t": (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()}
    raw = json.dumps([sort, value, entity_id], separators=(",", ":"), ensure_ascii=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, sort: str) -> tuple[Any, int]:
    """(value, id) from a cursor made for ``sort``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, value, entity_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if made_for != sort or not isinstance(entity_id, int) or isinstance(entity_id, bool):
            raise ValueError("cursor")
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"]).astimezone(UTC)
        elif value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError("cursor")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(BAD_CURSOR, field="cursor") from None
    return value, entity_id


def after(key: ColumnElement[Any], id_column: ColumnElement[Any], value: Any, entity_id: int,
          descending: bool) -> ColumnElement[bool]:
    """Rows after (value, id) in the order (key, id), ascending or descending."""
    if descending:
        return or_(key < value, and_(key == value, id_column < entity_id))
    return or_(key > value, and_(key == value, id_column > entity_id))

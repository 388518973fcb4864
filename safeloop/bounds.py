"""Numbers people type, kept within what the database columns hold.

An id beyond a 64-bit integer makes the driver raise (SQLite: OverflowError) instead of "not
found"; a non-finite or oversized amount would be stored as Infinity (SQLite) or fail on a
numeric overflow (PostgreSQL). Both are refused here as bad input naming the field.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from core.errors import InvalidInput

MAX_ID = 2**63 - 1  # BIGINT; SQLite's INTEGER is the same width


def check_id(value: int, what: str = "编号") -> int:
    """An id that fits the id columns; anything else is "out of range", not a driver error."""
    if not 0 <= value <= MAX_ID:
        raise InvalidInput(f"{what}「{value}」：编号超出范围（0 至 {MAX_ID}）")
    return value


def parse_amount(value: str | float | Decimal, what: str, *, digits: int = 14,
                 places: int = 2) -> Decimal:
    """A non-negative finite amount that fits ``NUMERIC(digits, places)``."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidInput(f"{what}「{value}」应为数字") from exc
    limit = Decimal(10) ** (digits - places)
    if not amount.is_finite():
        raise InvalidInput(f"{what}「{value}」应为有限数值")
    if not 0 <= amount < limit:
        raise InvalidInput(f"{what}「{value}」超出范围（0 至 {limit - Decimal(1).scaleb(-places)}）")
    return amount

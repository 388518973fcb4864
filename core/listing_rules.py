"""The listed-supervision clocks (挂牌督办, DOMAIN.md "Listed supervision") in working days.

Local rules differ, so ``SAFELOOP_LISTING_RULES`` may override DOMAIN.md's defaults; the settings
check the override when they are loaded (an unknown rule is refused there, naming the variable),
and the rules in force carry the result to the listing workflow and the sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from core.errors import InvalidInput


@dataclass(frozen=True)
class ListingRules:
    """Working-day clocks; local rules differ, these are DOMAIN.md's defaults."""

    file_days: int = 3
    publish_days: int = 5
    max_deadline_days: int = 366
    extension_notice_days: int = 20
    extension_decision_days: int = 10
    verification_days: int = 10
    progress_days: int = 20
    ladder_days: tuple[int, int, int] = (0, 10, 20)  # after the deadline: 督办函, 约谈, 移送处罚


def listing_rules(overrides: Mapping[str, Any] | None = None) -> ListingRules:
    """DOMAIN.md's defaults with ``overrides`` (the ``listing_rules`` setting); unknown keys refused."""
    given = dict(overrides or {})
    unknown = sorted(set(given) - {f.name for f in fields(ListingRules)})
    if unknown:
        raise InvalidInput("SAFELOOP_LISTING_RULES 中有未知的规则：" + "、".join(unknown))
    if "ladder_days" in given:
        given["ladder_days"] = tuple(given["ladder_days"])
    return ListingRules(**given)

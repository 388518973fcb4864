"""Risk grading bands (风险分级标准): DOMAIN.md's defaults and the check of a configured override.

The settings check an override when they are loaded (``SAFELOOP_RISK_BANDS``) and the rules in
force carry the parsed table, so this lives on the ground floor; the grading itself (scores,
grades, colours) is ``states.risk_grading``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import InvalidInput

# Thresholds for major, significant, general (anything below is low).
DEFAULT_BANDS: dict[str, dict[str, float]] = {
    "lec": {"major": 320, "significant": 160, "general": 70},
    "ls": {"major": 20, "significant": 10, "general": 4},
}


def bands(overrides: Mapping[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """DOMAIN.md's bands with ``overrides`` applied; unknown keys and disorder are refused."""
    merged = {method: dict(values) for method, values in DEFAULT_BANDS.items()}
    for method, values in (overrides or {}).items():
        if method not in merged:
            raise InvalidInput(f"风险分级标准中未知的评价方法「{method}」，可用：lec、ls")
        if not isinstance(values, Mapping):
            raise InvalidInput(f"风险分级标准「{method}」应为 重大/较大/一般 的分界值表")
        for grade, value in values.items():
            if grade not in merged[method]:
                raise InvalidInput(f"风险分级标准「{method}」中未知的等级「{grade}」，"
                                   "可用：major、significant、general")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InvalidInput(f"风险分级标准「{method}.{grade}」应为数值，收到「{value}」")
            merged[method][grade] = float(value)
        m = merged[method]
        if not m["major"] > m["significant"] > m["general"] > 0:
            raise InvalidInput(f"风险分级标准「{method}」的分界值应满足 重大 > 较大 > 一般 > 0，"
                               f"现为 {m['major']:g} / {m['significant']:g} / {m['general']:g}")
    return merged

"""Risk evaluation (风险评价) by LEC or the LS matrix, and the four grades it maps to.

Pure functions: the same factors and bands always give the same score and grade, so an
evaluation recorded in the audit trail can be checked and replayed. Bands are configurable
(``SAFELOOP_RISK_BANDS``) because provinces differ; the defaults are DOMAIN.md's. Parsing and
checking a band table is ``core.risk_bands`` (the settings check it at load); the table in force
reaches a guard or effect as ``ctx.rules.risk_bands``.

- LEC: D = L × E × C; a grade applies when D is *greater than* its threshold
  (defaults: > 320 重大, > 160 较大, > 70 一般, otherwise 低).
- LS: R = L × S on 1–5 × 1–5; a grade applies when R is *at least* its threshold
  (defaults: ≥ 20 重大, ≥ 10 较大, ≥ 4 一般, otherwise 低; some provinces use 9–16 / 4–8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInput
from core.risk_bands import DEFAULT_BANDS, bands  # noqa: F401  (bands: re-exported with the grades)
from models.enums import RiskGrade, Tier

LEC_VALUES: dict[str, tuple[float, ...]] = {
    "L": (10, 6, 3, 1, 0.5, 0.2, 0.1),
    "E": (10, 6, 3, 2, 1, 0.5),
    "C": (100, 40, 15, 7, 3, 1),
}
LS_VALUES: dict[str, tuple[int, ...]] = {"L": (1, 2, 3, 4, 5), "S": (1, 2, 3, 4, 5)}
FACTOR_LABELS = {
    "lec": {"L": "事故发生的可能性 L", "E": "暴露于危险环境的频繁程度 E", "C": "发生事故可能造成的后果 C"},
    "ls": {"L": "事故发生的可能性 L", "S": "事故后果严重性 S"},
}
METHODS = {"lec": "作业条件危险性分析法（LEC）", "ls": "风险矩阵法（LS）"}
RANKED = (RiskGrade.major, RiskGrade.significant, RiskGrade.general, RiskGrade.low)


@dataclass(frozen=True)
class GradeStyle:
    colour: str  # zh-CN colour name
    fill: str  # hex for maps and cards
    ink: str  # legible text colour on ``fill``
    tier: Tier  # control tier (管控层级)
    tier_label: str


STYLES: dict[RiskGrade, GradeStyle] = {
    RiskGrade.major: GradeStyle("红", "#E60012", "#FFFFFF", Tier.group, "公司级"),
    RiskGrade.significant: GradeStyle("橙", "#F39800", "#000000", Tier.plant, "厂（部门）级"),
    RiskGrade.general: GradeStyle("黄", "#FFE100", "#000000", Tier.workshop, "车间级"),
    RiskGrade.low: GradeStyle("蓝", "#0068B7", "#FFFFFF", Tier.team, "班组（岗位）级"),
}
TIER_RANK = {Tier.group: 0, Tier.plant: 1, Tier.workshop: 2, Tier.team: 3}


@dataclass(frozen=True)
class Evaluation:
    method: str
    factors: dict[str, float]
    score: float
    grade: RiskGrade

    @property
    def style(self) -> GradeStyle:
        return STYLES[self.grade]


def evaluate(method: str, factors: Mapping[str, Any],
             band_table: Mapping[str, Mapping[str, float]] | None = None) -> Evaluation:
    """Score and grade one evaluation; a wrong method or factor value names the allowed ones."""
    table = band_table or DEFAULT_BANDS
    if method == "lec":
        allowed: Mapping[str, tuple[float, ...]] = LEC_VALUES
    elif method == "ls":
        allowed = LS_VALUES
    else:
        raise InvalidInput(f"未知的评价方法「{method}」，可用：lec（LEC 法）、ls（风险矩阵法）")
    unknown = sorted(set(factors) - set(allowed))
    missing = [k for k in allowed if k not in factors]
    if unknown or missing:
        raise InvalidInput(f"{METHODS[method]}需要因素 {'、'.join(allowed)}"
                           + (f"，缺少 {'、'.join(missing)}" if missing else "")
                           + (f"，不认识 {'、'.join(unknown)}" if unknown else ""))
    values: dict[str, float] = {}
    for key, choices in allowed.items():
        value = _number(factors[key])
        if value is None or value not in choices:
            shown = "、".join(f"{c:g}" for c in choices)
            given = f"{value:g}" if value is not None else factors[key]
            raise InvalidInput(f"{FACTOR_LABELS[method][key]} 的取值「{given}」无效，"
                               f"可选：{shown}")
        values[key] = value
    score = 1.0
    for value in values.values():
        score *= value
    score = round(score, 6)  # 0.1 × 0.5 × 1 is 0.05, not 0.05000000000000001
    return Evaluation(method, values, score, grade_of(method, score, table))


def grade_of(method: str, score: float, band_table: Mapping[str, Mapping[str, float]]) -> RiskGrade:
    limits = band_table[method]
    for grade in RANKED[:3]:
        threshold = limits[grade.value]
        if (score > threshold) if method == "lec" else (score >= threshold):
            return grade
    return RiskGrade.low


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def highest(grades: list[RiskGrade | str | None]) -> RiskGrade | None:
    """The most severe of ``grades`` (None when there is none): an area takes its colour."""
    present = {RiskGrade(g) for g in grades if g}
    return next((g for g in RANKED if g in present), None)


def tiers_checking(grade: RiskGrade | str) -> list[Tier]:
    """A risk is checked at its control tier and every tier below it (对表检查)."""
    rank = TIER_RANK[STYLES[RiskGrade(grade)].tier]
    return [tier for tier, r in TIER_RANK.items() if r >= rank]

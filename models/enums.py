"""Domain vocabularies as enums, each member with its Chinese label (DOMAIN.md)."""

from __future__ import annotations

from enum import StrEnum


class LabelledEnum(StrEnum):
    """A string enum whose members carry a zh-CN label for user-facing text."""

    @property
    def label(self) -> str:
        return _LABELS.get((type(self).__name__, self.value), self.value)


class Tier(LabelledEnum):
    group = "group"
    plant = "plant"
    workshop = "workshop"
    team = "team"


class Role(LabelledEnum):
    inspector = "inspector"
    rectifier = "rectifier"
    safety_officer = "safety_officer"
    unit_head = "unit_head"
    principal = "principal"
    regulator = "regulator"
    auditor = "auditor"
    system = "system"


class HazardCategory(LabelledEnum):
    thing = "thing"
    behaviour = "behaviour"
    management = "management"


class HazardGrade(LabelledEnum):
    general = "general"
    major = "major"


class HazardSource(LabelledEnum):
    inspection = "inspection"
    ad_hoc = "ad_hoc"
    regulator = "regulator"


class RiskGrade(LabelledEnum):
    """Four risk grades (风险分级), highest first; each has a colour and a control tier."""

    major = "major"
    significant = "significant"
    general = "general"
    low = "low"


class RiskKind(LabelledEnum):
    facility = "facility"
    operation = "operation"


class MeasureKind(LabelledEnum):
    engineering = "engineering"
    management = "management"
    training = "training"
    ppe = "ppe"
    emergency = "emergency"


_LABELS: dict[tuple[str, str], str] = {
    ("Tier", "group"): "集团公司",
    ("Tier", "plant"): "厂矿",
    ("Tier", "workshop"): "车间",
    ("Tier", "team"): "班组",
    ("Role", "inspector"): "检查员",
    ("Role", "rectifier"): "整改责任人",
    ("Role", "safety_officer"): "安全管理员",
    ("Role", "unit_head"): "单位负责人",
    ("Role", "principal"): "主要负责人",
    ("Role", "regulator"): "监管人员",
    ("Role", "auditor"): "审计员",
    ("Role", "system"): "系统",
    ("HazardCategory", "thing"): "物的不安全状态",
    ("HazardCategory", "behaviour"): "人的不安全行为",
    ("HazardCategory", "management"): "管理上的缺陷",
    ("HazardGrade", "general"): "一般隐患",
    ("HazardGrade", "major"): "重大隐患",
    ("HazardSource", "inspection"): "隐患排查",
    ("HazardSource", "ad_hoc"): "随手报",
    ("HazardSource", "regulator"): "监管检查",
    ("RiskGrade", "major"): "重大风险",
    ("RiskGrade", "significant"): "较大风险",
    ("RiskGrade", "general"): "一般风险",
    ("RiskGrade", "low"): "低风险",
    ("RiskKind", "facility"): "设备设施/场所区域",
    ("RiskKind", "operation"): "作业活动",
    ("MeasureKind", "engineering"): "工程技术措施",
    ("MeasureKind", "management"): "管理措施",
    ("MeasureKind", "training"): "培训教育措施",
    ("MeasureKind", "ppe"): "个体防护措施",
    ("MeasureKind", "emergency"): "应急处置措施",
}

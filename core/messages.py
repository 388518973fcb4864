"""zh-CN wording for input validation errors (pydantic's own messages are English)."""

from __future__ import annotations

from typing import Any

_TEMPLATES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的字段",
    "string_too_short": "不能为空",
    "string_too_long": "太长（最多 {max_length} 个字符）",
    "string_type": "应为文字",
    "string_pattern_mismatch": "格式不对（应符合 {pattern}）",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
    "decimal_parsing": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "datetime_parsing": "应为日期时间（如 2026-12-31T18:00:00+08:00）",
    "datetime_from_date_parsing": "应为日期时间（如 2026-12-31T18:00:00+08:00）",
    "datetime_type": "应为日期时间",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "enum": "应为以下之一：{expected}",
    "literal_error": "应为以下之一：{expected}",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "必须大于 {gt}",
    "less_than_equal": "不能大于 {le}",
    "less_than": "必须小于 {lt}",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "list_type": "应为列表",
    "dict_type": "应为键值映射",
    "model_type": "应为键值映射",
    "model_attributes_type": "应为键值映射",
}


def zh_error(err: dict[str, Any]) -> str:
    """One pydantic error in Chinese, naming the rejected value where it is short."""
    if err.get("type") == "value_error":
        return str(err.get("ctx", {}).get("error", err.get("msg", "")))
    template = _TEMPLATES.get(str(err.get("type")))
    if template is None:
        return str(err.get("msg", ""))
    try:
        text = template.format(**err.get("ctx", {})).replace("' or '", "'、'")
    except (KeyError, IndexError):
        text = template
    value = err.get("input")
    if err.get("type") != "missing" and isinstance(value, str | int | float) and len(str(value)) <= 40:
        text += f"（收到：{value}）"
    return text

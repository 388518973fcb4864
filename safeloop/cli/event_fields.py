"""An event's fields as the command line takes them, and the values typed checked against them.

The fields come from the event's params model (``EventRule.params``): their types, defaults and
zh-CN descriptions (``Field(description=…)``) are the rule's, so the CLI keeps no list of its
own. ``prepare`` turns a ``Request`` (``--set key=value``, a friendly alias's options,
``--evidence``) into typed values, refusing in Chinese, naming the option, the field and the type,
before a session is opened or a file is stored; the params model checks the rest in the engine.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from core.errors import InvalidInput
from core.timeparse import parse_day, parse_local
from safeloop.bounds import parse_amount
from safeloop.cli.common import STATE
from safeloop.cli.output import plain
from states.workflow import MAX_TEXT_CHARS, EventRule, EvidenceRef

QUOTE_LIMIT = 80  # how much of a bad key or value to quote back
MAX_JSON_CHARS = 64_000  # a structured value (JSON list or object) typed on the command line


# ---- the request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Given:
    """A value for one field and where it was typed (for messages): ``--owner``, ``--set owner``.

    Text is parsed against the field's type; anything else (a dict read from a file, a list of
    options) is taken as it is and checked by the params model in the engine."""

    value: Any
    source: str


@dataclass
class Request:
    """What the command line asked for: one event on one entity."""

    code: str
    event: str
    actor: str
    sets: Sequence[str] = ()
    evidence: Sequence[Path] = ()
    reason: str | None = None
    role: str | None = None
    expected_version: int | None = None
    as_of: str | None = None
    options: Mapping[str, Given] = field(default_factory=dict)  # a friendly alias's options


@dataclass
class Prepared:
    """The event's input, parsed and checked before anything is written."""

    values: dict[str, Any]
    files: dict[str, list[Path]]  # evidence fields: files to put into the evidence store
    single: frozenset[str] = frozenset()  # evidence fields holding one reference, not a list


def given(**options: tuple[Any, str]) -> dict[str, Given]:
    """An alias's options as ``Given`` values, leaving out those not typed (None)."""
    return {k: Given(v, source) for k, (v, source) in options.items() if v is not None}


# ---- fields of an event, from its params model -----------------------------------------------

KIND_LABELS = {
    "text": "文本", "int": "整数", "float": "数字", "amount": "金额（元，最多两位小数）",
    "bool": "是/否（true/false）", "datetime": "日期时间", "date": "日期（YYYY-MM-DD）",
    "choice": "可选值", "evidence": "证据文件", "json": "JSON",
}
TRUE = {"true", "yes", "y", "1", "on", "是"}
FALSE = {"false", "no", "n", "0", "off", "否"}
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


@dataclass(frozen=True)
class FieldSpec:
    """One field a person may give for an event: its type as the CLI parses it, and its help."""

    name: str
    kind: str  # a key of KIND_LABELS; for a list, the kind of one item
    many: bool  # a list: each --set adds an item
    required: bool
    default: Any
    choices: tuple[tuple[str, str], ...] = ()  # (value, zh label or "")
    description: str = ""

    @property
    def type_label(self) -> str:
        """The field's type in Chinese, as help and errors show it."""
        if self.kind == "evidence":
            return "证据文件（可重复）" if self.many else "证据文件"
        if self.kind == "choice":
            shown = "、".join(f"{v}（{label}）" if label else v for v, label in self.choices)
            base = f"可选值：{shown}"
        else:
            base = KIND_LABELS[self.kind]
        return f"{base} 列表（可重复）" if self.many else base

    @property
    def presence(self) -> str:
        if self.required:
            return "必填"
        if self.default in (None, "", [], {}, ()):
            return "可选"
        shown = self.default.value if isinstance(self.default, Enum) else self.default
        return f"默认 {shown}"


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), True
    return annotation, False


def _scalar(annotation: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The CLI kind of a non-list type, with its choices for enums and literals."""
    if get_origin(annotation) is Literal:
        return "choice", tuple((str(v), "") for v in get_args(annotation))
    if isinstance(annotation, type):
        if issubclass(annotation, EvidenceRef):
            return "evidence", ()
        if issubclass(annotation, Enum):
            return "choice", tuple((str(m.value), str(getattr(m, "label", ""))) for m in annotation)
        for kind, types_ in (("bool", (bool,)), ("text", (str,)), ("int", (int,)),
                             ("float", (float,)), ("amount", (Decimal,)),
                             ("datetime", (datetime,)), ("date", (date,))):
            if issubclass(annotation, types_):
                return kind, ()
    return "json", ()  # nested models, dicts, anything else: given as JSON


@cache
def fields_of(rule: EventRule) -> dict[str, FieldSpec]:
    """The fields a person may give for ``rule`` (computed ones excluded), in model order."""
    model: type[BaseModel] | None = rule.params
    if model is None:
        return {}
    found: dict[str, FieldSpec] = {}
    for name, info in model.model_fields.items():
        if name in rule.computed:
            continue
        inner, _optional = _unwrap(info.annotation)
        many = get_origin(inner) in (list, tuple, set, frozenset)
        if many:
            args = get_args(inner)
            kind, choices = _scalar(_unwrap(args[0])[0] if args else Any)
            many = kind != "json"  # a list of objects is one JSON value
        else:
            kind, choices = _scalar(inner)
        default = None if info.default is PydanticUndefined else info.default
        found[name] = FieldSpec(name, kind, many, info.is_required(), default, choices,
                                info.description or "")
    return found


def evidence_field(rule: EventRule, fields: Mapping[str, FieldSpec]) -> str | None:
    """The field ``--evidence`` fills: the event's only evidence field (``evidence`` if several)."""
    names = [n for n, f in fields.items() if f.kind == "evidence"]
    if len(names) > 1:
        if "evidence" in names:
            return "evidence"
        raise InvalidInput(f"操作「{rule.label}」({rule.name}) 有多个证据字段："
                           f"{'、'.join(names)}，请用 --set 字段=文件 指明")
    return names[0] if names else None


# ---- parsing ---------------------------------------------------------------------------------


def quoted(value: Any) -> str:
    """A bad key or value quoted back, shortened and made safe to print."""
    return f"「{plain(value, QUOTE_LIMIT)}」"


def _allowed(fields: Mapping[str, FieldSpec]) -> str:
    return "、".join(fields) if fields else "（无，此操作不接受参数）"


def _known(rule: EventRule, fields: Mapping[str, FieldSpec], name: str, source: str) -> FieldSpec:
    spec = fields.get(name)
    if spec is not None:
        return spec
    if name in rule.computed:
        raise InvalidInput(f"「{plain(name, QUOTE_LIMIT)}」由系统计算并记入审计日志，不能由操作人提供",
                           fields=[name])
    where = "" if source == f"--set {name}" else f"（{plain(source, QUOTE_LIMIT)}）"
    raise InvalidInput(
        f"操作「{rule.label}」({rule.name}) 没有参数{quoted(name)}{where}；"
        f"可用参数：{_allowed(fields)}（详见 fire --help）", fields=[name[:QUOTE_LIMIT]])


def split_set(pair: str) -> tuple[str, str]:
    """``key=value`` → (key, value); the value may itself contain '='."""
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidInput(f"--set 应为 键=值，收到{quoted(pair)}")
    return key, value


def _wrong(spec: FieldSpec, source: str, text: str, kind: str | None = None) -> InvalidInput:
    """A value not of the field's type: names the option, the field and the type in Chinese."""
    label = KIND_LABELS[kind or spec.kind]
    return InvalidInput(f"{source} 的值{quoted(text)}不是{label}（参数 {spec.name} 应为{spec.type_label}）",
                        fields=[spec.name])


def _typed(spec: FieldSpec, exc: InvalidInput) -> InvalidInput:
    """A parser's own refusal (dates, amounts) with the field and its type added."""
    return InvalidInput(f"{exc.message}（参数 {spec.name} 应为{spec.type_label}）", fields=[spec.name])


def _convert(spec: FieldSpec, kind: str, text: str, source: str, zone: str) -> Any:
    """One typed value from text, refused in Chinese naming the field and the type expected."""
    value = text.strip()
    if kind == "text":
        return text
    if kind == "int":
        if not _INTEGER.fullmatch(value):
            raise _wrong(spec, source, text, "int")
        return int(value)
    if kind == "float":
        try:
            number = float(value)
        except ValueError:
            raise _wrong(spec, source, text, "float") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidInput(f"{source} 的值{quoted(text)}不是有限数（参数 {spec.name}：数字）")
        return number
    if kind == "amount":
        try:
            return str(parse_amount(value, source))
        except InvalidInput as exc:
            raise _typed(spec, exc) from exc
    if kind == "bool":
        if value.lower() not in TRUE | FALSE:
            raise _wrong(spec, source, text, "bool")
        return value.lower() in TRUE
    if kind == "datetime":
        due = spec.name.endswith(("deadline", "_due", "until"))
        try:
            return parse_local(value, zone, end_of_day=due, what=source)
        except InvalidInput as exc:
            raise _typed(spec, exc) from exc
    if kind == "date":
        try:
            return parse_day(value, what=source).isoformat()
        except InvalidInput as exc:
            raise _typed(spec, exc) from exc
    if kind == "choice":
        allowed = [v for v, _ in spec.choices]
        if value not in allowed:
            raise _wrong(spec, source, text)
        return value
    # JSON: a nested model, a dict, a list of objects
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise _wrong(spec, source, text) from None
    except (ValueError, RecursionError) as exc:  # 5,000-digit numbers, 10,000-deep lists
        raise InvalidInput(f"{source} 的值无法接受（数字位数或嵌套层数过多）") from exc


def _check_length(spec: FieldSpec, text: str, source: str) -> None:
    limit = MAX_JSON_CHARS if spec.kind == "json" else MAX_TEXT_CHARS
    if len(text) > limit:
        raise InvalidInput(f"{source} 的值过长（{len(text)} 个字符，最多 {limit} 个）",
                           fields=[spec.name])


def prepare(rule: EventRule, request: Request) -> Prepared:
    """Parse ``--set``, the alias's options and ``--evidence`` against the event's fields.

    Everything is refused here, before a session is opened or a file is stored: an unknown or
    computed key (naming the allowed ones), ``--set`` without '=', a key given twice, a value
    too long or not of the field's type."""
    fields = fields_of(rule)
    zone = STATE.settings.timezone
    given: list[tuple[str, Given]] = [(k, v) for k, v in request.options.items()]
    for pair in request.sets:
        key, text = split_set(pair)
        given.append((key, Given(text, f"--set {plain(key, QUOTE_LIMIT)}")))
    values: dict[str, Any] = {}
    files: dict[str, list[Path]] = {}
    sources: dict[str, str] = {}
    for name, one in given:
        spec = _known(rule, fields, name, one.source)
        if name in sources and not spec.many:
            raise InvalidInput(f"参数 {name} 给出了两次（{sources[name]} 与 {one.source}），"
                               f"只能给一个值", fields=[name])
        sources.setdefault(name, one.source)
        if not isinstance(one.value, str):  # already structured by the alias
            values[name] = one.value
            continue
        _check_length(spec, one.value, one.source)
        if spec.kind == "evidence":
            files.setdefault(name, []).append(Path(one.value))
        elif spec.many:
            if one.value.lstrip().startswith("["):  # a JSON list: all items at once
                items = _convert(spec, "json", one.value, one.source, zone)
                if not isinstance(items, list):
                    raise _wrong(spec, one.source, one.value)
                values.setdefault(name, []).extend(items)
            else:
                values.setdefault(name, []).append(
                    _convert(spec, spec.kind, one.value, one.source, zone))
        else:
            values[name] = _convert(spec, spec.kind, one.value, one.source, zone)
    if request.evidence:
        target = evidence_field(rule, fields)
        if target is None:
            raise InvalidInput(f"操作「{rule.label}」({rule.name}) 不接受证据文件（--evidence）")
        files.setdefault(target, []).extend(request.evidence)
    single = frozenset(n for n in files if not fields[n].many)
    for name in single:
        if len(files[name]) > 1:
            raise InvalidInput(f"参数 {name} 只能给一个证据文件（收到 {len(files[name])} 个）",
                               fields=[name])
    return Prepared(values, files, single)

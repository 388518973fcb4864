"""One way to fire an event from the command line, for every workflow.

    safeloop <group> fire CODE EVENT --as ID [--set key=value …] [--evidence FILE …]
                                            [--reason TEXT] [--role R] [--as-of …] [--json]

The values typed are parsed against the event's params model (``EventRule.params``): the rule is
the schema, so the CLI keeps no second list of fields per event. The friendly per-event commands
(``hazard fire --owner``, ``inspect start``, ``stat-report submit`` …) are thin aliases: they put
their options into the same ``Request`` and call ``run``/``execute``, so parsing, the engine call,
the error messages and the exit codes are the same whichever way an event is fired.

No ``from __future__ import annotations`` here: ``mount`` builds commands whose typer
annotations use values of the enclosing call, which typer must see as objects, not strings.
"""

import contextlib
import json
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.table import Table
from sqlalchemy import select
from sqlmodel import Session
from typer.core import TyperCommand

from core.errors import InvalidInput
from core.timeparse import parse_day, parse_local
from models.enums import Role
from safeloop import evidence
from safeloop.bounds import parse_amount
from safeloop.cli.common import (
    STATE,
    AsOfOpt,
    AsOpt,
    EvidenceOpt,
    JsonOpt,
    as_of_option,
    code_arg,
    console,
    handle_errors,
    open_session,
    print_json,
)
from safeloop.cli.output import OutputFailed, cells, plain, safe
from states import engine
from states.workflow import MAX_TEXT_CHARS, EventRule, EvidenceRef, Workflow
from states.workflows.hazard import PLAN_PARTS

# Where each workflow's commands live (README "命令行执行操作"): the groups users already know.
GROUPS: dict[str, str] = {
    "hazard": "hazard",
    "inspection": "inspect",
    "listing": "listing",
    "suspension": "order",
    "annual_plan": "plan annual",
    "stat_report": "stat-report",
    "risk": "risk",
}
LEGEND = ("日期时间写作 YYYY-MM-DD 或 YYYY-MM-DD HH:MM（期限只给日期时为当天 23:59:59）；"
          "证据文件用 --evidence 文件（或 --set 键=文件）；列表重复 --set 同一个键，或给 JSON 列表；"
          "JSON 参数写作 --set 键='…'。")
QUOTE_LIMIT = 80  # how much of a bad key or value to quote back
MAX_JSON_CHARS = 64_000  # a structured value (JSON list or object) typed on the command line

SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="参数 键=值，可重复（列表参数重复给出即追加）；可用的键见下方操作列表")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="原因/说明（部分操作必填）")]
RoleOpt = Annotated[str | None, typer.Option("--role", help="以哪个角色操作（默认自动选择）")]
VersionOpt = Annotated[int | None, typer.Option(
    "--expected-version", help="期望的版本号（防并发覆盖）")]
EventArg = Annotated[str, typer.Argument(
    help="操作名，如 assign；全部操作及参数见本命令的 --help", show_default=False)]


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


# ---- fields of an event, from its params model -----------------------------------------------

KIND_LABELS = {
    "text": "文本", "int": "整数", "float": "数字", "amount": "金额（元，最多两位小数）",
    "bool": "是/否（true/false）", "datetime": "日期时间", "date": "日期（YYYY-MM-DD）",
    "choice": "可选值", "evidence": "证据文件", "json": "JSON",
}
TRUE = {"true", "yes", "y", "1", "on", "是"}
FALSE = {"false", "no", "n", "0", "off", "否"}
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")

# zh-CN descriptions for fields whose ``Field(description=…)`` is absent or not Chinese. A
# description written in Chinese on the params model wins; (workflow, field) before field.
DESCRIPTIONS: dict[tuple[str, str] | str, str] = {
    "owner": "整改责任人编号", "acceptor": "验收人编号", "deadline": "期限（只给日期时为当天 23:59:59）",
    "measures": "整改措施", "funds": "整改资金（元）", "grade": "等级", "findings": "复查结论",
    "level": "升级级别 1–3", "evidence": "证据文件", "listing_id": "挂牌督办（系统内部）",
    "results": "检查结果：JSON 列表 [{item, outcome: pass/fail/na, note}]"
               "（或用 inspect submit --results 文件）",
    "progress_every_days": "进展报送间隔（工作日）", "progress": "整改进展",
    "approve": "是否同意延期", "evaluation": "评估报告文件", "summary": "说明",
    "duty": "逾期的职责（系统内部）", "report": "整改报告、复产申请文件",
    "attachments": "盖章签字的统计表文件",
    "entries": "计划条目：JSON 列表 [{enterprise, frequency}]",
    "name": "名称", "kind": "类型", "area": "所在区域（须已登记）", "hazard_factors": "危险有害因素",
    "accident_types": "可能导致的事故类型（GB 6441）", "consequences": "事故后果",
    "responsible": "责任人编号", "contacts": "联系方式", "emergency_contacts": "应急联系电话",
    "method": "评价方法：lec（D=L×E×C）或 ls（R=L×S）", "note": "评价说明", "trigger": "复评原因",
    "factors": "因素取值：JSON 对象，如 {\"L\": 3, \"E\": 6, \"C\": 15}",
    ("risk", "measures"): "管控措施：JSON 列表 [{kind, text}]",
    ("risk", "name"): "风险点名称",
    ("listing", "level"): "督办级别：1 督办函、2 约谈、3 移送处罚",
    **{("hazard", key): f"治理方案：{label}" for key, label in PLAN_PARTS.items()},
}


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


def _describe(workflow: Workflow, name: str, written: str | None) -> str:
    if written and re.search(r"[\u4e00-\u9fff]", written):
        return written
    return DESCRIPTIONS.get((workflow.name, name)) or DESCRIPTIONS.get(name) or written or ""


@cache
def fields_of(workflow: Workflow, rule: EventRule) -> dict[str, FieldSpec]:
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
                                _describe(workflow, name, info.description))
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


def _quoted(value: Any) -> str:
    return f"「{plain(value, QUOTE_LIMIT)}」"


def _allowed(rule: EventRule, fields: Mapping[str, FieldSpec]) -> str:
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
        f"操作「{rule.label}」({rule.name}) 没有参数{_quoted(name)}{where}；"
        f"可用参数：{_allowed(rule, fields)}（详见 fire --help）", fields=[name[:QUOTE_LIMIT]])


def split_set(pair: str) -> tuple[str, str]:
    """``key=value`` → (key, value); the value may itself contain '='."""
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidInput(f"--set 应为 键=值，收到{_quoted(pair)}")
    return key, value


def _wrong(spec: FieldSpec, source: str, text: str, kind: str | None = None) -> InvalidInput:
    """A value not of the field's type: names the option, the field and the type in Chinese."""
    label = KIND_LABELS[kind or spec.kind]
    return InvalidInput(f"{source} 的值{_quoted(text)}不是{label}（参数 {spec.name} 应为{spec.type_label}）",
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
            raise InvalidInput(f"{source} 的值{_quoted(text)}不是有限数（参数 {spec.name}：数字）")
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


def prepare(workflow: Workflow, rule: EventRule, request: Request) -> Prepared:
    """Parse ``--set``, the alias's options and ``--evidence`` against the event's fields.

    Everything is refused here, before a session is opened or a file is stored: an unknown or
    computed key (naming the allowed ones), ``--set`` without '=', a key given twice, a value
    too long or not of the field's type."""
    fields = fields_of(workflow, rule)
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


def rule_of(workflow: Workflow, request: Request) -> EventRule:
    """The event's rule; an unknown name is refused naming what can be done on this entity now."""
    rule = workflow.events.get(request.event)
    if rule is not None:
        return rule
    shown = _quoted(request.event)
    every = "、".join(f"{r.label}({r.name})" for r in workflow.events.values())
    state = _state_of(workflow, request.code)
    if state is None:
        raise InvalidInput(f"未知操作{shown}，可用操作：{every}", event=request.event[:QUOTE_LIMIT])
    now = "、".join(f"{r.label}({r.name})" for r in workflow.events_from(state)) or "无"
    raise InvalidInput(
        f"未知操作{shown}。{workflow.label} {plain(request.code, QUOTE_LIMIT)} 当前状态为"
        f"「{workflow.state_label(state)}」，此状态下可执行：{now}（全部操作：{every}）",
        event=request.event[:QUOTE_LIMIT])


def _state_of(workflow: Workflow, code: str) -> str | None:
    """The entity's state, or None when it does not exist (or cannot be read)."""
    try:
        with open_session() as session:
            table = workflow.table
            return session.connection().execute(
                select(table.c.state).where(table.c.code == code)).scalar()
    except Exception:  # noqa: BLE001 - only a better message is lost; the refusal stands
        return None


# ---- firing ----------------------------------------------------------------------------------

# Run in the event's session after the engine committed it (e.g. the risk register re-derives
# the checklists); what it returns is the command's to show.
After = Callable[[Session, Request, engine.FireResult, datetime | None], Any]
Build = Callable[[Session], dict[str, Any]]


def execute(workflow: Workflow, request: Request, *, build: Build | None = None,
            after: After | None = None) -> tuple[engine.FireResult, Any]:
    """Parse, store the evidence and fire through the engine, in one session.

    ``build`` adds input that needs the session (a results file whose evidence is stored)."""
    rule = rule_of(workflow, request)
    prepared = prepare(workflow, rule, request)
    moment = as_of_option(request.as_of)
    storage = STATE.settings.storage_dir
    with open_session() as session:
        data = dict(prepared.values)
        for name, paths in prepared.files.items():
            refs = [evidence.store(session, storage, p) for p in paths]
            data[name] = refs[0] if name in prepared.single else refs
        if build is not None:
            data.update(build(session))
        result = engine.fire(session, workflow, request.code, request.event, actor=request.actor,
                             role=request.role, comment=request.reason, data=data, as_of=moment,
                             expected_version=request.expected_version)
        extra = after(session, request, result, moment) if after is not None else None
    return result, extra


def echo(workflow: Workflow, result: engine.FireResult, as_json: bool) -> None:
    """The one line every fired event prints (or its JSON)."""
    if as_json:
        print_json(result.__dict__)
        return
    console.print(f"{safe(result.code)}：{workflow.event_label(result.event)} 完成，"
                  f"{workflow.state_label(result.from_state)} → "
                  f"[bold]{workflow.state_label(result.to_state)}[/]")


def run(workflow: Workflow, request: Request, as_json: bool, *,
        after: After | None = None) -> tuple[engine.FireResult, Any]:
    result, extra = execute(workflow, request, after=after)
    echo(workflow, result, as_json)
    return result, extra


def given(**options: tuple[Any, str]) -> dict[str, Given]:
    """An alias's options as ``Given`` values, leaving out those not typed (None)."""
    return {k: Given(v, source) for k, (v, source) in options.items() if v is not None}


# ---- discovery: the events, who may fire them, and their fields ---------------------------------


def _roles(rule: EventRule) -> str:
    labels = "、".join(Role(r).label for r in rule.roles)
    return labels + ("（仅系统流程）" if set(rule.roles) == {"system"} else "")


def catalogue(workflow: Workflow) -> list[dict[str, Any]]:
    """Every event with its label, roles and fields (``events --json``)."""
    return [{
        "event": rule.name, "label": rule.label, "roles": list(rule.roles),
        "requires_reason": rule.requires_reason,
        "fields": [{"name": f.name, "type": f.type_label, "required": f.required,
                    "default": f.default.value if isinstance(f.default, Enum) else f.default,
                    "description": f.description}
                   for f in fields_of(workflow, rule).values()],
    } for rule in workflow.events.values()]


def print_catalogue(workflow: Workflow, only: str | None = None) -> None:
    """The events (or one event) as help text: label, roles, reason, fields in Chinese."""
    rules = [workflow.events[only]] if only else list(workflow.events.values())
    group = GROUPS.get(workflow.name, workflow.name)
    console.print(f"\n{workflow.label}的操作（EVENT）、可执行的角色与参数（--set 键=值）。{LEGEND}",
                  markup=False, highlight=False)
    for rule in rules:
        fields = fields_of(workflow, rule)
        head = f"\n{rule.name}  {rule.label}" + ("  [须填写原因 --reason]" if rule.requires_reason
                                                   else "")
        console.print(head, markup=False, highlight=False)
        console.print(f"  角色：{_roles(rule)}", markup=False, highlight=False)
        if not fields:
            console.print("  无参数", markup=False, highlight=False)
            continue
        table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
        for _ in range(4):
            table.add_column()
        for f in fields.values():
            table.add_row(*cells(f"  {f.name}", f.type_label, f.presence, f.description, limit=400))
        console.print(table)
    if only is None:
        console.print(f"\n只看一个操作：safeloop {group} fire EVENT --help", markup=False,
                      highlight=False)


def _value_options(command: Any) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option" and not getattr(param, "is_flag", False):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def _event_in(command: Any, workflow: Workflow, args: Sequence[str]) -> str | None:
    """The EVENT among the arguments typed before --help (``fire CODE EVENT --help``)."""
    takes_value = _value_options(command)
    positional: list[str] = []
    skip = False
    for token in args:
        if skip:
            skip = False
        elif token.startswith("-"):
            skip = "=" not in token and token in takes_value
        else:
            positional.append(token)
    for token in positional[1:2] + positional[:1]:
        if token in workflow.events:
            return token
    return None


class FireCommand(TyperCommand):
    """``fire --help`` ends with the workflow's events, their roles and fields in Chinese;
    ``fire [CODE] EVENT --help`` with that one event's."""

    workflow: Workflow

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["safeloop.fire.args"] = list(args)  # --help is handled while parsing
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super().format_help(ctx, formatter)
        only = _event_in(self, self.workflow, ctx.meta.get("safeloop.fire.args", []))
        with contextlib.suppress(OutputFailed):  # `… --help | head`: nothing was done anyway
            print_catalogue(self.workflow, only)


def command_class(workflow: Workflow) -> type[FireCommand]:
    return type(f"Fire{workflow.name.title().replace('_', '')}Command", (FireCommand,),
                {"workflow": workflow})


def fire_help(workflow: Workflow) -> str:
    return (f"对{workflow.label}执行一个操作：参数按该操作的定义校验（类型、必填、取值），"
            f"证据文件存入证据库。可用操作与参数见下方。")


def mount(app: typer.Typer, workflow: Workflow, *, code_help: str, after: After | None = None,
          fire: bool = True, events: bool = True) -> None:
    """Add the generic ``fire`` (unless the group defines its own alias of it) and ``events``."""
    if fire:
        def fire_cmd(
            code: Annotated[str, code_arg(code_help)],
            event: EventArg,
            actor: AsOpt,
            sets: SetOpt = None,
            files: EvidenceOpt = None,
            reason: ReasonOpt = None,
            role: RoleOpt = None,
            expected_version: VersionOpt = None,
            as_of: AsOfOpt = None,
            as_json: JsonOpt = False,
        ) -> None:
            run(workflow, Request(code, event, actor, sets or (), files or (), reason, role,
                                  expected_version, as_of), as_json, after=after)

        app.command("fire", cls=command_class(workflow), help=fire_help(workflow))(
            handle_errors(fire_cmd))
    if events:
        def events_cmd(
            code: Annotated[str | None, code_arg(f"{code_help}（不给则列出全部操作及参数）")] = None,
            actor: Annotated[str | None, typer.Option("--as", help="操作人编号（给出 CODE 时必填）")] = None,
            as_json: JsonOpt = False,
        ) -> None:
            show_events(workflow, code, actor, as_json)

        app.command("events", help=f"列出此人现在可以对该{workflow.label}执行的操作；"
                                   f"不给编号时列出全部操作、角色和参数。")(handle_errors(events_cmd))


def show_events(workflow: Workflow, code: str | None, actor: str | None, as_json: bool) -> None:
    if code is None:
        if as_json:
            print_json(catalogue(workflow))
        else:
            print_catalogue(workflow)
        return
    if actor is None:
        raise InvalidInput("列出某条记录现在可执行的操作须用 --as 指明操作人")
    with open_session() as session:
        rules = engine.allowed_events(session, workflow, code, actor)
    if as_json:
        print_json([{"event": r.name, "label": r.label, "roles": list(r.roles)} for r in rules])
        return
    if not rules:
        console.print("当前没有您可以执行的操作。")
    for r in rules:
        console.print(f"- {r.name}  {r.label}" + ("（须填写原因）" if r.requires_reason else ""))

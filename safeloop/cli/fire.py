"""One way to fire an event from the command line, for every workflow.

    safeloop <group> fire CODE EVENT --as ID [--set key=value …] [--evidence FILE …]
                                            [--reason TEXT] [--role R] [--as-of …] [--json]

This module runs a ``Request``: the values are parsed against the event's params model
(``event_fields``: the rule is the schema, so the CLI keeps no second list of fields), the
evidence is stored and the engine fires, in one session. It also builds the typer commands:
the generic ``fire`` (whose ``--help`` ends with ``event_catalogue``'s listing) and ``events``.
The friendly per-event commands (``hazard fire --owner``, ``inspect start``, ``stat-report
submit`` …) are thin aliases: they put their options into the same ``Request`` and call
``run``/``execute``, so parsing, the engine call, the error messages and the exit codes are the
same whichever way an event is fired.

No ``from __future__ import annotations`` here: ``mount`` builds commands whose typer
annotations use values of the enclosing call, which typer must see as objects, not strings.
"""

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlmodel import Session
from typer.core import TyperCommand

from core.errors import InvalidInput
from safeloop import evidence
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
from safeloop.cli.event_catalogue import print_catalogue, show_events
from safeloop.cli.event_fields import QUOTE_LIMIT, Request, prepare, quoted
from safeloop.cli.output import OutputFailed, plain, safe
from states import engine
from states.workflow import EventRule, Workflow

SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="参数 键=值，可重复（列表参数重复给出即追加）；可用的键见下方操作列表")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="原因/说明（部分操作必填）")]
RoleOpt = Annotated[str | None, typer.Option("--role", help="以哪个角色操作（默认自动选择）")]
VersionOpt = Annotated[int | None, typer.Option(
    "--expected-version", help="期望的版本号（防并发覆盖）")]
EventArg = Annotated[str, typer.Argument(
    help="操作名，如 assign；全部操作及参数见本命令的 --help", show_default=False)]


def rule_of(workflow: Workflow, request: Request) -> EventRule:
    """The event's rule; an unknown name is refused naming what can be done on this entity now."""
    rule = workflow.events.get(request.event)
    if rule is not None:
        return rule
    shown = quoted(request.event)
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
    prepared = prepare(rule, request)
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
    """``execute``, then the one line (or JSON) every fired event prints."""
    result, extra = execute(workflow, request, after=after)
    echo(workflow, result, as_json)
    return result, extra


# ---- the commands ------------------------------------------------------------------------


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

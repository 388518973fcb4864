"""Usage errors in zh-CN: the root command group translates Click's parse errors and shows them.

Click (vendored in Typer) builds its usage errors as English sentences at the point they are
raised, and Typer's type checks are pydantic validation errors. ``ZhGroup`` is the root group: it
catches every usage error raised while parsing or dispatching (at any depth), prints it in
Chinese with the usage line and a help hint, and exits 2. Arguments carrying bytes that are not
UTF-8 are refused here too, before any command sees them.
"""

from __future__ import annotations

import contextlib
import re
from difflib import get_close_matches
from enum import Enum
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from safeloop.cli.output import MESSAGE_LIMIT, OutputFailed, err_console, plain

try:  # Typer >= 0.23 vendors Click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older Typer on real Click
    from click import exceptions as click_errors  # type: ignore[no-redef]

VALUE_LIMIT = 80  # how much of a bad value to quote back
_SURROGATE = re.compile("[\ud800-\udfff]")


def _param_name(param: Any) -> str:
    """``--limit`` for an option, ``CODE`` for an argument."""
    if param is None:
        return ""
    opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
    if opts:
        return "/".join(opts)
    return str(getattr(param, "metavar", None) or getattr(param, "name", "") or "").upper()


def _param_label(param: Any) -> str:
    name = _param_name(param)
    if not name:
        return "参数"
    kind = "选项" if name.startswith("-") else "参数"
    return f"{kind} {name}"


def _quoted(value: Any) -> str:
    return f"「{plain(value, VALUE_LIMIT)}」"


def _choices(param: Any, detail: str) -> list[str]:
    """The allowed values of a choice option: from its Enum, or from the message's quotes."""
    try:
        annotation = param.bare_type()
    except Exception:  # noqa: BLE001 - not every Typer version has it; fall back to the text
        annotation = None
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(m.value) for m in annotation]
    return re.findall(r"'([^']*)'", detail)[1:]


def _pydantic_reason(cause: Any, param: Any) -> str | None:
    """Why a value failed Typer's pydantic check, in zh-CN; None if this is not one."""
    errors = getattr(cause, "errors", None)
    if not callable(errors):
        return None
    try:
        first = errors()[0]
    except Exception:  # noqa: BLE001 - not a pydantic error after all
        return None
    kind, ctx = first.get("type", ""), first.get("ctx") or {}
    given = _quoted(first.get("input", ""))
    reasons = {
        "int_parsing": f"{given}不是整数",
        "int_from_float": f"{given}不是整数",
        "float_parsing": f"{given}不是数字",
        "bool_parsing": f"{given}不是是/否值（可用 true/false、yes/no、1/0）",
        "greater_than_equal": f"{given}不能小于 {ctx.get('ge')}",
        "greater_than": f"{given}应大于 {ctx.get('gt')}",
        "less_than_equal": f"{given}不能大于 {ctx.get('le')}",
        "less_than": f"{given}应小于 {ctx.get('lt')}",
        "string_too_long": f"过长（最多 {ctx.get('max_length')} 个字符）",
        "date_from_datetime_parsing": f"{given}不是日期",
        "datetime_from_date_parsing": f"{given}不是时间",
    }
    if kind in reasons:
        return reasons[kind]
    if kind == "value_error" and "is not one of" in str(ctx.get("error", "")):
        allowed = "、".join(_choices(param, str(ctx.get("error"))))
        return f"{given}不是可选值，可用：{allowed}"
    return f"{given}无效"


def _has_chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def _bad_parameter(exc: Any) -> str:
    param = getattr(exc, "param", None)
    label = _param_label(param)
    reason = _pydantic_reason(exc.__cause__, param)
    if reason is None:
        text = str(exc.message)
        # Our own callbacks raise zh-CN reasons; anything else is quoted as it came.
        shown = plain(text, MESSAGE_LIMIT)
        reason = shown if _has_chinese(text) else f"取值无效（{shown}）"
    return f"{label} 的值无效：{reason}"


def _missing(exc: Any) -> str:
    param = getattr(exc, "param", None)
    if param is None:
        return "缺少必需的参数"
    if _param_name(param).startswith("-"):
        return f"缺少必填选项 {_param_name(param)}"
    return f"缺少参数 {_param_name(param)}"


def _no_such_option(exc: Any) -> str:
    text = f"没有这个选项：{plain(exc.option_name, VALUE_LIMIT)}"
    if exc.possibilities:
        # closest first (a read command's --as must not push --grade out of first place)
        ranked = get_close_matches(str(exc.option_name), sorted(exc.possibilities),
                                   n=len(exc.possibilities), cutoff=0.0)
        text += f"（您是不是要用：{'、'.join(ranked)}）"
    return text


def _bad_option_usage(exc: Any) -> str:
    name = plain(exc.option_name, VALUE_LIMIT)
    if "does not take a value" in exc.message:
        return f"选项 {name} 不带值（它是一个开关）"
    count = re.search(r"requires (\d+) arguments", exc.message)
    return f"选项 {name} 需要 {count.group(1)} 个值" if count else f"选项 {name} 后面缺少值"


def _usage_message(exc: Any) -> str:
    """Plain UsageErrors raised as English sentences (``ctx.fail``) — matched by their shape."""
    text = str(exc.message)
    ctx = getattr(exc, "ctx", None)
    found = re.match(r"No such command '(.*)'\.", text, re.S)
    if found:
        name = found.group(1)
        commands = sorted(getattr(ctx.command, "commands", {})) if ctx is not None else []
        close = get_close_matches(name, commands)
        hint = f"（您是不是要用：{'、'.join(close)}）" if close else f"；可用：{'、'.join(commands)}"
        return f"没有这个命令：{_quoted(name)}{hint}"
    found = re.match(r"Got unexpected extra argument(?:\(s\)|s)? \((.*)\)$", text, re.S)
    if found:
        return f"多余的参数：{plain(found.group(1), VALUE_LIMIT)}"
    if text.startswith("Missing command"):
        return "缺少子命令"
    found = re.match(r"Argument '(.*)' takes (\d+) values", text)
    if found:
        return f"参数 {found.group(1).upper()} 需要 {found.group(2)} 个值"
    if text.startswith("Value must be an iterable"):
        return "此处应给出一个或多个值"
    return plain(text, MESSAGE_LIMIT) if _has_chinese(text) else f"用法错误（{plain(text, MESSAGE_LIMIT)}）"


def translate(exc: Any) -> str:
    """A Click usage error as one zh-CN sentence (without the usage line)."""
    if isinstance(exc, click_errors.MissingParameter):
        return _missing(exc)
    if isinstance(exc, click_errors.BadParameter):
        return _bad_parameter(exc)
    if isinstance(exc, click_errors.NoSuchOption):
        return _no_such_option(exc)
    if isinstance(exc, click_errors.BadOptionUsage):
        return _bad_option_usage(exc)
    if isinstance(exc, click_errors.UsageError):
        return _usage_message(exc)
    return f"无法执行（{plain(exc.format_message(), MESSAGE_LIMIT)}）"


def _usage_line(ctx: Any) -> str | None:
    if ctx is None:
        return None
    pieces = " ".join(ctx.command.collect_usage_pieces(ctx))
    return f"用法：{ctx.command_path} {pieces}".rstrip()


def _deepest_context(ctx: Any, args: list[str]) -> Any:
    """The context of the (sub)command ``args`` name, built without parsing: for the errors the
    option parser raises without one (``--limit`` given no value)."""
    for token in args:
        sub = getattr(ctx.command, "commands", {}).get(token)
        if sub is None:
            break
        ctx = sub.context_class(sub, info_name=token, parent=ctx)
    return ctx


def show_usage_error(exc: Any, fallback: Any = None) -> NoReturn:
    """Print a usage error in zh-CN on stderr and exit 2 (or the error's own code)."""
    ctx = getattr(exc, "ctx", None) or fallback
    lines = [_usage_line(ctx), f"错误：{translate(exc)}"]
    if ctx is not None:
        lines.append(f"查看帮助：{ctx.command_path} --help")
    with contextlib.suppress(OutputFailed):  # stderr is gone; the exit code still says it
        err_console.print("\n".join(line for line in lines if line), markup=False, highlight=False)
    raise typer.Exit(getattr(exc, "exit_code", 2))


def check_utf8(args: list[str]) -> None:
    """Refuse arguments whose bytes were not UTF-8 (Python keeps them as lone surrogates, which
    no database driver or terminal can take), naming the argument with its bytes shown as ``\\xNN``."""
    for arg in args:
        if _SURROGATE.search(arg):
            raise click_errors.UsageError(
                f"参数{_quoted(arg)}含有无效的 UTF-8 字节，请用 UTF-8 编码输入（文件名亦同）")


class ZhGroup(TyperGroup):
    """The root group: every usage error below it is shown in zh-CN and exits 2."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        try:
            check_utf8(args)
            return super().make_context(info_name, args, parent=parent, **extra)
        except click_errors.NoArgsIsHelpError:
            raise  # the help text itself, shown by Typer
        except click_errors.UsageError as exc:
            show_usage_error(exc)

    def invoke(self, ctx: Any) -> Any:
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]  # before Click consumes them
        try:
            return super().invoke(ctx)
        except click_errors.NoArgsIsHelpError:
            raise
        except click_errors.UsageError as exc:
            show_usage_error(exc, fallback=_deepest_context(ctx, args))

"""The one way the CLI prints: user text is data, never Rich markup, and long values are cut.

Anything a person typed or the database holds can contain ``[/x]`` (which Rich would parse as a
closing tag and crash on), surrogates from argv bytes that are not UTF-8 (which no encoder can
write), or 100 KB (which Rich lays out in quadratic time). ``safe`` makes such a value fit inside a
markup string; ``cell`` makes it a plain table cell; the consoles turn any failure to print into
``OutputFailed`` so that a command which already saved its change can say so.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

ELLIPSIS = "…"
CELL_LIMIT = 200  # a list's cell: enough for a title, short enough to keep the table a table
DETAIL_LIMIT = 2000  # a detail view's value (``show``)
MESSAGE_LIMIT = 1500  # an error message: room for a list of problems, not for 100 KB typed
_SURROGATE = re.compile("[\ud800-\udfff]")


_OS_REASONS = {
    errno.ENOSPC: "磁盘空间不足",
    errno.EDQUOT: "超出磁盘配额",
    errno.EFBIG: "文件过大",
    errno.EACCES: "没有权限",
    errno.EPERM: "没有权限",
    errno.EROFS: "只读文件系统",
    errno.ENOENT: "目录或文件不存在",
    errno.ENOTDIR: "路径中有一段不是目录",
    errno.EISDIR: "这是一个目录",
    errno.ENAMETOOLONG: "文件名过长",
    errno.EPIPE: "输出管道已关闭",
    errno.EIO: "读写错误",
    errno.EXDEV: "跨文件系统",
}


def os_reason(exc: OSError) -> str:
    """An operating-system error in zh-CN (``strerror`` is English), with its errno name."""
    name = errno.errorcode.get(exc.errno or 0, "")
    reason = _OS_REASONS.get(exc.errno or 0, "系统错误")
    return f"{reason}（{name}）" if name else reason


class OutputFailed(Exception):
    """Printing failed (closed pipe, full disk, a bug in layout): not the command's work."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause

    @property
    def reason(self) -> str:
        """A short zh-CN-friendly reason: the OS error's text or the exception's name."""
        if isinstance(self.cause, OSError):
            return os_reason(self.cause)
        return plain(f"{type(self.cause).__name__}: {self.cause}", MESSAGE_LIMIT)


def _unsurrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    # U+DC80..U+DCFF is how Python carries one undecodable argv byte (surrogateescape).
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def clip(text: str, limit: int, *, middle: bool = False) -> str:
    """Cut ``text`` to about ``limit`` characters with a visible ellipsis.

    ``middle`` keeps the end as well, for messages whose meaning is at the end ("…」不存在").
    """
    if len(text) <= limit:
        return text
    if middle:
        tail = max(limit // 4, 1)
        return f"{text[:limit - tail]}{ELLIPSIS}（省略 {len(text) - limit} 字）{ELLIPSIS}{text[-tail:]}"
    return text[:limit] + ELLIPSIS


def plain(value: Any, limit: int = DETAIL_LIMIT, *, middle: bool = False) -> str:
    """A value as printable text: ``str``, cut, and undecodable argv bytes shown as ``\\xNN``."""
    text = "" if value is None else str(value)
    return _SURROGATE.sub(_unsurrogate, clip(text, limit, middle=middle))


def safe(value: Any, limit: int = DETAIL_LIMIT, *, middle: bool = False) -> str:
    """A value to put inside a Rich markup string: ``plain`` and then markup-escaped."""
    return escape(plain(value, limit, middle=middle))


def cell(value: Any, limit: int = CELL_LIMIT) -> Text:
    """A table cell that is never parsed as markup."""
    return Text(plain(value, limit))


def cells(*values: Any, limit: int = CELL_LIMIT) -> list[Text]:
    """A table row of plain cells: ``table.add_row(*cells(code, title, ...))``."""
    return [cell(v, limit) for v in values]


def message(value: Any) -> str:
    """An error message for markup output: escaped, cut in the middle so its ending survives."""
    return safe(value, MESSAGE_LIMIT, middle=True)


class SafeConsole(Console):
    """A Rich console whose failures to print surface as ``OutputFailed``."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        try:
            super().print(*objects, **kwargs)
        except OutputFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here is an output failure
            raise OutputFailed(exc) from exc

    def on_broken_pipe(self) -> None:
        """The reader went away (``… | head``). Rich would exit 1 at once; instead later writes go
        to /dev/null (so the interpreter's last flush is quiet) and the command decides."""
        with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)
        raise OutputFailed(BrokenPipeError(errno.EPIPE, "Broken pipe"))

    def data(self, text: Any, limit: int = DETAIL_LIMIT) -> None:
        """Print a stored or typed value on its own, with no markup and no highlighting."""
        self.print(plain(text, limit), markup=False, highlight=False)


console = SafeConsole(soft_wrap=True)
err_console = SafeConsole(stderr=True, soft_wrap=True)


def _default(value: Any) -> Any:
    """Times as ISO 8601 with their offset: a naive one is UTC (what the database stores)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def print_json(payload: Any) -> None:
    """Machine output: JSON is not cut, but it can never carry a surrogate to the encoder."""
    import typer

    text = json.dumps(payload, ensure_ascii=False, indent=2, default=_default)
    try:
        typer.echo(_SURROGATE.sub(_unsurrogate, text))
    except Exception as exc:  # noqa: BLE001 - see SafeConsole.print
        raise OutputFailed(exc) from exc

"""Read a user's input file without trusting what the path points at.

Every file the product reads on a person's behalf (org, checklists, risk register, routing and
templates, calendar overrides, inspection results, plans, imports) comes through here, because a
path can name a FIFO that blocks a read forever, a device like ``/dev/zero`` that never ends, a
directory, a file far too large, or text saved by a Windows editor in GBK. So:

* the path is ``os.stat``-ed before it is opened and must be a regular file (symlinks to one are
  fine); it is then opened with ``O_NONBLOCK`` and re-checked with ``fstat`` on the open handle, so
  a FIFO swapped in between cannot hang the read either;
* each kind of file has a size limit (constants below, not settings) and the read is bounded by it;
* text must be UTF-8 (a BOM is accepted and dropped). Text that is not UTF-8 but decodes as
  GB18030 (a superset of GBK/GB2312, what many Chinese Windows editors save) is refused with the
  fix (save as UTF-8) — or, for tabular imports that ask for it, decoded. Anything else is refused
  naming the byte offset of the first bad byte.

Every refusal is ``InvalidInput`` (exit 2) with a zh-CN message naming the file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from core.errors import InvalidInput

MB = 1024 * 1024
MAX_YAML_BYTES = 10 * MB  # org, checklists, register, routing, templates, overrides, results, plans
MAX_TABLE_BYTES = 50 * MB  # CSV / Excel imports
MAX_EVIDENCE_BYTES = 50 * MB  # evidence photos and reports

_CHUNK = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "目录"
    if stat.S_ISFIFO(mode):
        return "命名管道（FIFO）"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "设备文件"
    if stat.S_ISSOCK(mode):
        return "套接字"
    return "特殊文件"


def _size_text(limit: int) -> str:
    return f"{limit // MB} MB" if limit >= MB else f"{limit} 字节"


def _checked(st: os.stat_result, path: Path, what: str, limit: int) -> os.stat_result:
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"{what} {path} 是{_kind(st.st_mode)}，不是普通文件；请给出一个普通文件",
                           path=str(path))
    if st.st_size > limit:
        raise InvalidInput(f"{what} {path} 有 {st.st_size} 字节，超过上限 {_size_text(limit)}",
                           path=str(path))
    return st


def check_regular(path: Path | str, what: str = "文件", limit: int = MAX_YAML_BYTES) -> int:
    """Refuse anything but an existing regular file within ``limit`` bytes; returns its size.

    Stat only, nothing is opened: safe on FIFOs and devices. Use ``open_regular`` to read.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise InvalidInput(f"找不到{what} {path}", path=str(path)) from exc
    except OSError as exc:
        raise InvalidInput(f"无法读取{what} {path}：{exc.strerror}", path=str(path)) from exc
    return _checked(st, path, what, limit).st_size


@contextmanager
def open_regular(path: Path | str, what: str = "文件",
                 limit: int = MAX_YAML_BYTES) -> Iterator[BinaryIO]:
    """A binary handle on a regular file within ``limit``, opened so that it cannot block.

    The caller must still bound its reads (``read_bytes`` does): the file may grow after the check.
    """
    path = Path(path)
    check_regular(path, what, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InvalidInput(f"无法读取{what} {path}：{exc.strerror}", path=str(path)) from exc
    try:
        _checked(os.fstat(fd), path, what, limit)  # the path may have been swapped meanwhile
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_bytes(path: Path | str, what: str = "文件", limit: int = MAX_YAML_BYTES) -> bytes:
    """The whole content of a regular file, never more than ``limit`` bytes read."""
    path = Path(path)
    with open_regular(path, what, limit) as handle:
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                block = handle.read(min(_CHUNK, limit + 1 - total))
            except OSError as exc:
                raise InvalidInput(f"无法读取{what} {path}：{exc.strerror}", path=str(path)) from exc
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > limit:
                raise InvalidInput(f"{what} {path} 超过上限 {_size_text(limit)}", path=str(path))
    return b"".join(chunks)


def looks_gb18030(data: bytes) -> bool:
    """True if ``data`` is not UTF-8 but reads as Chinese text in GB18030 (GBK, GB2312)."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return bool(_CJK.search(text)) and not _CONTROL.search(text)


def decode(data: bytes, source: str, what: str = "文件", *, allow_gb18030: bool = False) -> str:
    """UTF-8 text (BOM dropped); GB18030 refused with the fix unless ``allow_gb18030``."""
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    elif data.startswith(_UTF16_BOMS):
        raise InvalidInput(f"{what} {source} 是 UTF-16 编码，请另存为 UTF-8 后重试", path=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if looks_gb18030(data):
            if allow_gb18030:
                return data.decode("gb18030")
            raise InvalidInput(
                f"{what} {source} 不是 UTF-8 编码（看起来是 GBK/GB18030），请另存为 UTF-8 后重试"
                "（如记事本「另存为」选择编码 UTF-8，或 iconv -f GB18030 -t UTF-8）",
                path=source, encoding="gb18030") from exc
        raise InvalidInput(
            f"{what} {source} 不是 UTF-8 文本：第 {exc.start} 字节（0x{data[exc.start]:02x}）"
            "无法解码；请另存为 UTF-8 后重试", path=source, offset=exc.start) from exc
    nul = text.find("\x00")
    if nul >= 0:
        offset = len(text[:nul].encode("utf-8"))
        raise InvalidInput(f"{what} {source} 第 {offset} 字节是 NUL，不是文本文件", path=source,
                           offset=offset)
    return text


def read_text(path: Path | str, what: str = "文件", *, limit: int = MAX_YAML_BYTES,
              allow_gb18030: bool = False) -> str:
    """A user's text file, read safely (see the module docstring)."""
    path = Path(path)
    return decode(read_bytes(path, what, limit), str(path), what, allow_gb18030=allow_gb18030)

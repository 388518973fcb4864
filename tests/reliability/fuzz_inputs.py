"""Hostile inputs for the CLI fuzz suite: the explicit attacks of issue 11 and Hypothesis
strategies around them. Files are made on demand in a test's folder (``HostileFiles``).

Categories (one test id per command family and category):
text      Rich markup, 100 KB strings, control characters, NUL, RTL marks, empty and blank
bad_utf8  invalid UTF-8 argv bytes, as Python hands them over (lone surrogates, ``os.fsdecode``)
date      out of range, impossible, empty, far future
number    1e400, nan, -inf, 20-digit integers, negative, empty
file      GBK and BOM YAML, /dev/zero, a FIFO, a directory, billion laughs, deep nesting,
          duplicate keys, empty file, a missing file
output    /nonexistent/x.csv, a directory, /dev/full
settings  broken SAFELOOP_* settings and ``--db`` URLs
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import strategies as st

HUGE = "隐" * 34_000  # 102 KB of UTF-8: under the kernel's 128 KiB limit for one argv string

TEXT: dict[str, str] = {
    "markup-close": "[/x]",
    "markup-bold": "[bold]粗体",
    "markup-link": "[link=file:///etc/passwd]x[/link]",
    "markup-unclosed-close": "压力表[/]失效",
    "huge-100k": HUGE,
    "control-chars": "a\x01\x07\x08\x1b[31m红\x1b[0m\r\x0b\x0c",
    "nul": "压力表\x00失效",
    "rtl-marks": "\u202egnp.exe\u202c\u200f\u200e\ufeff",
    "empty": "",
    "blank": "   \t ",
    "newlines": "第一行\n第二行\r\n[/x]",
    "emoji-astral": "\U0001f525\U00020000",
}

BAD_UTF8: dict[str, str] = {
    "lone-ff": os.fsdecode(b"\xff"),
    "truncated-cjk": os.fsdecode("压力表".encode()[:-1]),
    "overlong": os.fsdecode(b"\xc0\xaf\xe0\x80\xaf"),
    "gbk-bytes": os.fsdecode("压力表失效".encode("gbk")),
}

DATE: dict[str, str] = {
    "year-1": "0001-01-01",
    "year-1-time": "0001-01-01 00:00",
    "year-9999": "9999-12-31 23:59",
    "year-9999-day": "9999-12-31",
    "feb-30": "2020-02-30",
    "empty": "",
    "blank": "  ",
    "hour-25": "2026-11-02 25:00",
    "offset-extreme": "2026-11-02T10:00+23:59",
    "words": "下周一",
    "huge-id": "2026-" + "1" * 100_000,
}

NUMBER: dict[str, str] = {
    "1e400": "1e400",
    "nan": "nan",
    "-inf": "-inf",
    "20-digits": "99999999999999999999999",
    "negative": "-1",
    "zero": "0",
    "empty": "",
    "words": "一百",
    "huge-100k": "9" * 100_000,
}

# Integer-only slots (click parses these itself): the same attacks, read as usage errors.
INT_NUMBER = {k: v for k, v in NUMBER.items() if k in ("1e400", "nan", "20-digits", "negative",
                                                         "empty", "huge-100k")}

OUTPUT_NAMES = ("nonexistent-dir", "a-directory", "dev-full")

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


class HostileFiles:
    """Hostile input files and output paths inside one test's folder (plus /dev ones)."""

    def __init__(self, root: Path) -> None:
        self.root = root / "hostile"
        self.root.mkdir(parents=True, exist_ok=True)

    def _write(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.write_bytes(data)
        return str(path)

    def inputs(self, valid_yaml: str) -> dict[str, str]:
        """Each hostile file by name; ``valid_yaml`` is a correct file of the command's format,
        re-encoded or wrapped to make the GBK, BOM and duplicate-key variants."""
        fifo = self.root / "fifo.yaml"
        if not fifo.exists():
            os.mkfifo(fifo)
        directory = self.root / "a-directory.yaml"
        directory.mkdir(exist_ok=True)
        nested_map = "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + f"{'  ' * 200}v\n"
        first_key = valid_yaml.split(":", 1)[0].strip() or "key"
        return {
            "gbk": self._write("gbk.yaml", valid_yaml.encode("gbk", errors="replace")),
            "bom": self._write("bom.yaml", b"\xef\xbb\xbf" + valid_yaml.encode()),
            "utf16": self._write("utf16.yaml", valid_yaml.encode("utf-16")),
            "dev-zero": "/dev/zero",
            "fifo": str(fifo),
            "directory": str(directory),
            "missing": str(self.root / "missing.yaml"),
            "empty": self._write("empty.yaml", b""),
            "billion-laughs": self._write("laughs.yaml", BILLION_LAUGHS.encode()),
            "nested-200-map": self._write("nested-map.yaml", nested_map.encode()),
            "nested-400-flow": self._write("nested-flow.yaml", b"[" * 400 + b"]" * 400),
            "duplicate-keys": self._write(
                "dup.yaml", (valid_yaml + f"\n{first_key}: again\n").encode()),
            "scalar": self._write("scalar.yaml", b"just a string\n"),
            "binary": self._write("binary.yaml", bytes(range(256)) * 4),
            "markup-content": self._write("markup.yaml", valid_yaml.replace(
                "：", "[/x]：").encode() + b"\n# [bold]\n"),
        }

    def outputs(self, suffix: str) -> dict[str, str]:
        directory = self.root / f"out-directory{suffix}"
        directory.mkdir(exist_ok=True)
        return {
            "nonexistent-dir": f"/nonexistent/x{suffix}",
            "a-directory": str(directory),
            "dev-full": "/dev/full",
        }


# ---- Hypothesis strategies ------------------------------------------------------------------

_PIECES = st.sampled_from(["[/x]", "[bold]", "[/]", "[link=file:///etc/passwd]", "\x00", "\u202e",
                           "\x1b[2J", "{x", "%s", "{{ x }}", "'", '"', "\\", "../", "-", "--as",
                           "=", ":", "：", "YH-000001"])
# Text as argv can carry: any code point but lone surrogates (argv bytes are decoded with
# surrogateescape, which the bad_utf8 category covers explicitly).
_CHARS = st.characters(exclude_categories=("Cs",))
HOSTILE_TEXT = st.lists(st.one_of(_PIECES, st.text(_CHARS, max_size=12)), min_size=0,
                        max_size=5).map("".join)
HOSTILE_DATE = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M").rjust(16, "0")),
    st.dates().map(lambda d: d.isoformat().rjust(10, "0")),
    st.from_regex(r"\A[0-9]{1,5}-[0-9]{1,3}-[0-9]{1,3}( [0-9]{1,3}:[0-9]{1,3})?\Z"),
)
HOSTILE_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["1e400", "-1e400", "0x10", "1_000", "１２", "NaN", "inf", "1e-400"]),
)

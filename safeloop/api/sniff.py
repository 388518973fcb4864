"""An uploaded file's type, read from its first bytes -- never from the name the client gave.

Photos (JPEG, PNG), PDF, and Office documents: OOXML (a zip holding ``[Content_Types].xml``) and
the older OLE compound files (.doc/.xls/.ppt). Anything else (an .exe renamed .jpg, HTML, a
script) is refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

JPEG = b"\xff\xd8\xff"
PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF-"
ZIP = b"PK\x03\x04"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ACCEPTED = "JPEG、PNG 图片，PDF，Office 文档（docx/xlsx/pptx 或 doc/xls/ppt）"


def media_type(path: Path) -> str | None:
    """The file's media type by content, or None if it is not one we accept."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(JPEG):
        return "image/jpeg"
    if head.startswith(PNG):
        return "image/png"
    if head.startswith(PDF):
        return "application/pdf"
    if head.startswith(OLE):
        return "application/x-ole-storage"  # .doc / .xls / .ppt
    if head.startswith(ZIP):
        return _office_zip(path)
    return None


def _office_zip(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None  # a zip, but not an Office document
    for prefix, kind in (("word/", "wordprocessingml.document"), ("xl/", "spreadsheetml.sheet"),
                         ("ppt/", "presentationml.presentation")):
        if any(n.startswith(prefix) for n in names):
            return f"application/vnd.openxmlformats-officedocument.{kind}"
    return None

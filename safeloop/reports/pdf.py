"""HTML to PDF for printable outputs (the risk notice cards), with WeasyPrint when installed.

WeasyPrint needs the system's Pango (present on Debian) and, for Chinese, a CJK font: without
one every character prints as a box, so that is refused with the fix named instead of writing
a useless file. Install with ``pip install 'safeloop[pdf]'`` and ``apt-get install
fonts-noto-cjk`` (or any CJK font fontconfig can find).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInput

INSTALL_HINT = "请安装 PDF 支持：pip install 'safeloop[pdf]'（需要系统的 Pango 库）"
FONT_HINT = ("未找到中文字体，PDF 中的汉字会显示为方框；"
             "请安装中文字体，如 Debian：apt-get install fonts-noto-cjk")


def has_cjk_font() -> bool:
    """Whether fontconfig knows a font covering Chinese (what WeasyPrint will draw with)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    found = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True,
                           check=False, timeout=30)
    return bool(found.stdout.strip())


@dataclass(frozen=True)
class PdfResult:
    pages: int
    fonts: list[str]  # the font families embedded, to show (and test) that Chinese has a font


def write_pdf(html: str, path: Path) -> PdfResult:
    """Render ``html`` to ``path``."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: Pango missing
        raise InvalidInput(f"{INSTALL_HINT}（{exc}）") from exc
    if not has_cjk_font():
        raise InvalidInput(FONT_HINT)
    document = weasyprint.HTML(string=html).render()
    document.write_pdf(path)
    families = sorted({str(getattr(f, "family", "")) for f in document.fonts.values()})
    return PdfResult(len(document.pages), families)

"""The ``safeloop`` command line (typer + rich).

``run`` is the console entry point: it reads the settings first, at the one entry point, so a
wrong setting is a zh-CN message and exit 2 before any command runs, never a traceback.
"""

from __future__ import annotations

import sys


def run() -> None:
    from core.errors import SafeloopError
    from core.settings import get_settings

    try:
        get_settings()
        from safeloop.cli.main import run as main
    except SafeloopError as exc:
        print(f"错误：{exc.message}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from exc
    main()

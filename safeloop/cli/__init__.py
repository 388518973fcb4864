"""The ``safeloop`` command line (typer + rich).

``run`` is the console entry point: it reads the settings before the command modules are
imported (some domain modules read them at import), so a wrong setting is a zh-CN message and
exit 2, never a traceback.
"""

from __future__ import annotations

import sys


def run() -> None:
    from core.errors import SafeloopError
    from core.settings import get_settings

    try:
        get_settings()
        from safeloop.cli.main import run as main  # imports modules that read the settings
    except SafeloopError as exc:
        print(f"错误：{exc.message}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from exc
    main()

"""No test writes outside its temporary folder: the repository's working tree (tracked, untracked
and ignored files alike, caches and the virtualenv aside) is the same after the run as before."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What running Python, pytest, hypothesis and Prefect legitimately leave behind.
CACHES = (".venv/", ".prefect/", ".prefect-ci/", ".hypothesis/", ".pytest_cache/", ".ruff_cache/",
          ".mypy_cache/", ".git/")


def _is_cache(path: str) -> bool:
    return path.startswith(CACHES) or "__pycache__" in path or ".egg-info" in path


def snapshot(root: Path = ROOT) -> set[str] | None:
    """``git status`` with ignored files, and the size and mtime of every file under an ignored
    folder that is not a cache (a test writing into an existing ``safeloop-data/`` shows too);
    None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--ignored=matching"],
            cwd=root, capture_output=True, text=True, timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    state = set()
    for line in out.splitlines():
        path = line[3:]
        if _is_cache(path):
            continue
        state.add(line)
        folder = root / path
        if line.startswith("!!") and folder.is_dir():
            for file in folder.rglob("*"):
                if file.is_file() and not _is_cache(str(file.relative_to(root))):
                    info = file.stat()
                    state.add(f"{file.relative_to(root)} {info.st_size} {info.st_mtime_ns}")
    return state


@pytest.fixture(scope="session", autouse=True)
def working_tree_unchanged() -> Iterator[None]:
    before = snapshot()
    yield
    after = snapshot()
    if before is not None and after is not None:
        changed = sorted(after ^ before)
        assert not changed, f"the test run changed the working tree: {changed[:20]}"

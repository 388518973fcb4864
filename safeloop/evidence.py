"""Evidence files stored by content hash under the storage folder; nothing outside it is read back.

The stored path comes from the hash, never from the user's file name, so a name like
``../../etc/passwd`` cannot place or read a file outside ``storage_dir``.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core import infile
from core.errors import InvalidInput, NotFound
from models.db import is_sqlite, utcnow
from models.tables import EVIDENCE

MAX_BYTES = infile.MAX_EVIDENCE_BYTES


def store(session: Session, storage_dir: Path, source: Path) -> dict[str, object]:
    """Copy ``source`` into the store (once per content) and return its reference for audit data.

    Read once, through the safe reader (a regular file within the limit: never a FIFO or a
    device), hashing while copying into a temporary file inside the store, so what is hashed is
    what is stored. The row is added to the caller's transaction; a file this call added is
    removed again if that transaction rolls back.
    """
    _check_storage(storage_dir)
    infile.check_regular(source, "证据文件", MAX_BYTES)  # before the store makes any folder
    incoming = storage_dir / "evidence" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = incoming / f"{uuid.uuid4().hex}.part"
    digest, size = hashlib.sha256(), 0
    try:
        with infile.open_regular(source, "证据文件", MAX_BYTES) as handle, tmp.open("wb") as out:
            while block := handle.read(1 << 20):
                size += len(block)
                if size > MAX_BYTES:
                    raise InvalidInput(f"证据文件「{source.name}」超过 {MAX_BYTES // 1024 // 1024} MB")
                digest.update(block)
                out.write(block)
        sha = digest.hexdigest()
        relative = Path("evidence") / sha[:2] / sha
        target = storage_dir / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.replace(target)
            _remove_if_rolled_back(session, target, sha)
    finally:
        tmp.unlink(missing_ok=True)
    values = {"sha256": sha, "size": size, "name": source.name[:255],
              "stored_path": relative.as_posix(), "created_at": utcnow()}
    dialect = sqlite if is_sqlite(str(session.get_bind().url)) else postgresql
    stmt = dialect.insert(EVIDENCE).values(values).on_conflict_do_nothing(
        index_elements=["sha256"])
    session.connection().execute(stmt)
    return {"sha256": sha, "name": values["name"], "size": size, "path": values["stored_path"]}


def _check_storage(storage_dir: Path) -> None:
    if storage_dir.exists() and not storage_dir.is_dir():
        raise InvalidInput(f"证据存储目录 {storage_dir} 不是目录（SAFELOOP_STORAGE_DIR）")


_NEW_FILES = "safeloop.evidence.new_files"


def _remove_if_rolled_back(session: Session, target: Path, sha: str) -> None:
    """A file this transaction added to the store goes again if the transaction does not commit
    (the event it was evidence for was refused): a refused event leaves no evidence behind."""
    pending = session.info.get(_NEW_FILES)
    if pending is None:
        pending = session.info[_NEW_FILES] = []
        event.listen(session, "after_commit", lambda s: s.info[_NEW_FILES].clear())
        event.listen(session, "after_rollback", _discard_new_files)
    pending.append((target, sha))


def _discard_new_files(session: Session) -> None:
    pending = session.info.get(_NEW_FILES) or []
    if not pending:
        return
    with session.get_bind().connect() as conn:  # what another transaction committed stays
        kept = set(conn.execute(select(EVIDENCE.c.sha256).where(
            EVIDENCE.c.sha256.in_([sha for _, sha in pending]))).scalars())
    for target, sha in pending:
        if sha not in kept:
            target.unlink(missing_ok=True)
            _remove_empty(target.parent, target.parent.parent.parent)
    pending.clear()


def _remove_empty(folder: Path, root: Path) -> None:
    """Remove folders the store made for nothing, up to (not including) the storage folder."""
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): leave it
            return
        folder = folder.parent


def open_path(session: Session, storage_dir: Path, sha256: str) -> Path:
    """The file for a stored hash, confined to the storage folder."""
    stored = session.connection().execute(
        select(EVIDENCE.c.stored_path).where(EVIDENCE.c.sha256 == sha256)
    ).scalar()
    if stored is None:
        raise NotFound(f"证据「{sha256}」不存在")
    root = storage_dir.resolve()
    path = (root / stored).resolve()
    if not path.is_relative_to(root):
        raise InvalidInput("证据路径超出存储目录")
    return path

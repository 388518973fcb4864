"""``POST /api/v1/evidence``: upload one evidence file (multipart), stored by its SHA-256.

The body is capped by the app (``api_max_upload_bytes``) and the file again while it is copied;
its type is sniffed from its bytes (``safeloop.api.sniff``); it is stored through the existing
store (``safeloop.evidence.store``), whose path comes from the hash. The client's file name is
kept only as a display name: reduced to its last component without separators, control
characters or leading dots, it names a file inside a fresh private folder and nothing else.
The answer is the reference an event's ``evidence`` field takes.
"""

# No ``from __future__ import annotations``: the handlers' annotations use values of mount().
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from fastapi import File, UploadFile

from core.settings import Settings
from safeloop import evidence
from safeloop.api import sniff
from safeloop.api.deps import CurrentPrincipal, DbSession, Visibility
from safeloop.api.errors import ApiError, responses
from safeloop.api.routes import Prefixed
from safeloop.api.routes.workflows import READ_ONLY

MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 200
FILE_HELP = "证据文件：照片（JPEG/PNG）、PDF 或 Office 文档"


def safe_name(given: str | None) -> str:
    """A display name from a client's file name that can never act as a path."""
    base = (given or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in "/\\:\x00").strip()
    base = base.lstrip(".").strip()[:MAX_NAME_CHARS]
    while len(base.encode("utf-8")) > MAX_NAME_BYTES:
        base = base[:-1]
    return base or "upload"


def receive(session: Any, storage: Path, source: BinaryIO, filename: str | None, limit: int, *,
            kinds: frozenset[str] | None = None, accepted: str = sniff.ACCEPTED) -> dict[str, Any]:
    """An uploaded file copied (capped at ``limit``), sniffed by content and stored: its reference
    with ``media_type``. The evidence row joins the caller's transaction (not committed here);
    ``kinds`` narrows the accepted media types (a photo field takes images only)."""
    folder = storage / "evidence" / "incoming" / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=False)
    try:
        target = folder / safe_name(filename)
        size = 0
        with target.open("wb") as out:
            while block := source.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise ApiError(413, "payload_too_large",
                                   f"证据文件超过 {limit // 1024 // 1024} MB", field="file")
                out.write(block)
        if size == 0:
            raise ApiError(422, "invalid_input", "证据文件是空的", field="file")
        kind = sniff.media_type(target)
        if kind is None or (kinds is not None and kind not in kinds):
            raise ApiError(415, "unsupported_media_type",
                           f"文件类型不被接受（按内容识别，不看扩展名）；可接受：{accepted}",
                           field="file")
        ref = evidence.store(session, storage, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {**ref, "media_type": kind}


def mount(router: Prefixed, settings: Settings) -> None:
    limit = settings.api_max_upload_bytes

    def upload(file: Annotated[UploadFile, File(description=FILE_HELP)],
               caller: CurrentPrincipal, session: DbSession, scope: Visibility) -> dict[str, Any]:
        if scope.read_only:
            raise ApiError(403, "permission_denied", READ_ONLY)
        ref = receive(session, settings.storage_dir, file.file, file.filename, limit)
        session.commit()
        return ref

    router.add_api_route("/evidence", upload, methods=["POST"], status_code=201, tags=["证据"],
                         summary="上传证据文件（按 SHA-256 存储；返回可用于操作 evidence 字段的引用）",
                         operation_id="upload_evidence", responses=responses(415))

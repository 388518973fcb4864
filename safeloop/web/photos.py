"""A photo posted with an event whose params take evidence (提交验收 with the rectified site, 现场整改):
the event's form posts, multipart, to the fixed address ``/events/photo`` (the app caps that body
as an upload; a path per entity could not be listed), naming the workflow, entity and event.

The photo goes through the same path as on /hazard/new (``receive``: size cap, type by content,
images only) in the engine's transaction, so a refused event or photo writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, select
from starlette.responses import Response

from core.errors import NotFound
from models.tables import EVIDENCE
from safeloop.api.routes.bodies import body_model
from safeloop.api.routes.evidence import receive
from states.registry import WORKFLOWS
from states.workflow import EventRule, Workflow


class Visit(Protocol):
    """What this module reads of ``safeloop.web.pages.Visit`` (kept apart: pages imports this)."""

    session: Any
    form: dict[str, str] | None
    files: dict[str, Any]
    params: dict[str, str]

    @property
    def settings(self) -> Any: ...


IMAGES = frozenset({"image/jpeg", "image/png"})
PHOTO_TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
PHOTO_KINDS = "JPEG、PNG 照片"
FIELD = "photo"
PATH = "/events/photo"


def takes_photo(workflow: Workflow, rule: EventRule) -> bool:
    return "evidence" in body_model(workflow, rule).model_fields


def attach(visit: Visit, workflow: Workflow, rule: EventRule, data: dict[str, Any]) -> None:
    """Store the posted photo (if any) and add its reference to the event's evidence."""
    photo = visit.files.get(FIELD)
    if photo is None or not (photo.filename or photo.size) or not takes_photo(workflow, rule):
        return
    ref = receive(visit.session, visit.settings.storage_dir, photo.file, photo.filename,
                  visit.settings.api_max_upload_bytes, kinds=IMAGES, accepted=PHOTO_KINDS)
    data["evidence"] = [*data.get("evidence", []), {k: ref[k] for k in ("sha256", "name", "size", "path")}]


def image_response(conn: Connection, storage_dir: Path, sha: str, known: Collection[str]) -> Response:
    """A stored photo the caller's page refers to (``known``: the hashes its entity's trail or
    drafts carry), served as an image only when its bytes are one: anything else is 404."""
    stored = conn.execute(select(EVIDENCE.c.stored_path).where(EVIDENCE.c.sha256 == sha)).scalar() \
        if sha in known else None
    path = storage_dir / stored if stored else None
    if path is None or not path.is_file():
        raise NotFound("照片不存在")
    content = path.read_bytes()
    media = next((kind for kind, head in PHOTO_TYPES.items() if content.startswith(head)), None)
    if media is None:
        raise NotFound("照片不存在")
    return Response(content, media_type=media, headers={"X-Content-Type-Options": "nosniff",
                                                        "Cache-Control": "private, max-age=3600"})


def mount(app: Any, page: Callable[..., Any], fire: Callable[[Workflow], Callable[..., Any]]) -> None:
    def fire_with_photo(visit: Visit) -> Any:
        form = visit.form or {}
        workflow = WORKFLOWS.get(form.get("workflow", ""))
        if workflow is None:
            raise NotFound("没有这类事项")
        visit.params.update(code=form.get("code", "")[:200], event=form.get("event", "")[:64])
        return fire(workflow)(visit)

    app.router.add_route(PATH, page(fire_with_photo, uploads=True), methods=["POST"],
                         include_in_schema=False)

"""上报隐患 from a phone (``/hazard/new``): the hazard's facts, a unit among those where the
person may report (``reporters.units_for``), and one photo.

The photo goes through the API's upload path (``safeloop.api.routes.evidence.receive``: size
cap, type sniffed by content, the evidence store) restricted to images, in the same transaction
as the create (``states.engine.create``), so a refused report -- bad photo, wrong unit, invalid
field -- writes nothing, neither row nor file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from starlette.responses import Response

from core.errors import InvalidInput, PermissionDenied, SafeloopError
from models.enums import HazardCategory, HazardGrade
from safeloop.api.errors import kind_of, validation_fields
from safeloop.api.routes.bodies import body_model, split
from safeloop.api.routes.evidence import receive
from safeloop.api.routes.workflows import READ_ONLY
from safeloop.web import forms
from safeloop.web.pages import Visit, see_other
from safeloop.web.photos import IMAGES, PHOTO_KINDS
from safeloop.web.reporters import units_for
from states import engine
from states.registry import WORKFLOWS

HAZARD = WORKFLOWS["hazard"]
FIELDS = ("unit", "title", "category", "grade", "description", "location")
NO_UNIT = "您在任何单位都没有上报隐患的角色（巡查员、整改人、安全管理员、单位负责人、主要负责人或监管人员）"


def _form(visit: Visit, status: int = 200, *, refusal: str | None = None,
          posted: dict[str, str] | None = None) -> Response:
    units = units_for(visit.session.connection(), visit.principal.person_key)
    labels = {name: info.description or name
              for name, info in body_model(HAZARD, HAZARD.create_event).model_fields.items()}
    return visit.page("report.html", status, units=units, refusal=refusal, posted=posted or {},
                      labels=labels, categories=[(m.value, m.label) for m in HazardCategory],
                      grades=[(m.value, m.label) for m in HazardGrade])


def new(visit: Visit) -> Response:
    if visit.scope.read_only:
        return visit.page("error.html", 403, title="无权上报", message=READ_ONLY)
    if not units_for(visit.session.connection(), visit.principal.person_key):
        return visit.page("error.html", 403, title="无权上报", message=NO_UNIT)
    return _form(visit)


def _data(visit: Visit, form: dict[str, str]) -> tuple[dict[str, Any], str | None, str | None]:
    """The create's input from the form, checked by the API's body model (fields named)."""
    model = body_model(HAZARD, HAZARD.create_event)
    values = {k: v for k, v in forms.values_from(model, form, visit.settings.timezone).items()
              if k in FIELDS}
    try:
        body = model.model_validate(values)
    except ValidationError as exc:
        message, names = validation_fields(exc.errors())
        labels = "、".join(f"「{model.model_fields[n].description or n}」" for n in names
                          if n in model.model_fields)
        raise InvalidInput(f"请检查{labels}。{message}" if labels else message,
                           field=names[0] if names else None) from exc
    return split(body)


def submit(visit: Visit) -> Response:
    form = visit.form or {}
    posted = {k: v for k, v in form.items() if k in FIELDS}
    try:
        if visit.scope.read_only:
            raise PermissionDenied(READ_ONLY)
        data, comment, role = _data(visit, form)
        allowed = {u.key for u in units_for(visit.session.connection(), visit.principal.person_key)}
        if data["unit"] not in allowed:
            raise PermissionDenied(f"您不能在单位「{data['unit'][:64]}」上报隐患：请从列表中选择您所在的单位",
                                   field="unit")
        visit.session.rollback()  # the upload and the create: one transaction, started clean
        photo = visit.files.get("photo")
        if photo is not None and (photo.filename or photo.size):
            ref = receive(visit.session, visit.settings.storage_dir, photo.file, photo.filename,
                          visit.settings.api_max_upload_bytes, kinds=IMAGES, accepted=PHOTO_KINDS)
            data["evidence"] = [{k: ref[k] for k in ("sha256", "name", "size", "path")}]
        result = engine.create(visit.session, HAZARD, actor=visit.principal.person_key, data=data,
                               role=role, comment=comment)
    except SafeloopError as exc:
        visit.session.rollback()  # also removes a photo file this report added to the store
        _, status = kind_of(exc)
        return _form(visit, status, refusal=exc.message, posted=posted)
    return see_other(f"/hazard/{quote(result.code)}")


def mount(app: Any, page: Callable[..., Any]) -> None:
    add = app.router.add_route
    add("/hazard/new", page(new), methods=["GET"], include_in_schema=False)
    add("/hazard/new", page(submit, uploads=True), methods=["POST"], include_in_schema=False)




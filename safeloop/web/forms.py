"""An event's HTML form, generated from the same request model the API uses for its body
(``safeloop.api.routes.bodies.body_model``: the params model's fields with their Chinese
descriptions, less what the engine computes, plus ``comment`` and ``role``), and the way back:
the posted text turned into that model's input.

Only fields a person filled in are passed on, so the params model's own defaults apply and the
engine validates as it does for the API. Times are typed in the configured zone
(``core.timeparse.parse_local``). A field a plain form cannot carry (a list of evidence files)
is not shown; the engine's own message says so if it is required.
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from core.errors import InvalidInput
from core.timeparse import parse_local
from models.enums import LabelledEnum, Role

LONG_TEXT = ("description", "measures", "comment", "findings", "reason", "note")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text | textarea | number | datetime | date | select | checkbox
    required: bool
    options: tuple[tuple[str, str], ...] = ()  # (value, label) for a select
    step: str = "any"


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _label(value: str, cls: Any) -> str:
    if isinstance(cls, type) and issubclass(cls, LabelledEnum):
        return cls(value).label
    try:
        return Role(value).label
    except ValueError:
        return value


def field_of(name: str, info: FieldInfo) -> Field | None:
    """The form field of one model field, or None when a form cannot carry it."""
    kind_type = _unwrap(info.annotation)
    label = "以哪个角色操作（默认自动选择）" if name == "role" else info.description or name
    required = info.is_required()
    if typing.get_origin(kind_type) is Literal:
        values = [str(v) for v in typing.get_args(kind_type)]
        return Field(name, label, "select", required, tuple((v, _label(v, None)) for v in values))
    if isinstance(kind_type, type) and issubclass(kind_type, enum.Enum):
        return Field(name, label, "select", required,
                     tuple((str(m.value), _label(str(m.value), kind_type)) for m in kind_type))
    if kind_type is bool:
        return Field(name, label, "checkbox", False)
    if kind_type is int:
        return Field(name, label, "number", required, step="1")
    if kind_type in (float, Decimal):
        return Field(name, label, "number", required, step="0.01")
    if kind_type is datetime:
        return Field(name, label, "datetime", required)
    if kind_type is date:
        return Field(name, label, "date", required)
    if kind_type is str:
        limit = next((m.max_length for m in info.metadata if hasattr(m, "max_length")), None)
        long = name in LONG_TEXT or limit is None or limit > 200
        return Field(name, label, "textarea" if long else "text", required)
    return None


def fields_of(model: type[BaseModel]) -> list[Field]:
    found = [field_of(name, info) for name, info in model.model_fields.items()]
    return [f for f in found if f is not None]


def values_from(model: type[BaseModel], form: dict[str, str], zone: str) -> dict[str, Any]:
    """The model's input from posted text: empty fields left out, times read in ``zone``."""
    out: dict[str, Any] = {}
    for spec in fields_of(model):
        raw = form.get(spec.name)
        if spec.kind == "checkbox":
            if raw is not None:
                out[spec.name] = True
            continue
        if raw is None or not raw.strip():
            continue
        if spec.kind == "datetime":
            try:
                out[spec.name] = parse_local(raw.replace("T", " "), zone, end_of_day=True,
                                             what=spec.label)
            except InvalidInput as exc:
                exc.details.setdefault("field", spec.name)
                raise
        else:
            out[spec.name] = raw
    return out

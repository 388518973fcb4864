"""A schema-valid body for every workflow event (create events included), for the API matrices:
the values a person would plausibly send where the event's meaning needs them (``KNOWN``), else
made from the body model's field types. Each body is checked against the route's own body model,
so a new event whose body this cannot make fails here by name, not as a puzzling 422 later.
"""

from __future__ import annotations

import json
import types
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from safeloop.api.routes.bodies import body_model
from states.workflow import EventRule, Workflow
from tests.helpers import FULL_PLAN, SEEDED_EVIDENCE

COMMENT = "矩阵测试：现场复核后确认"
REF = [dict(SEEDED_EVIDENCE[0])]


def _future(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def known(workflow: str, event: str) -> dict[str, Any] | None:
    """Meaningful bodies where a made-up value would only test the guards."""
    table: dict[tuple[str, str], dict[str, Any]] = {
        ("hazard", "report"): {"unit": "jinhua-team-a", "title": "压力表失效", "category": "thing",
                               "grade": "general"},
        ("hazard", "assign"): {"owner": "sun.banzhang", "deadline": _future(7)},
        ("hazard", "draft_plan"): {"objectives": "消除泄漏点"},
        ("hazard", "approve_plan"): dict(FULL_PLAN),
        ("hazard", "submit"): {"measures": "已更换"},
        ("hazard", "fix_on_spot"): {"evidence": REF},
        ("hazard", "reinspect"): {"findings": "复查合格"},
        ("hazard", "regrade"): {"grade": "major"},
        ("hazard", "extend_deadline"): {"deadline": _future(200)},
        ("hazard", "escalate"): {"level": 1},
        ("listing", "list"): {"deadline": _future(60)},
        ("listing", "report_progress"): {"progress": "已完成一半"},
        ("listing", "request_extension"): {"deadline": _future(250)},
        ("listing", "decide_extension"): {"approve": True},
        ("listing", "escalate"): {"level": 1},
        ("listing", "request_delisting"): {"evaluation": REF},
        ("suspension", "order"): {"unit": "jinhua-plant1", "reason": "重大隐患未整改"},
        ("suspension", "request_resumption"): {"report": REF},
        ("annual_plan", "draft"): {"jurisdiction": "xz-edz", "year": 2027, "department": "edz-yjj",
                                   "entries": [{"enterprise": "jinhua", "frequency": 4}]},
        ("annual_plan", "update_entries"): {"entries": [{"enterprise": "jinhua", "frequency": 4}]},
        ("duty", "complete"): {"evidence": REF, "summary": "已召开并形成纪要"},
        ("duty", "make_up"): {"evidence": REF},
        ("duty", "escalate"): {"level": 1},
        ("risk", "evaluate"): {"method": "lec", "factors": {"L": 3, "E": 6, "C": 15}},
        ("risk", "identify"): {"unit": "jinhua-ws-synth", "name": "合成反应釜", "kind": "facility",
                               "hazard_factors": ["液氨泄漏"], "accident_types": ["中毒和窒息"],
                               "measures": [{"kind": "engineering", "text": "氨气泄漏报警仪完好"}]},
    }
    return table.get((workflow, event))


def body_for(workflow: Workflow, rule: EventRule) -> dict[str, Any]:
    """A body the route's model accepts: the known one, or one made from the field types; a
    ``comment`` always (events that require a reason get one)."""
    model = body_model(workflow, rule)
    body = known(workflow.name, rule.name)
    if body is None:
        body = {name: _value(info.annotation, info.metadata)
                for name, info in model.model_fields.items()
                if info.is_required()}
    body = {**body, "comment": COMMENT}
    try:
        model.model_validate_json(json.dumps(body, ensure_ascii=False))
    except ValueError as exc:
        where = f"{workflow.name}.{rule.name}"
        raise AssertionError(f"teach tests/api/samples.py a body for {where}: {exc}") from exc
    return body


def _value(annotation: Any, metadata: list[Any] | None = None) -> Any:
    origin = get_origin(annotation)
    args = get_args(annotation)
    floor = next((getattr(m, "ge", None) or getattr(m, "min_length", None) for m in metadata or []
                  if getattr(m, "ge", None) or getattr(m, "min_length", None)), None)
    if origin in (Union, types.UnionType):
        return _value(next(a for a in args if a is not type(None)))
    if origin is Literal:
        return args[0]
    if origin is list:
        return [_value(args[0]) for _ in range(max(1, int(floor or 1)))]
    if origin is dict:
        return {"k": _value(args[1])}
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return next(iter(annotation)).value
        if issubclass(annotation, BaseModel):
            return {n: _value(f.annotation, f.metadata) for n, f in annotation.model_fields.items()
                    if f.is_required()}
        if annotation is bool:
            return True
        if annotation is int:
            return int(floor or 1)
        if annotation in (float, Decimal):
            return 1
        if annotation is datetime:
            return _future(7)
        if annotation is date:
            return (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
        if annotation is str:
            return "样例" * max(1, int(floor or 1))
    raise AssertionError(f"no sample value for {annotation!r}")

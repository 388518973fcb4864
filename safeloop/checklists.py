"""Checklist templates (隐患排查表) as versioned YAML data files.

A template is identified by ``key`` + ``version`` and never changes once loaded: loading the same
file again is a no-op, loading a changed file under an existing version is refused (bump the
version instead), so a task always shows the exact items it was inspected against.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import insert, select
from sqlmodel import Session

from core.errors import InvalidInput
from core.yamlfile import parse_model, read_text
from models.db import utcnow
from models.enums import HazardCategory, HazardGrade, Tier
from models.tables import CHECKLIST_ITEM as ITEM
from models.tables import CHECKLIST_TEMPLATE as TEMPLATE
from states import engine

SHIPPED = Path(__file__).parent / "data" / "checklists"
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ItemIn(BaseModel):
    model_config = _STRICT
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    text: str = Field(min_length=1)
    basis: str = ""
    category: HazardCategory
    grade_if_failed: HazardGrade = HazardGrade.general


class TemplateIn(BaseModel):
    model_config = _STRICT
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")
    version: int = Field(ge=1)
    name: str = Field(min_length=1)
    tier: Tier
    source: str = ""
    items: list[ItemIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> TemplateIn:
        codes = [i.code for i in self.items]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError("检查项编号重复：" + "、".join(dupes))
        return self


def parse(text: str, source: str) -> TemplateIn:
    return parse_model(text, source, TemplateIn)[0]


def load(session: Session, path: Path, *, actor: str = "admin") -> tuple[int, bool]:
    """Load one template file; returns (template id, created?)."""
    text = read_text(path, "检查表文件")
    template = parse(text, path.name)
    digest = hashlib.sha256(text.encode()).hexdigest()
    try:
        conn = session.connection()
        existing = conn.execute(
            select(TEMPLATE.c.id, TEMPLATE.c.sha256)
            .where(TEMPLATE.c.key == template.key, TEMPLATE.c.version == template.version)
        ).first()
        if existing is not None:
            if existing[1] != digest:
                raise InvalidInput(
                    f"检查表 {template.key} 第 {template.version} 版已加载且内容不同；"
                    "修改检查表请提高 version"
                )
            session.rollback()
            return int(existing[0]), False
        template_id = conn.execute(insert(TEMPLATE).values(
            key=template.key, version=template.version, name=template.name,
            tier=template.tier.value, source=template.source, sha256=digest,
            created_at=utcnow(),
        ).returning(TEMPLATE.c.id)).scalar_one()
        conn.execute(insert(ITEM), [
            {"template_id": template_id, "position": n, "code": i.code, "text": i.text,
             "basis": i.basis, "category": i.category.value,
             "grade_if_failed": i.grade_if_failed.value}
            for n, i in enumerate(template.items)
        ])
        engine.record(session, entity_type="checklist",
                      entity_code=f"{template.key}@v{template.version}", event="load_checklist",
                      actor=actor, role="admin",
                      data={"sha256": digest, "items": len(template.items)})
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return int(template_id), True


def load_shipped(session: Session) -> list[tuple[str, int, bool]]:
    """Load every template shipped with the package (idempotent)."""
    loaded = []
    for path in sorted(SHIPPED.glob("*.yaml")):
        template_id, created = load(session, path)
        loaded.append((path.name, template_id, created))
    return loaded


def latest(session: Session, key: str) -> int:
    """The id of a template's highest version; NotFound-style error if absent."""
    found = session.connection().execute(
        select(TEMPLATE.c.id).where(TEMPLATE.c.key == key)
        .order_by(TEMPLATE.c.version.desc()).limit(1)
    ).scalar()
    if found is None:
        raise InvalidInput(f"检查表「{key}」不存在，请先 safeloop checklist load")
    return int(found)


"""Organisation tables: jurisdictions, regulator departments, enterprises, unit trees, people, roles.

Every row carries ``key``: the user's stable identifier from the org file, which the CLI's ``--as``
takes. ``Unit.path`` is the materialised ancestry (``/3/7/12/``) so "this unit and everything
below it" is one prefix test.
"""

from __future__ import annotations

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Jurisdiction(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    parent_id: int | None = Field(default=None, foreign_key="jurisdiction.id")
    path: str = Field(default="/", max_length=500, index=True)


class Department(SQLModel, table=True):
    """A regulator department (e.g. 应急管理局) in a jurisdiction, with the industries it oversees."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    jurisdiction_id: int = Field(foreign_key="jurisdiction.id", index=True)
    industries: str = Field(default="", max_length=500, description="comma-separated")


class Enterprise(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    industry: str = Field(max_length=100)
    jurisdiction_id: int = Field(foreign_key="jurisdiction.id", index=True)


class Unit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    tier: str = Field(max_length=16)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    parent_id: int | None = Field(default=None, foreign_key="unit.id")
    path: str = Field(default="/", max_length=500, index=True)


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    # the person's own notification channels (Apprise URLs, JSON list) from the org file
    channels: str | None = Field(default=None, sa_type=Text)


class RoleGrant(SQLModel, table=True):
    """A role held by a person in a unit (covers the subtree) or in a jurisdiction (regulators)."""

    __tablename__ = "role_grant"
    __table_args__ = (
        UniqueConstraint("person_id", "role", "unit_id", "jurisdiction_id", name="uq_role_grant"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    role: str = Field(max_length=32)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    jurisdiction_id: int | None = Field(default=None, foreign_key="jurisdiction.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id")

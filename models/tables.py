"""Every table as a typed SQLAlchemy ``Table``, named once.

SQLModel declares ``__table__`` without a type; each table is named here once, typed, instead of
an untyped alias with a ``type: ignore`` in every module that writes SQL Core statements.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from models import (
    Account,
    AnnualPlan,
    ApiToken,
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    ChecklistItem,
    ChecklistTemplate,
    Delivery,
    Department,
    Duty,
    Enterprise,
    Evidence,
    Hazard,
    InspectionDraft,
    InspectionPlan,
    InspectionTask,
    Jurisdiction,
    Listing,
    LoginSession,
    OutboxMessage,
    Person,
    RiskPoint,
    RoleGrant,
    SiteArea,
    StatReport,
    SuspensionOrder,
    Unit,
)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


ACCOUNT = _table(Account)
ANNUAL_PLAN = _table(AnnualPlan)
API_TOKEN = _table(ApiToken)
AUDIT_CHECKPOINT = _table(AuditCheckpoint)
AUDIT_ENTRY = _table(AuditEntry)
AUDIT_HEAD = _table(AuditHead)
CHECKLIST_ITEM = _table(ChecklistItem)
CHECKLIST_TEMPLATE = _table(ChecklistTemplate)
DEPARTMENT = _table(Department)
DUTY = _table(Duty)
ENTERPRISE = _table(Enterprise)
EVIDENCE = _table(Evidence)
HAZARD = _table(Hazard)
INSPECTION_DRAFT = _table(InspectionDraft)
INSPECTION_PLAN = _table(InspectionPlan)
INSPECTION_TASK = _table(InspectionTask)
JURISDICTION = _table(Jurisdiction)
LISTING = _table(Listing)
LOGIN_SESSION = _table(LoginSession)
NOTIFICATION_DELIVERY = _table(Delivery)
OUTBOX = _table(OutboxMessage)
PERSON = _table(Person)
RISK_POINT = _table(RiskPoint)
ROLE_GRANT = _table(RoleGrant)
SITE_AREA = _table(SiteArea)
STAT_REPORT = _table(StatReport)
SUSPENSION_ORDER = _table(SuspensionOrder)
UNIT = _table(Unit)

# The table holding each workflow's entities, by the outbox's ``entity_type`` (the workflow's
# name): notifications/ loads an entity's current row for its messages without importing a
# workflow. tests/notifications checks it names the same table as each workflow.
ENTITY_TABLES: dict[str, Table] = {
    "hazard": HAZARD,
    "inspection": INSPECTION_TASK,
    "listing": LISTING,
    "suspension": SUSPENSION_ORDER,
    "annual_plan": ANNUAL_PLAN,
    "stat_report": STAT_REPORT,
    "risk": RISK_POINT,
    "duty": DUTY,
}

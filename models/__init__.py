"""SQLModel tables and the database engine; no business rules and no commits live here."""

from models.account import Account, ApiToken, LoginSession
from models.audit import AuditCheckpoint, AuditEntry, AuditHead
from models.duty import Duty
from models.evidence import Evidence
from models.hazard import Hazard
from models.inspection import (
    ChecklistItem,
    ChecklistTemplate,
    InspectionDraft,
    InspectionPlan,
    InspectionTask,
)
from models.notification import Delivery
from models.org import Department, Enterprise, Jurisdiction, Person, RoleGrant, Unit
from models.outbox import OutboxMessage
from models.risk import RiskPoint, SiteArea
from models.supervision import AnnualPlan, Listing, StatReport, SuspensionOrder

__all__ = [
    "Account",
    "ApiToken",
    "AnnualPlan",
    "AuditCheckpoint",
    "AuditEntry",
    "ChecklistItem",
    "ChecklistTemplate",
    "InspectionDraft",
    "InspectionPlan",
    "InspectionTask",
    "AuditHead",
    "Delivery",
    "Department",
    "Duty",
    "Enterprise",
    "Evidence",
    "Hazard",
    "Jurisdiction",
    "Listing",
    "LoginSession",
    "OutboxMessage",
    "Person",
    "RiskPoint",
    "RoleGrant",
    "SiteArea",
    "StatReport",
    "SuspensionOrder",
    "Unit",
]

"""SQLModel tables and the database engine; no business rules and no commits live here."""

from models.audit import AuditCheckpoint, AuditEntry, AuditHead
from models.evidence import Evidence
from models.hazard import Hazard
from models.inspection import ChecklistItem, ChecklistTemplate, InspectionPlan, InspectionTask
from models.org import Department, Enterprise, Jurisdiction, Person, RoleGrant, Unit
from models.outbox import OutboxMessage

__all__ = [
    "AuditCheckpoint",
    "AuditEntry",
    "ChecklistItem",
    "ChecklistTemplate",
    "InspectionPlan",
    "InspectionTask",
    "AuditHead",
    "Department",
    "Enterprise",
    "Evidence",
    "Hazard",
    "Jurisdiction",
    "OutboxMessage",
    "Person",
    "RoleGrant",
    "Unit",
]

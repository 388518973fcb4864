"""The zh-CN labels notification templates show, taken from the workflows' own data.

The outbox writers in ``states/`` put them in each row's payload, so ``notifications/`` renders a
message without importing a workflow (it sits beside ``states/``, not above it). A payload is
written once and kept: a label renamed later does not change messages already queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from states.workflow import EventRule, Workflow
from states.workflows.hazard import ESCALATION_LEVELS, HAZARD
from states.workflows.listing import LEVELS, LISTING

# What each level of a workflow's ``escalate`` event means.
LEVEL_LABELS: dict[str, Mapping[int, str]] = {HAZARD.name: ESCALATION_LEVELS,
                                              LISTING.name: LEVELS}


def payload_labels(workflow: Workflow, rule: EventRule,
                   data: Mapping[str, Any]) -> dict[str, str]:
    """``entity_label`` (the workflow's name in Chinese) and, for an escalation, ``level_label``."""
    labels = {"entity_label": workflow.label}
    level = data.get("level") if rule.name == "escalate" else None
    if level:
        label = LEVEL_LABELS.get(workflow.name, {}).get(level)
        if label:
            labels["level_label"] = label
    return labels

"""The listing's working-day clocks (DOMAIN.md "Listed supervision"): the due dates an event
derives from the rules in force (``ctx.rules.listing``, in ``ctx.rules``' zone and calendar).

They are computed when the event fires and written to its audit row (the rules' ``annotate``,
``states.workflows.common.noting``), and read back from it on replay (``common.dues``), so a
later change of the rules never moves a recorded deadline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from states.clock import due_after_working_days
from states.workflow import Context, Subject
from states.workflows.common import noting


def progress_every(subject: Subject, ctx: Context) -> int:
    """Working days between progress reports: as given, else the rules' default."""
    given = subject.data.get("progress_every_days")
    return int(given) if given is not None else ctx.rules.listing.progress_days


def list_dues(subject: Subject, ctx: Context) -> dict[str, datetime]:
    rules = ctx.rules
    return {"file_due": due_after_working_days(rules, ctx.as_of, rules.listing.file_days),
            "publish_due": due_after_working_days(rules, ctx.as_of, rules.listing.publish_days),
            "progress_due": due_after_working_days(rules, ctx.as_of, progress_every(subject, ctx))}


def note_list(subject: Subject, ctx: Context) -> dict[str, Any]:
    """The list event's audit facts: its due dates and the progress interval in force."""
    return {**noting(list_dues)(subject, ctx), "progress_every_days": progress_every(subject, ctx)}


def progress_dues(subject: Subject, ctx: Context) -> dict[str, datetime]:
    return {"progress_due": due_after_working_days(ctx.rules, ctx.as_of,
                                                   subject.row["progress_every_days"])}


def extension_dues(_subject: Subject, ctx: Context) -> dict[str, datetime]:
    days = ctx.rules.listing.extension_decision_days
    return {"extension_due": due_after_working_days(ctx.rules, ctx.as_of, days)}


def verification_dues(_subject: Subject, ctx: Context) -> dict[str, datetime]:
    days = ctx.rules.listing.verification_days
    return {"verification_due": due_after_working_days(ctx.rules, ctx.as_of, days)}


def delist_dues(_subject: Subject, ctx: Context) -> dict[str, datetime]:
    days = ctx.rules.listing.publish_days
    return {"delist_publish_due": due_after_working_days(ctx.rules, ctx.as_of, days)}

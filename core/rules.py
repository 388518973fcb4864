"""The rules in force: the setting values that guards, effects and jobs apply, as one frozen value.

Settings are read at the entry points (the CLI's ``open_session``, the flows, the demo and the
simulation), turned into a ``Rules`` once (``Rules.from_settings``) and put on the database
session (``set_rules``), as the caller's ``Origin`` is. The engine reads them there once per
transaction and hands them to every guard and effect on ``Context`` (``ctx.rules.zone``,
``ctx.rules.calendar``, ``ctx.rules.listing``, …); the jobs take them as a parameter from their
flow. Nothing below the entry points calls ``get_settings()``.

A session no entry point prepared (library callers, tests that call the engine directly) gets
``rules_in_force()``: the rules built from ``get_settings()``, rebuilt only when the settings
object changes (``get_settings.cache_clear()``), so a changed environment is never ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sqlalchemy.orm import Session

from core.calendar import DEFAULT_ZONE, WorkCalendar, load_overrides
from core.calendar.official import combine, installed
from core.duty_rules import DutyPack, load_pack
from core.listing_rules import ListingRules, listing_rules
from core.risk_bands import DEFAULT_BANDS, bands
from core.settings import Settings, get_settings

BandTable = Mapping[str, Mapping[str, float]]
_SESSION_KEY = "rules"


def _frozen(table: Mapping[str, Mapping[str, float]]) -> BandTable:
    return MappingProxyType({method: MappingProxyType(dict(limits))
                             for method, limits in table.items()})


@dataclass(frozen=True)
class Rules:
    """What the domain's clocks and grades follow; the defaults are DOMAIN.md's."""

    zone: str = DEFAULT_ZONE  # periods, deadlines and working days are local to it
    calendar: WorkCalendar = field(default_factory=WorkCalendar)  # holidays, 调休, overrides
    risk_review_days: int = 365  # an approved risk is re-evaluated after this
    risk_bands: BandTable = field(default_factory=lambda: _frozen(DEFAULT_BANDS))  # read-only
    listing: ListingRules = field(default_factory=ListingRules)
    duties: DutyPack = field(default_factory=load_pack)  # 履职任务种类: shipped or SAFELOOP_DUTY_RULES

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(zone=settings.timezone,
                   calendar=work_calendar(settings),
                   risk_review_days=settings.risk_review_days,
                   risk_bands=_frozen(bands(settings.risk_bands)),
                   listing=listing_rules(settings.listing_rules),
                   duties=load_pack(settings.duty_rules))

    def band_table(self) -> dict[str, dict[str, float]]:
        """The risk bands as a fresh, plain copy (for output and audit data)."""
        return {method: dict(limits) for method, limits in self.risk_bands.items()}


def work_calendar(settings: Settings) -> WorkCalendar:
    """The national schedule, the installed official years (``calendar load``), local overrides."""
    local = load_overrides(settings.calendar_overrides) if settings.calendar_overrides else None
    official = installed(settings.storage_dir)
    if local is None:
        return WorkCalendar(official)
    return WorkCalendar(combine(official, local))


_in_force: tuple[Settings, Rules] | None = None


def rules_in_force() -> Rules:
    """The rules built from ``get_settings()``, for callers no entry point prepared."""
    global _in_force
    settings = get_settings()
    cached = _in_force
    if cached is None or cached[0] is not settings:
        cached = _in_force = (settings, Rules.from_settings(settings))
    return cached[1]


def configured_bands() -> dict[str, dict[str, float]]:
    """The risk bands in force per the environment (a fresh copy), for the shell's displays."""
    return rules_in_force().band_table()


def set_rules(session: Session, rules: Rules) -> None:
    """Put the entry point's rules on a database session (``session.info``) for the engine."""
    session.info[_SESSION_KEY] = rules


def rules_on(session: Session) -> Rules | None:
    """The rules an entry point put on ``session``, if it did."""
    found = session.info.get(_SESSION_KEY)
    return found if isinstance(found, Rules) else None


def rules_for(session: Session) -> Rules:
    """The session's rules, else the rules in force per the environment."""
    return rules_on(session) or rules_in_force()

"""The authenticated person a channel hands to the engine and to read scoping."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    person_id: int
    person_key: str
    name: str
    channel: str  # "api" | "web" | "cli"
    credential: str | None  # "token:<id>" or "session:<id>" — never a secret
    must_change: bool = False  # logged in with a one-time password: must set a new one first

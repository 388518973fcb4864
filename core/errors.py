"""One error hierarchy for the whole product; CLI and web map it to exit codes / HTTP statuses.

    SafeloopError                      (base; ``message`` is zh-CN, shown to users)
    ├── InvalidInput      exit 2 / 422 bad usage or input: unknown field, wrong value, bad file
    │   └── NotFound      exit 2 / 404 an id/key that does not exist
    ├── NotAuthenticated  exit 2 / 401 no valid credential (never says whether the account exists)
    │   └── AccountLocked exit 2 / 401 too many failed logins: locked until the time it names
    └── Refused           exit 1 / 409 the domain refuses: nothing was changed
        ├── TransitionNotAllowed   event not allowed from the current state
        ├── PermissionDenied       the actor holds no role that may fire it here
        ├── GuardFailed            a rule (guard) is not met, e.g. self-acceptance
        └── ConcurrentUpdate       someone else changed the row first (version check)
"""

from __future__ import annotations

from typing import Any


class SafeloopError(Exception):
    exit_code = 2
    http_status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.details}


class InvalidInput(SafeloopError):
    exit_code = 2
    http_status = 422


class NotFound(InvalidInput):
    http_status = 404


class NotAuthenticated(SafeloopError):
    """No valid credential: unknown person, wrong password, unknown, expired or revoked token,
    disabled account. One message for all of them, so an answer never tells whether an account
    exists."""

    exit_code = 2
    http_status = 401
    GENERIC = "未登录或凭据无效"

    def __init__(self, message: str = GENERIC, **details: Any) -> None:
        super().__init__(message, **details)


class AccountLocked(NotAuthenticated):
    """Too many failed logins: the account is locked until the time the message names."""


class Refused(SafeloopError):
    exit_code = 1
    http_status = 409


class TransitionNotAllowed(Refused):
    pass


class PermissionDenied(Refused):
    http_status = 403


class GuardFailed(Refused):
    pass


class ConcurrentUpdate(Refused):
    pass

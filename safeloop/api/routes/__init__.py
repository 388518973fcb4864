"""The API's routes, each module adding its own to the app's router under a prefix; ``workflows``
is generated from the registry.

Routes are added to the app's own router (``Prefixed``), not through ``include_router``, so
``app.routes`` lists every route with its full path (the route-table test reads it).
Every route under the API prefix documents the error statuses it can answer with the one error
shape (``errors.documented_errors``), so the OpenAPI document lists no status the app does not
answer and misses none it does (tests/api/test_schemathesis.py checks both ways).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from safeloop.api.errors import documented_errors


class Prefixed:
    """``add_api_route`` on ``router`` with ``prefix`` before every path."""

    def __init__(self, router: APIRouter, prefix: str = "") -> None:
        self.router, self.prefix = router, prefix

    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        if self.prefix:
            methods = kwargs.get("methods") or ["GET"]
            documented = documented_errors(methods[0], self.prefix + path)
            kwargs["responses"] = {**documented, **(kwargs.get("responses") or {})}
        self.router.add_api_route(self.prefix + path, endpoint, **kwargs)

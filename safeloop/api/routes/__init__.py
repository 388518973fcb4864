"""The API's routes, each module adding its own to the app's router under a prefix; ``workflows``
is generated from the registry.

Routes are added to the app's own router (``Prefixed``), not through ``include_router``, so
``app.routes`` lists every route with its full path (the route-table test reads it).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter


class Prefixed:
    """``add_api_route`` on ``router`` with ``prefix`` before every path."""

    def __init__(self, router: APIRouter, prefix: str = "") -> None:
        self.router, self.prefix = router, prefix

    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        self.router.add_api_route(self.prefix + path, endpoint, **kwargs)

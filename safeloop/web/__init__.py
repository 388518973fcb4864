"""The web app: server-rendered pages (Jinja2, zh-CN) for phones and office browsers, on the same
ASGI app, authentication, read scoping and engine calls as the REST API (``safeloop.api``).

``mount(app)`` adds the pages and the vendored static files (htmx, one stylesheet; no CDN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"
# The pages anyone may open: the login form and the static files (htmx, the stylesheet).
PUBLIC_PAGES = frozenset({"/login", "/static"})
# Pages whose form carries a file (a photo): the app caps their body as an evidence upload.
UPLOAD_PAGES = frozenset({"/hazard/new", "/inspection/item", "/events/photo"})


def is_page(route: Any) -> bool:
    """Whether ``route`` of the app's route table is the web app's (a page or its static files)."""
    endpoint = getattr(route, "endpoint", None)
    return getattr(route, "name", None) == "static" or (
        endpoint is not None and getattr(endpoint, "__module__", "").startswith("safeloop.web."))


def mount(app: Any) -> None:
    from starlette.staticfiles import StaticFiles

    from safeloop.web import audit, dashboard, inspection, pages, regulator, report, risk

    report.mount(app, pages.page)  # before the pages: /hazard/new is no hazard's code
    audit.mount(app, pages.page)
    inspection.mount(app, pages.page)  # before the pages: /inspection/today is no task's code
    for views in (regulator, risk, dashboard):  # before the pages: /hazard (the list) and friends
        views.mount(app, pages.page)
    pages.mount(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

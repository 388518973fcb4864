"""Jinja2 rendering of the pages (templates in ``safeloop/web/templates``, autoescaped)."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

CHANNELS = {"web": "网页", "api": "接口", "cli": "命令行", "flow": "系统流程"}


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("safeloop.web", "templates"),
                      autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["channels"] = CHANNELS
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status)

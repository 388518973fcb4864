"""The app built from the environment's settings, for ``uvicorn safeloop.api.serve:app`` and for
``safeloop web --workers N`` (each worker process imports this module and builds its own)."""

from __future__ import annotations

from core.settings import get_settings
from safeloop.api.app import create_app

app = create_app(get_settings())

"""The REST API ``/api/v1`` over the engine (FastAPI): ``safeloop.api.app.create_app``.

Modules, one job each: ``app`` (the ASGI app, middleware, headers), ``errors`` (the one JSON error
shape), ``deps`` (who is calling and what they may see: the only user of ``safeloop.accounts`` and
``states.visibility``), ``jsonout`` (times with their offset), ``paging`` (opaque cursors),
``queries`` (set-wise reads), ``sniff`` (evidence type from its bytes), ``metrics`` and
``routes/`` (generated from ``states.registry.WORKFLOWS``, not written per workflow).
"""

"""``GET /healthz`` (public: the database answers and its migrations are the code's) and
``GET /metrics`` (Prometheus text; a token is needed, as for every route but health and docs)."""

from typing import Any

from alembic.script import ScriptDirectory
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from core.errors import SafeloopError
from safeloop.api.deps import CurrentPrincipal
from safeloop.api.errors import responses
from safeloop.api.metrics import CONTENT_TYPE_LATEST
from safeloop.api.routes import Prefixed
from safeloop.database import require_ready
from safeloop.schema import alembic_config


def migration_heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def mount(router: Prefixed) -> None:
    heads = migration_heads()

    def healthz(request: Request) -> JSONResponse:
        engine = request.app.state.engine
        try:
            require_ready(engine)
            with engine.connect() as conn:
                current = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
        except SafeloopError as exc:
            return JSONResponse({"status": "unavailable", "database": "error", "message": exc.message},
                                status_code=503)
        except Exception:  # noqa: BLE001 - any failure to answer is "not healthy"
            return JSONResponse({"status": "unavailable", "database": "error",
                                 "message": "数据库无法连接"}, status_code=503)
        if current != heads:
            return JSONResponse({"status": "unavailable", "database": "ok", "migrations": "behind",
                                 "message": "数据库结构不是最新，请运行 safeloop init"}, status_code=503)
        body: dict[str, Any] = {"status": "ok", "database": "ok", "migrations": "current"}
        return JSONResponse(body)

    def metrics(request: Request, caller: CurrentPrincipal) -> Response:
        return Response(request.app.state.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    router.add_api_route("/healthz", healthz, methods=["GET"], tags=["运行"], operation_id="healthz",
                         summary="健康检查：数据库可连接且迁移为最新", response_class=JSONResponse,
                     responses={503: {"description": "数据库无法连接或迁移不是最新"}})
    router.add_api_route("/metrics", metrics, methods=["GET"], tags=["运行"], operation_id="metrics",
                         summary="Prometheus 指标（按路由模板统计请求数与耗时）", response_class=Response,
                     responses=responses(401))

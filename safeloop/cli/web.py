"""``safeloop web``: serve the REST API (and later the web app: one ASGI app) with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from safeloop.cli.common import STATE, handle_errors


@handle_errors
def web_cmd(
    host: Annotated[str, typer.Option(help="监听地址（默认仅本机）")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="监听端口")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="工作进程数（PostgreSQL 时可大于 1）")] = 1,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        "--forwarded-allow-ips",
        help="在反向代理之后：信任其 X-Forwarded-For / X-Forwarded-Proto 头的代理地址（逗号分隔，"
             "如 127.0.0.1）；默认不信任任何转发头")] = None,
) -> None:
    """启动 REST API 服务（/api/v1，接口文档 /docs，健康检查 /healthz）。"""
    import uvicorn

    from models.db import make_engine
    from safeloop.api.app import create_app, install_log_redaction
    from safeloop.database import require_ready

    settings = STATE.settings
    engine = make_engine(settings.database_url, busy_timeout_s=settings.sqlite_busy_timeout_s)
    require_ready(engine)  # "run safeloop init" now, not on the first request
    engine.dispose()
    install_log_redaction()
    # Forwarded headers are honoured only from the named proxies: anyone else could forge them.
    proxy = {"proxy_headers": bool(forwarded_allow_ips), "forwarded_allow_ips": forwarded_allow_ips}
    if workers > 1:  # each worker builds its own app from the environment's settings
        uvicorn.run("safeloop.api.serve:app", host=host, port=port, workers=workers,
                    server_header=False, **proxy)  # type: ignore[arg-type]
        return
    uvicorn.run(create_app(settings), host=host, port=port, server_header=False,
                **proxy)  # type: ignore[arg-type]

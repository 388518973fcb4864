"""``safeloop server``: one local Prefect server, so one-off flow runs skip the ephemeral start."""

from __future__ import annotations

from typing import Annotated

import typer

from core.errors import InvalidInput
from safeloop.cli.common import console, handle_errors


@handle_errors
def server_cmd(
    host: Annotated[str, typer.Option(help="监听地址（默认仅本机；其他地址须先设置 "
                                           "PREFECT_SERVER_API_AUTH_STRING）")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="监听端口")] = 4200,
) -> None:
    """启动本机 Prefect 服务器（Ctrl-C 停止）；另开终端 export 它打印的 PREFECT_API_URL 后，
    safeloop flows run 不再每次启动临时服务器。"""
    from flows.common import prefect_defaults

    prefect_defaults()
    from safeloop import prefect_server as ps

    if not ps.is_loopback(host) and not ps.server_auth_configured():
        raise InvalidInput(f"监听 {host} 会让他人访问 Prefect API：请先在环境或 Prefect 配置中设置 "
                           f"{ps.SERVER_AUTH_ENV}（形如 用户:密码），或只监听 127.0.0.1")
    url = ps.api_url(host, port)
    console.print(f"正在启动 Prefect 服务器 {url} …", markup=False)
    process = ps.start_server(host, port)
    try:
        seconds = ps.wait_ready(url, process)
        console.print(f"Prefect 服务器已就绪（{seconds:.1f} 秒）。在运行流程的终端中执行：", markup=False)
        console.print(f"  export PREFECT_API_URL={url}", markup=False, soft_wrap=True)
        if not ps.is_loopback(host):
            console.print(f"  export {ps.CLIENT_AUTH_ENV}=…（与 {ps.SERVER_AUTH_ENV} 相同）", markup=False)
        console.print("按 Ctrl-C 停止。", markup=False)
        code = process.wait()
        if code:
            raise InvalidInput(f"Prefect 服务器已退出（退出码 {code}）")
    except KeyboardInterrupt:
        console.print("正在停止 Prefect 服务器 …", markup=False)
    finally:
        ps.stop_server(process)

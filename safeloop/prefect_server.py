"""Prefect's API for the shell: which server a one-off flow run uses, and a local server to start.

Without ``PREFECT_API_URL`` every process that runs a flow starts Prefect's ephemeral server
(15–30 s here); ``safeloop server`` starts one local server once, and ``safeloop flows run``
uses it when ``PREFECT_API_URL`` points to it. A configured server is checked with one short
request first: Prefect's client would otherwise retry an unreachable API for a long time.

The API's protection is Prefect's own: the server requires HTTP basic auth when
``PREFECT_SERVER_API_AUTH_STRING`` (``user:password``) is set, and the client sends
``PREFECT_API_AUTH_STRING``. Both are read from Prefect's settings (environment, profile, .env),
never from a command-line option, and never printed.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from core.errors import InvalidInput

CHECK_TIMEOUT_S = 3.0
READY_TIMEOUT_S = 120.0  # 3–8 s when idle; much more on a loaded 2-core machine
SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_AUTH_ENV = "PREFECT_API_AUTH_STRING"


@dataclass(frozen=True)
class ApiConfig:
    url: str | None
    auth_string: str | None = None
    api_key: str | None = None

    def headers(self) -> dict[str, str]:
        if self.auth_string:
            token = base64.b64encode(self.auth_string.encode("utf-8")).decode("ascii")
            return {"Authorization": f"Basic {token}"}
        if self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}


def _secret(value: object) -> str | None:
    return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]


def configured_api() -> ApiConfig:
    """The API Prefect's client will use (its settings: environment, profile, .env)."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    return ApiConfig(api.url or None, _secret(api.auth_string), _secret(api.key))


def server_auth_configured() -> bool:
    """Whether a server started now would require basic auth (Prefect's server setting)."""
    from prefect.settings import get_current_settings

    return bool(_secret(get_current_settings().server.api.auth_string))


def shown_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_api(config: ApiConfig, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Refuse, in zh-CN and within ``timeout``, a configured API that cannot serve a flow run.

    ``/admin/version`` is behind the server's auth (``/health`` is not), so one request checks
    that the server answers and that our auth string is accepted.
    """
    assert config.url
    where = shown_url(config.url)
    hint = "请先运行 safeloop server，或取消 PREFECT_API_URL 以使用临时服务器"
    try:
        response = httpx.get(f"{config.url.rstrip('/')}/admin/version", headers=config.headers(),
                             timeout=timeout)
    except httpx.TimeoutException as exc:
        raise InvalidInput(f"Prefect 服务器 {where}（PREFECT_API_URL）{timeout:g} 秒内无响应；"
                           f"{hint}") from exc
    except httpx.HTTPError as exc:
        raise InvalidInput(f"无法连接 Prefect 服务器 {where}（PREFECT_API_URL）；{hint}") from exc
    if response.status_code == 401:
        raise InvalidInput(f"Prefect 服务器 {where} 拒绝访问（401）：请设置与服务器 "
                           f"{SERVER_AUTH_ENV} 相同的 {CLIENT_AUTH_ENV}")
    if response.status_code != 200:
        raise InvalidInput(f"Prefect 服务器 {where} 答 HTTP {response.status_code}，"
                           f"请检查 PREFECT_API_URL（应以 /api 结尾）")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/api"


def server_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port),
            "--analytics-off"]


def start_server(host: str, port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """``prefect server start`` in its own process group (analytics off, this PREFECT_HOME)."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)  # the server is the API; it must not look for another
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(server_command(host, port), env=env, stdout=out,
                                stderr=subprocess.STDOUT if out else None, start_new_session=True)
    finally:
        if out:
            out.close()


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT_S) -> float:
    """Seconds until ``url``/health answers 200; refuses if the server exits or times out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise InvalidInput(f"Prefect 服务器启动失败（退出码 {process.returncode}），"
                               "端口是否已被占用？")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise InvalidInput(f"Prefect 服务器 {timeout:g} 秒内未就绪")


def stop_server(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """TERM the server's process group (uvicorn and its services), then KILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass

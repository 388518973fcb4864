"""``safeloop web --forwarded-allow-ips``: a real uvicorn process behind a (simulated) proxy.

Only the named proxy's ``X-Forwarded-For`` is believed (the access log shows the client it
names); without the option no forwarded header is, whoever sends it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.flows.test_prefect_server import free_port
from tests.helpers import fresh_database

CLI = [sys.executable, "-c", "from safeloop.cli import run; run()"]
CLIENT = "203.0.113.7"  # TEST-NET-3: the address a proxy says the request came from


def _access_log(tmp_path: Path, *options: str) -> str:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFELOOP_")}
    log = tmp_path / f"web-{port}.log"
    with fresh_database("sqlite", tmp_path, with_org=False) as url, log.open("wb") as out:
        env["SAFELOOP_DATABASE_URL"] = url
        proc = subprocess.Popen([*CLI, "web", "--port", str(port), *options], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text(errors="replace")
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2,
                                       headers={"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        pytest.fail(log.read_text(errors="replace"))
                    time.sleep(0.3)
            assert answer.status_code == 200
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    return log.read_text(errors="replace")


def test_forwarded_for_believed_only_from_the_named_proxy(tmp_path: Path) -> None:
    behind = _access_log(tmp_path, "--forwarded-allow-ips", "127.0.0.1")
    assert f'{CLIENT}:0 - "GET /healthz' in behind, behind
    direct = _access_log(tmp_path)
    assert "/healthz" in direct and CLIENT not in direct, direct

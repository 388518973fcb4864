"""The route table, the OpenAPI document, headers, CORS, health and metrics."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from core.settings import Settings
from safeloop.api import deps
from safeloop.api.app import create_app
from safeloop.web import is_page
from states.registry import WORKFLOWS
from tests.api.conftest import auth

# The only routes anyone may call without a token: health, login and the API's documentation.
PUBLIC = {"/healthz", "/api/v1/login", "/api/v1/openapi.json", "/docs", "/docs/oauth2-redirect",
          "/redoc"}
# The only routes a session opened with a one-time password may call before changing it.
MUST_CHANGE_EXEMPT = {"/api/v1/me", "/api/v1/me/password", "/api/v1/logout"}


def _calls(dependant: Any) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def test_every_route_but_health_login_and_docs_requires_authentication(app: FastAPI) -> None:
    paths, exempt = set(), set()
    for route in app.routes:
        path = getattr(route, "path", None)
        assert path is not None, f"a route without a path: {route!r}"
        paths.add(path)
        if path in PUBLIC or is_page(route):  # the pages' own check: tests/web/test_web_routes.py
            continue
        assert isinstance(route, APIRoute), f"{path}: not an API route, so not authenticated"
        calls = _calls(route.dependant)
        assert deps.authenticated in calls, f"{path} has no authentication"
        if deps.current_principal not in calls:
            exempt.add(path)
    assert PUBLIC - {"/docs/oauth2-redirect"} <= paths
    # every other route refuses a session that must first change its one-time password
    assert exempt == MUST_CHANGE_EXEMPT


def test_every_protected_route_answers_401_without_a_token(app: FastAPI) -> None:
    with TestClient(app) as client:  # no stand-in: the real dependency refuses first
        for route in app.routes:
            if route.path in PUBLIC or is_page(route) or not isinstance(route, APIRoute):
                continue
            path = re.sub(r"\{[^}]+\}", "X-1", route.path)
            for method in route.methods:
                answer = client.request(method, path)
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.headers["www-authenticate"] == "Bearer"
                assert answer.json()["error"] == "not_authenticated"


def test_openapi_names_every_event_with_chinese_descriptions(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name, workflow in WORKFLOWS.items():
        assert f"/api/v1/{name}" in doc["paths"] and f"/api/v1/{name}/{{code}}" in doc["paths"]
        for event, rule in workflow.events.items():
            operation = doc["paths"][f"/api/v1/{name}/{{code}}/events/{event}"]["post"]
            ref = operation["requestBody"]["content"]["application/json"]["schema"]
            ref = ref.get("$ref") or next(s["$ref"] for s in ref["anyOf"] if "$ref" in s)
            schema = schemas[ref.rsplit("/", 1)[-1]]
            assert re.search(r"[\u4e00-\u9fff]", schema["description"])
            expected = set(rule.params.model_fields) - set(rule.computed) if rule.params else set()
            assert expected <= set(schema["properties"]), (name, event)
            for field in expected | {"comment"}:
                text = schema["properties"][field].get("description", "")
                assert re.search(r"[\u4e00-\u9fff]", text), (name, event, field)
            assert not set(rule.computed) & set(schema["properties"])
            assert schema["additionalProperties"] is False


def test_security_headers_and_closed_cors(client: TestClient) -> None:
    answer = client.get("/api/v1/hazard", headers={**auth("li.anquan"), "Origin": "https://evil.example"})
    headers = answer.headers
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "access-control-allow-origin" not in headers
    preflight = client.options("/api/v1/hazard", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers
    health = client.get("/healthz")
    assert health.headers["x-frame-options"] == "DENY"


def test_cors_opens_only_to_configured_origins(api_settings: Settings, engine, org) -> None:
    settings = api_settings.model_copy(update={"api_cors_origins": ["https://yh.example.cn"]})
    with TestClient(create_app(settings, engine=engine)) as client:
        ok = client.options("/api/v1/hazard", headers={
            "Origin": "https://yh.example.cn", "Access-Control-Request-Method": "GET"})
        assert ok.headers["access-control-allow-origin"] == "https://yh.example.cn"
        other = client.options("/api/v1/hazard", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in other.headers


def test_health_and_metrics(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["migrations"] == "current"
    client.get("/api/v1/hazard/YH-000404", headers=auth("li.anquan"))
    client.get("/no/such/path/123")
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers=auth("li.anquan")).text
    assert 'route="/api/v1/hazard/{code}"' in text and "YH-000404" not in text
    assert 'route="unmatched"' in text and "/no/such/path" not in text


def test_health_refuses_an_uninitialised_database(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", storage_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/healthz")
        assert answer.status_code == 503 and "safeloop init" in answer.json()["message"]

"""The framework adapters, each behind a real HTTP server on loopback.

Every framework gets the same three endpoints and the same requests, posted
with httpx to 127.0.0.1 on an ephemeral port:

* ``/hook``: signed, loopback allowed, 8 KB limit, dedupe; answers an integrationUrl;
* ``/olark-only``: allow-list without loopback, so every request here is 403;
* ``/behind-proxy``: the allow-list is checked against X-Forwarded-For, trusted from 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from chathooks.receiver import ReceivedWebhook, SeenIds, WebhookReceiver
from chathooks.signing import generate_secret, signature_headers
from support.fixtures import OLARK_FIXTURES

FIXTURES = OLARK_FIXTURES
FORM = "application/x-www-form-urlencoded"
SECRET = generate_secret()
LIMIT = 8 * 1024
FRAMEWORKS = ["starlette", "fastapi", "flask", "django"]


@dataclass
class Endpoints:
    """The receivers behind one app, and what its /hook handler was given."""

    main: WebhookReceiver = field(
        default_factory=lambda: WebhookReceiver(
            secrets=[SECRET],
            allow_cidrs=["127.0.0.0/8", "::1/128"],
            max_body_bytes=LIMIT,
            seen_ids=SeenIds(),
        )
    )
    olark_only: WebhookReceiver = field(
        default_factory=lambda: WebhookReceiver(allow_cidrs=["203.0.113.0/24"])
    )
    behind_proxy: WebhookReceiver = field(
        default_factory=lambda: WebhookReceiver(
            allow_cidrs=["203.0.113.0/24"], trusted_proxies=["127.0.0.1"]
        )
    )
    handled: list[ReceivedWebhook] = field(default_factory=list)

    def handle(self, hook: ReceivedWebhook) -> str | None:
        """Record a new delivery and answer its integrationUrl; a redelivery gets 204."""
        if hook.duplicate:
            return None
        self.handled.append(hook)
        return f"https://crm.example.com/leads/{hook.payload.id}"


# --- apps ---------------------------------------------------------------------------------


def starlette_app(ends: Endpoints) -> Any:
    from chathooks.receiver.adapters.starlette import webhook_endpoint

    def handler(receiver: WebhookReceiver) -> Any:
        async def handle(hook: ReceivedWebhook) -> str | None:
            return ends.handle(hook)

        return webhook_endpoint(receiver, handle)

    return Starlette(
        routes=[
            Route("/hook", handler(ends.main), methods=["POST"]),
            Route("/olark-only", handler(ends.olark_only), methods=["POST"]),
            Route("/behind-proxy", handler(ends.behind_proxy), methods=["POST"]),
        ]
    )


def fastapi_app(ends: Endpoints) -> Any:
    from chathooks.receiver import integration_url_response
    from chathooks.receiver.adapters.starlette import (
        install_error_handler,
        to_response,
        webhook_dependency,
    )

    app = FastAPI()
    install_error_handler(app)

    def answer(hook: ReceivedWebhook) -> Response:
        url = ends.handle(hook)
        if url is None:
            return Response(status_code=204)
        return to_response(integration_url_response(url))

    @app.post("/hook")
    async def hook(received: ReceivedWebhook = Depends(webhook_dependency(ends.main))) -> Response:
        return answer(received)

    @app.post("/olark-only")
    async def olark_only(
        received: ReceivedWebhook = Depends(webhook_dependency(ends.olark_only)),
    ) -> Response:
        return answer(received)

    @app.post("/behind-proxy")
    async def behind_proxy(
        received: ReceivedWebhook = Depends(webhook_dependency(ends.behind_proxy)),
    ) -> Response:
        return answer(received)

    return app


def flask_app(ends: Endpoints) -> Any:
    import flask

    from chathooks.receiver import integration_url_response
    from chathooks.receiver.adapters.flask import receive_webhook, to_response, webhook_view

    app = flask.Flask("chathooks_adapter_test")

    @app.post("/hook")
    def hook() -> Any:
        # The plain helper: a rejection aborts with its JSON response.
        received = receive_webhook(flask.request, ends.main)
        url = ends.handle(received)
        if url is None:
            return flask.Response(status=204)
        return to_response(integration_url_response(url))

    app.add_url_rule(
        "/olark-only", "olark_only", webhook_view(ends.olark_only)(ends.handle), methods=["POST"]
    )
    app.add_url_rule(
        "/behind-proxy",
        "behind_proxy",
        webhook_view(ends.behind_proxy)(ends.handle),
        methods=["POST"],
    )
    return app


def django_urls(ends: Endpoints) -> types.ModuleType:
    from django.urls import path

    from chathooks.receiver.adapters.django import webhook_view

    def view(request: Any, hook: ReceivedWebhook) -> str | None:
        return ends.handle(hook)

    urls = types.ModuleType("chathooks_adapter_test_urls")
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("hook", webhook_view(ends.main)(view)),
        path("olark-only", webhook_view(ends.olark_only)(view)),
        path("behind-proxy", webhook_view(ends.behind_proxy)(view)),
    ]
    return urls


# --- servers --------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    # proxy_headers=False: the toolkit, not uvicorn, decides what X-Forwarded-For means.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", proxy_headers=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def wsgi_thread(server: Any) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def django_server(ends: Endpoints) -> Iterator[str]:
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    if not settings.configured:
        settings.configure(SECRET_KEY="chathooks-adapter-test", DEBUG=False, USE_TZ=True)
        django.setup()
    with override_settings(
        ROOT_URLCONF=django_urls(ends),
        ALLOWED_HOSTS=["127.0.0.1"],
        # CSRF middleware on, to prove the decorator exempts the webhook views.
        MIDDLEWARE=[
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
    ):
        server = make_server(
            "127.0.0.1", 0, WSGIHandler(), server_class=WSGIServer, handler_class=QuietHandler
        )
        with wsgi_thread(server) as url:
            yield url


@contextmanager
def serve(framework: str, ends: Endpoints) -> Iterator[str]:
    if framework == "starlette":
        with uvicorn_server(starlette_app(ends)) as url:
            yield url
    elif framework == "fastapi":
        with uvicorn_server(fastapi_app(ends)) as url:
            yield url
    elif framework == "flask":
        from werkzeug.serving import make_server as werkzeug_server

        with wsgi_thread(werkzeug_server("127.0.0.1", 0, flask_app(ends), threaded=True)) as url:
            yield url
    else:
        with django_server(ends) as url:
            yield url


@dataclass
class Site:
    framework: str
    ends: Endpoints
    client: httpx.Client


@pytest.fixture(scope="module", params=FRAMEWORKS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    ends = Endpoints()
    with (
        serve(request.param, ends) as base_url,
        httpx.Client(base_url=base_url, trust_env=False, timeout=10) as client,
    ):
        yield Site(request.param, ends, client)


# --- helpers -----------------------------------------------------------------------------


def fixture_body(name: str) -> bytes:
    return (FIXTURES / f"{name}.body.txt").read_bytes()


def signed(body: bytes, msg_id: str | None = None, **extra: str) -> dict[str, str]:
    webhook_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return {"Content-Type": FORM, **signature_headers(SECRET, webhook_id, body), **extra}


def assert_rejected(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    reason: dict[str, Any] = response.json()
    assert set(reason) == {"error", "field", "message"}
    assert reason["error"] == code
    assert reason["message"]
    return reason


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "conversation_id", "kind"),
    [
        (
            "snowplow-spark-olark-test-transcript-raw",
            "NOTAREALTRANSCRIPT5LGcbVTa3hKBRB",
            "Transcript",
        ),
        (
            "snowplow-enrich-common-e1-transcript-HEAD",
            "EV695BI2930A6XMO32886MPT899443414",
            "Transcript",
        ),
        (
            "snowplow-enrich-common-e2-offline-message",
            "EV695BI2930A6XMO32886QPT899443414",
            "OfflineMessageTranscript",
        ),
    ],
)
def test_signed_fixture_is_received_and_answered_with_an_integration_url(
    site: Site, name: str, conversation_id: str, kind: str
) -> None:
    body = fixture_body(name)
    response = site.client.post("/hook", content=body, headers=signed(body, "msg_" + name))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"integrationUrl": f"https://crm.example.com/leads/{conversation_id}"}
    hook = site.ends.handled[-1]
    assert hook.webhook_id == "msg_" + name
    assert type(hook.payload).__name__ == kind
    assert hook.document == json.loads((FIXTURES / f"{name}.json").read_text())


def test_redelivery_of_the_same_id_is_acknowledged_but_not_processed_twice(site: Site) -> None:
    body = fixture_body("snowplow-enrich-common-e1-transcript-2016")
    msg_id = f"msg_{uuid.uuid4().hex}"
    first = site.client.post("/hook", content=body, headers=signed(body, msg_id))
    handled = len(site.ends.handled)
    retry = site.client.post("/hook", content=body, headers=signed(body, msg_id))
    assert (first.status_code, retry.status_code) == (200, 204)
    assert len(site.ends.handled) == handled


def test_tampered_body_is_401(site: Site) -> None:
    body = fixture_body("snowplow-enrich-common-e1-transcript-2016")
    tampered = body.replace(b"billing", b"refunds")
    response = site.client.post("/hook", content=tampered, headers=signed(body))
    reason = assert_rejected(response, 401, "signature_mismatch")
    assert reason["field"] == "webhook-signature"


def test_unsigned_request_is_401_naming_the_headers(site: Site) -> None:
    body = fixture_body("snowplow-enrich-common-e1-transcript-2016")
    response = site.client.post("/hook", content=body, headers={"Content-Type": FORM})
    reason = assert_rejected(response, 401, "missing_signature_headers")
    assert "webhook-signature" in reason["message"]


def test_stale_timestamp_is_401(site: Site) -> None:
    body = fixture_body("snowplow-enrich-common-e1-transcript-2016")
    headers = {
        "Content-Type": FORM,
        **signature_headers(SECRET, "msg_stale", body, timestamp=int(time.time()) - 3600),
    }
    response = site.client.post("/hook", content=body, headers=headers)
    assert_rejected(response, 401, "timestamp_out_of_tolerance")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("snowplow-enrich-common-e7-missing-data-key", "missing_data_field"),
        ("snowplow-enrich-common-e8-invalid-json", "invalid_json"),
        ("snowplow-issue-1014-olark-2014-send-test-TRUNCATED", "invalid_json"),
    ],
)
def test_broken_bodies_are_400(site: Site, name: str, code: str) -> None:
    body = fixture_body(name)
    response = site.client.post("/hook", content=body, headers=signed(body))
    assert assert_rejected(response, 400, code)["field"] == "data"


def test_unsupported_content_type_is_415(site: Site) -> None:
    body = b"data=%7B%7D"
    headers = signed(body) | {"Content-Type": "text/plain"}
    response = site.client.post("/hook", content=body, headers=headers)
    assert assert_rejected(response, 415, "unsupported_content_type")["field"] == "content-type"


def test_oversized_body_is_413(site: Site) -> None:
    body = b"data=" + b"x" * (LIMIT * 2)
    response = site.client.post("/hook", content=body, headers=signed(body))
    reason = assert_rejected(response, 413, "body_too_large")
    assert str(LIMIT) in reason["message"]


def test_source_outside_the_allow_list_is_403_with_the_address(site: Site) -> None:
    body = fixture_body("snowplow-enrich-common-e1-transcript-2016")
    response = site.client.post("/olark-only", content=body, headers={"Content-Type": FORM})
    reason = assert_rejected(response, 403, "forbidden_source")
    assert "127.0.0.1" in reason["message"]


def test_xff_spoofing_is_ignored_from_an_untrusted_peer(site: Site) -> None:
    # /olark-only trusts no proxy: claiming to be Olark in X-Forwarded-For does not help.
    body = fixture_body("snowplow-enrich-common-e1-transcript-2016")
    headers = {"Content-Type": FORM, "X-Forwarded-For": "203.0.113.7"}
    response = site.client.post("/olark-only", content=body, headers=headers)
    reason = assert_rejected(response, 403, "forbidden_source")
    assert "trusted_proxies" in reason["message"]


def test_xff_from_a_trusted_proxy_is_honoured(site: Site) -> None:
    body = fixture_body("snowplow-enrich-common-e2-offline-message")
    allowed = site.client.post(
        "/behind-proxy",
        content=body,
        headers={"Content-Type": FORM, "X-Forwarded-For": "198.51.100.9, 203.0.113.7"},
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["integrationUrl"].endswith("EV695BI2930A6XMO32886QPT899443414")
    # The proxy appends the real client to whatever the client sent: the right-most wins.
    spoofed = site.client.post(
        "/behind-proxy",
        content=body,
        headers={"Content-Type": FORM, "X-Forwarded-For": "203.0.113.7, 198.51.100.9"},
    )
    reason = assert_rejected(spoofed, 403, "forbidden_source")
    assert reason["field"] == "x-forwarded-for"
    assert "198.51.100.9" in reason["message"]


def test_get_is_not_a_webhook(site: Site) -> None:
    assert site.client.get("/hook").status_code == 405

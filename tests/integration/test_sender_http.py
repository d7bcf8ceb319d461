"""The sender over real HTTP on loopback: what goes on the wire and how replies are read."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import quote_plus

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chathooks import __version__
from chathooks.receiver.ipcheck import parse_networks
from chathooks.sender import AttemptResult, OutgoingRequest, Sender, build_request
from chathooks.settings import Settings
from chathooks.signing import generate_secret
from chathooks.wire import dumps, send_test_transcript
from support.receiver import RecordingReceiver

LOOPBACK = parse_networks("127.0.0.0/8")
DOCUMENT_JSON = dumps(send_test_transcript().to_wire())


def request_to(url: str, **options: Any) -> OutgoingRequest:
    return build_request(delivery_id="dlv_0001", url=url, document_json=DOCUMENT_JSON, **options)


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    async with Sender(allowed_networks=LOOPBACK) as opened:
        yield opened


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a one-route aiohttp server on 127.0.0.1 in this test's loop; returns its URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/hook"

    yield start
    for runner in runners:
        await runner.cleanup()


# -- the request on the wire --------------------------------------------------------


async def test_form_body_content_type_and_headers_arrive_exactly(
    sender: Sender, receiver: RecordingReceiver
) -> None:
    secret = generate_secret()
    request = request_to(
        receiver.url,
        secret=secret,
        timestamp=int(time.time()),
        extra_headers={"X-Api-Key": "k-123", "content-type": "text/plain", "Webhook-Id": "forged"},
    )

    result = await sender.send(request)
    (received,) = await receiver.wait_for_async(1)

    assert result.ok and result.status_code == 200
    assert received.method == "POST"
    assert received.body == b"data=" + quote_plus(DOCUMENT_JSON).encode()
    assert received.content_type == "application/x-www-form-urlencoded"
    assert received.document() == send_test_transcript().to_wire()
    assert received.header("user-agent") == f"chathooks/{__version__}"
    assert received.header("webhook-id") == "dlv_0001"
    assert received.header("webhook-timestamp") == request.headers["webhook-timestamp"]
    assert received.header("x-api-key") == "k-123"
    assert received.header("content-length") == str(len(received.body))
    # The reference Standard Webhooks library accepts what we signed, and only that.
    Webhook(secret).verify(received.body, received.headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(received.body + b"x", received.headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(received.body, received.headers, json_parse=False)


async def test_json_format_sends_the_document_as_is(
    sender: Sender, receiver: RecordingReceiver
) -> None:
    secret = generate_secret()

    result = await sender.send(request_to(receiver.url, fmt="json", secret=secret))
    (received,) = await receiver.wait_for_async(1)

    assert result.ok
    assert received.body == DOCUMENT_JSON.encode()
    assert received.content_type == "application/json"
    assert Webhook(secret).verify(received.body, received.headers) == received.document()


async def test_without_a_secret_there_is_no_signature_but_id_and_timestamp(
    sender: Sender, receiver: RecordingReceiver
) -> None:
    await sender.send(request_to(receiver.url))
    (received,) = await receiver.wait_for_async(1)

    assert received.header("webhook-signature") is None
    assert received.header("webhook-id") == "dlv_0001"
    assert (received.header("webhook-timestamp") or "").isdigit()


async def test_query_string_of_the_configured_url_is_kept(
    sender: Sender, receiver: RecordingReceiver
) -> None:
    await sender.send(request_to(receiver.url + "?token=s3cr%2Bt&site=42"))
    (received,) = await receiver.wait_for_async(1)

    assert received.query == "token=s3cr%2Bt&site=42"


async def test_encoded_query_is_sent_byte_for_byte(
    sender: Sender, receiver: RecordingReceiver
) -> None:
    await sender.send(request_to(receiver.url + "?a=%7e&c=%2F"))
    (received,) = await receiver.wait_for_async(1)

    assert received.query == "a=%7e&c=%2F"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"a":' * 3000, {}),
        ('{"integrationUrl": "https://crm.example/1"}', {"Retry-After": "²"}),
        ("{}", {"Retry-After": "1" + "0" * 400}),
    ],
)
async def test_odd_success_replies_are_still_successes(
    sender: Sender, receiver: RecordingReceiver, body: bytes | str, headers: dict[str, str]
) -> None:
    receiver.reply(200, body, headers=headers)

    result = await sender.send(request_to(receiver.url))

    assert result.ok and result.status_code == 200 and result.error is None


async def test_connections_are_reused_between_deliveries(
    sender: Sender, serve: Callable[[Handler], Awaitable[str]]
) -> None:
    peers: list[object] = []

    async def record_peer(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        return web.Response(text="")

    url = await serve(record_peer)
    for _ in range(3):
        assert (await sender.send(request_to(url))).ok

    assert len(peers) == 3
    assert len(set(map(str, peers))) == 1


# -- reading the reply ----------------------------------------------------------------


async def test_any_2xx_is_success_and_integration_url_is_read(
    sender: Sender, receiver: RecordingReceiver
) -> None:
    receiver.reply(201, {"integrationUrl": "https://crm.example/leads/7"})
    receiver.reply(204)

    created = await sender.send(request_to(receiver.url))
    empty = await sender.send(request_to(receiver.url))

    assert created.ok and created.status_code == 201 and created.error is None
    assert created.integration_url == "https://crm.example/leads/7"
    assert created.duration_ms > 0
    assert empty.ok and empty.status_code == 204 and empty.response_body == ""
    assert empty.integration_url is None


@pytest.mark.parametrize(
    "body",
    [
        {"integrationUrl": 42},
        {"integrationurl": "https://crm.example/wrong-case"},
        '["integrationUrl", "https://crm.example/x"]',
        '{"integrationUrl": "https://crm.example/broken"',
        "<html>integrationUrl</html>",
    ],
)
async def test_integration_url_is_ignored_unless_a_string_in_a_json_object(
    sender: Sender, receiver: RecordingReceiver, body: object
) -> None:
    receiver.reply(200, body)

    result = await sender.send(request_to(receiver.url))

    assert result.ok
    assert result.integration_url is None


async def test_server_error_is_a_failure_with_status_and_body(
    sender: Sender, receiver: RecordingReceiver
) -> None:
    receiver.reply(500, "database down")

    result = await sender.send(request_to(receiver.url))

    assert result == AttemptResult(
        ok=False,
        status_code=500,
        duration_ms=result.duration_ms,
        response_body="database down",
        error="HTTP 500",
        # The answer's headers come along too, for the delivery log.
        response_headers=result.response_headers,
    )
    assert result.response_headers is not None
    assert result.response_headers["Content-Length"] == str(len("database down"))


async def test_redirect_is_not_followed(sender: Sender, receiver: RecordingReceiver) -> None:
    receiver.reply(302, "", headers={"Location": receiver.url + "/elsewhere"})

    result = await sender.send(request_to(receiver.url))
    await asyncio.sleep(0.2)  # a followed redirect would have arrived by now

    assert not result.ok
    assert result.status_code == 302
    assert result.error == f"HTTP 302 (redirect to {receiver.url}/elsewhere not followed)"
    assert len(receiver.requests) == 1


async def test_gone_is_flagged(sender: Sender, receiver: RecordingReceiver) -> None:
    receiver.reply(410, "endpoint removed")

    result = await sender.send(request_to(receiver.url))

    assert result.gone and not result.ok and result.status_code == 410


async def test_retry_after_in_seconds(sender: Sender, receiver: RecordingReceiver) -> None:
    receiver.reply(429, "slow down", headers={"Retry-After": "120"})

    result = await sender.send(request_to(receiver.url))

    assert result.status_code == 429 and result.retry_after == 120.0


async def test_retry_after_as_http_date(sender: Sender, receiver: RecordingReceiver) -> None:
    receiver.reply(503, "", headers={"Retry-After": formatdate(time.time() + 600, usegmt=True)})

    result = await sender.send(request_to(receiver.url))

    assert result.retry_after is not None
    assert 590 <= result.retry_after <= 601


async def test_huge_response_is_read_only_up_to_the_cap(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while True:  # would be gigabytes if the sender kept reading
                await response.write(chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    url = await serve(endless)
    async with Sender(allowed_networks=LOOPBACK, max_response_bytes=1000) as small:
        result = await small.send(request_to(url))

    assert result.ok and result.error is None
    assert result.response_body == "x" * 1000


async def test_body_is_decoded_with_replacement(
    sender: Sender, receiver: RecordingReceiver
) -> None:
    receiver.reply(500, b"caf\xe9 \xff")

    result = await sender.send(request_to(receiver.url))

    assert result.response_body == "caf\ufffd \ufffd"


# -- failures without a reply ---------------------------------------------------------


async def test_slow_server_times_out_with_total_timeout(receiver: RecordingReceiver) -> None:
    receiver.reply(200, "late", delay=3.0)

    async with Sender(allowed_networks=LOOPBACK, total_timeout=0.3) as impatient:
        result = await impatient.send(request_to(receiver.url))

    assert not result.ok and result.status_code is None
    assert result.error == "timed out after 0.3s (total)"
    assert not result.refused


async def test_closed_port_is_connection_refused(sender: Sender) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = await sender.send(request_to(f"http://127.0.0.1:{port}/hook"))

    assert not result.ok and not result.refused
    assert result.error == "connection refused"


async def test_unknown_host_is_a_dns_failure(sender: Sender) -> None:
    # .invalid never resolves (RFC 6761): the lookup fails locally.
    result = await sender.send(request_to("http://no-such-host.invalid/hook"))

    assert not result.ok and not result.refused
    assert result.error == "DNS lookup failed for no-such-host.invalid"


# -- the destination guard on the real path -------------------------------------------


async def test_loopback_is_refused_unless_allowed(receiver: RecordingReceiver) -> None:
    async with Sender() as guarded:
        result = await guarded.send(request_to(receiver.url))

    assert result.refused and not result.ok and result.status_code is None
    assert result.error == (
        "destination 127.0.0.1 is a loopback address; allow it with CHATHOOKS_ALLOWED_DESTINATIONS"
    )
    assert receiver.requests == []


async def test_localhost_name_is_resolved_and_checked(receiver: RecordingReceiver) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost")

    async with Sender() as guarded:
        refused = await guarded.send(request_to(url))
    # Only 127.0.0.0/8 is opened: if localhost also resolves to ::1, that is filtered out.
    async with Sender(allowed_networks=LOOPBACK) as opened:
        accepted = await opened.send(request_to(url))

    assert refused.refused
    assert refused.error is not None
    assert refused.error.startswith("destination localhost ")
    assert "loopback" in refused.error and "CHATHOOKS_ALLOWED_DESTINATIONS" in refused.error
    assert accepted.ok, accepted.error
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://0.0.0.0:{port}/hook",
        "http://127.1:{port}/hook",
        "ftp://127.0.0.1:{port}/hook",
    ],
)
async def test_other_ways_to_write_a_local_address_are_refused(
    receiver: RecordingReceiver, url: str
) -> None:
    async with Sender() as guarded:
        result = await guarded.send(request_to(url.format(port=receiver.port)))

    assert result.refused and result.error
    assert receiver.requests == []


async def test_from_settings_reads_timeouts_limits_and_allow_list(
    receiver: RecordingReceiver,
) -> None:
    settings = Settings(
        allowed_destinations=["127.0.0.0/8"],  # type: ignore[arg-type]
        total_timeout=7.5,
        connect_timeout=2.0,
        max_response_bytes=4,
    )
    receiver.reply(500, "0123456789")

    async with Sender.from_settings(settings) as configured:
        result = await configured.send(request_to(receiver.url))

    assert configured.total_timeout == 7.5 and configured.connect_timeout == 2.0
    assert result.response_body == "0123"


async def test_sending_without_opening_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="async with"):
        await Sender().send(request_to("https://example.com/hook"))


def test_bad_format_and_bad_header_are_rejected_when_building() -> None:
    with pytest.raises(ValueError, match="fmt must be one of form, json"):
        request_to("https://example.com/", fmt="xml")
    with pytest.raises(ValueError, match="line break"):
        request_to("https://example.com/", extra_headers={"X-Evil": "a\r\nHost: x"})

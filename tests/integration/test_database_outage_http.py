"""A database that goes away answers 503 with Retry-After, never 500: the API and the receiver.

The shared PostgreSQL server keeps running; the service reaches it through a
loopback proxy the test cuts (:class:`support.tcp_proxy.TcpProxy`), which to
chathooks is a database whose connections reset and then refuse.
"""

from __future__ import annotations

import httpx
import pytest

from chathooks.receiver.app import ReceiverConfig
from chathooks.wire import encode_form
from integration.test_receive_app import FORM, conversation, serve
from support.service import running_service
from support.tcp_proxy import TcpProxy


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.json()["field"] == "database"


@pytest.mark.parametrize("outage", ["unreachable", "starting up"])
def test_the_api_answers_503_while_the_database_is_away(postgres_url: str, outage: str) -> None:
    with TcpProxy.for_url(postgres_url) as proxy:
        url = proxy.url_through(postgres_url)
        with running_service(url, run_worker=False) as service:
            site, auth = service.create_site()
            transcript = {"kind": "Conversation", "id": "c1", "items": []}

            proxy.cut() if outage == "unreachable" else proxy.starting_up()
            answers = [
                service.client.get(f"/api/v1/sites/{site}/endpoints", headers=auth),
                service.client.get(f"/api/v1/sites/{site}/deliveries", headers=auth),
                service.client.post(
                    f"/api/v1/sites/{site}/transcripts", json=transcript, headers=auth
                ),
                service.client.post("/api/v1/sites", json={"name": "b"}, headers=service.admin()),
            ]
            health = service.client.get("/healthz")
            proxy.restore()
            back = service.client.post(
                f"/api/v1/sites/{site}/transcripts", json=transcript, headers=auth
            )

    for response in answers:
        assert_unavailable(response)
    assert health.status_code == 503
    assert back.status_code == 202, back.text


@pytest.mark.parametrize("outage", ["unreachable", "starting up"])
def test_the_receiver_answers_503_while_its_database_is_away(
    postgres_url: str, outage: str
) -> None:
    with TcpProxy.for_url(postgres_url) as proxy:
        config = ReceiverConfig(database_url=proxy.url_through(postgres_url))
        with serve(config) as base:
            stored = httpx.post(
                f"{base}/webhook", content=encode_form(conversation("c1", "hi")), headers=FORM
            )
            assert stored.status_code == 200, stored.text

            proxy.cut() if outage == "unreachable" else proxy.starting_up()
            webhook = httpx.post(
                f"{base}/webhook", content=encode_form(conversation("c2", "hi")), headers=FORM
            )
            listing = httpx.get(f"{base}/api/transcripts")
            detail = httpx.get(f"{base}/api/transcripts/c1")
            page = httpx.get(f"{base}/")
            proxy.restore()
            again = httpx.get(f"{base}/api/transcripts/c1")

    for response in (webhook, listing, detail, page):
        assert_unavailable(response)
    assert again.status_code == 200

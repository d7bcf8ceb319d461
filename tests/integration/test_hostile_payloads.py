"""Payloads with numbers JSON cannot carry on, and times past year 5138, on both backends.

Before, each of these was accepted somewhere and answered 500 later: a
5,000-digit integer (from ``/transcripts`` and the receiver's ``/webhook``),
``NaN`` and ``Infinity`` (forwarded as non-standard JSON, after which the
receiver could not answer ``GET /api/transcripts/{id}``), and a timestamp of
``"100000000000.5"`` (the receiver's ``/webhook`` failed on every retry).
Numbers are refused with a 4xx naming the key; times are carried as sent.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from chathooks.receiver.app import ReceiverConfig
from integration.test_receive_app import FORM, serve
from support.service import running_service

HUGE = "7" * 5000
UNCARRIABLE = [
    (f'{{"kind": "Conversation", "id": "c1", "items": [], "score": {HUGE}}}', "score"),
    ('{"kind": "Conversation", "id": "c1", "items": [], "tags": [1, NaN]}', "tags.1"),
    ('{"kind": "Conversation", "id": "c1", "visitor": {"x": -Infinity}}', "visitor.x"),
    ('{"kind": "Conversation", "id": "c1", "items": [], "big": 1e999}', "big"),
]
FAR_FUTURE = (
    '{"kind": "Conversation", "id": "late", "items": [{"kind": "MessageToOperator", '
    '"body": "hello", "timestamp": "100000000000.5", "nickname": "Ada"}]}'
)


@pytest.mark.parametrize(("document", "field"), UNCARRIABLE)
def test_the_sender_refuses_numbers_json_cannot_carry_naming_the_key(
    database_url: str, document: str, field: str
) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        service.create_endpoint(site, auth, "https://example.com/hook")
        answers = [
            service.client.post(
                f"/api/v1/sites/{site}/transcripts",
                content=document,
                headers={**auth, "content-type": "application/json"},
            ),
            service.client.post(
                f"/api/v1/sites/{site}/transcripts",
                content=b"data=" + quote(document).encode(),
                headers={**auth, **FORM},
            ),
        ]
        deliveries = service.client.get(f"/api/v1/sites/{site}/deliveries", headers=auth)

    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_payload"
        assert answer.json()["field"] == field
    assert deliveries.json()["items"] == []


@pytest.mark.parametrize(("document", "field"), UNCARRIABLE)
def test_the_receiver_refuses_them_too_and_keeps_answering(
    database_url: str, document: str, field: str
) -> None:
    with serve(ReceiverConfig(database_url=database_url)) as base:
        answer = httpx.post(
            f"{base}/webhook", content=b"data=" + quote(document).encode(), headers=FORM
        )
        listing = httpx.get(f"{base}/api/transcripts")

    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert listing.status_code == 200
    assert listing.json()["items"] == []


def test_a_time_past_year_5138_is_carried_as_sent_and_shown_as_sent(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        accepted = service.client.post(
            f"/api/v1/sites/{site}/transcripts",
            content=FAR_FUTURE,
            headers={**auth, "content-type": "application/json"},
        )
    assert accepted.status_code == 202, accepted.text

    with serve(ReceiverConfig(database_url=database_url)) as base:
        stored = httpx.post(
            f"{base}/webhook", content=b"data=" + quote(FAR_FUTURE).encode(), headers=FORM
        )
        detail = httpx.get(f"{base}/api/transcripts/late")
        page = httpx.get(f"{base}/transcripts/late")
        listing = httpx.get(f"{base}/")

    assert stored.status_code == 200, stored.text
    assert detail.status_code == 200
    assert detail.json()["document"]["items"][0]["timestamp"] == "100000000000.5"
    assert page.status_code == 200
    assert "100000000000.5" in page.text
    assert listing.status_code == 200

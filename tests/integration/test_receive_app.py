"""The receiver app over real HTTP on loopback, on SQLite and PostgreSQL.

The app runs in uvicorn on a port of its own (in a thread), opening and
migrating its database itself, as ``chathooks receive`` does.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from chathooks.receiver.app import ReceiverConfig, create_app
from chathooks.wire import FORM_CONTENT_TYPE, encode_form

FORM = {"content-type": FORM_CONTENT_TYPE}


@contextmanager
def serve(config: ReceiverConfig) -> Iterator[str]:
    """The app for ``config`` listening on a free loopback port; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    app = create_app(replace(config, host="127.0.0.1", port=port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", proxy_headers=False))
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the receiver app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


@pytest.fixture
def base(database_url: str) -> Iterator[str]:
    with serve(ReceiverConfig(database_url=database_url)) as url:
        yield url


def conversation(
    conversation_id: str,
    *messages: str,
    email: str = "visitor@example.com",
    name: str = "Ada Visitor",
    **extra: Any,
) -> dict[str, Any]:
    """A transcript as Olark posts it: visitor messages, one second apart."""
    return {
        "kind": "Conversation",
        "id": conversation_id,
        "tags": [],
        "items": [
            {
                "kind": "MessageToOperator",
                "body": body,
                "timestamp": f"{1700000000 + n}.000000",
                "nickname": name,
            }
            for n, body in enumerate(messages)
        ],
        "visitor": {"kind": "Visitor", "fullName": name, "emailAddress": email},
        "operators": {},
        **extra,
    }


def post(base: str, document: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{base}/webhook", content=encode_form(document), headers={**FORM, **headers})


def listed_ids(base: str, **params: Any) -> list[str]:
    response = httpx.get(f"{base}/api/transcripts", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_search_finds_conversations_by_visitor_email_or_message_text(base: str) -> None:
    post(base, conversation("c1", "My invoice is wrong", email="ada@example.com"))
    post(base, conversation("c2", "Where is my parcel?", email="bob@example.net"))
    post(base, conversation("c3", "100% refund please", email="cy@example.org"))

    assert listed_ids(base, q="BOB@example") == ["c2"]
    assert listed_ids(base, q="invoice") == ["c1"]
    assert listed_ids(base, q="100%") == ["c3"]  # literal %, not a wildcard
    assert listed_ids(base, q="%") == ["c3"]
    assert listed_ids(base, q="nothing like this") == []

    page = httpx.get(f"{base}/", params={"q": "parcel"})
    assert "bob@example.net" in page.text and "ada@example.com" not in page.text


def test_listing_pages_newest_first_with_a_cursor(base: str) -> None:
    for n in range(5):
        post(base, conversation(f"conv{n}", f"message {n}"))
    post(base, conversation("conv1", "message 1", "and a follow-up"))  # conv1 is newest now

    first = httpx.get(f"{base}/api/transcripts", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == ["conv1", "conv4"]
    second = httpx.get(
        f"{base}/api/transcripts", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [item["id"] for item in second["items"]] == ["conv3", "conv2"]
    last = httpx.get(
        f"{base}/api/transcripts", params={"limit": 2, "cursor": second["next_cursor"]}
    ).json()
    assert [item["id"] for item in last["items"]] == ["conv0"]
    assert last["next_cursor"] is None


def test_the_list_page_links_to_older_conversations(database_url: str) -> None:
    with serve(ReceiverConfig(database_url=database_url)) as url:
        for n in range(51):
            post(url, conversation(f"page{n:02d}", "hello"))
        first = httpx.get(f"{url}/")
        assert "page50" in first.text and "page00" not in first.text
        assert "Older conversations" in first.text
        cursor = first.text.split('href="/?cursor=')[1].split('"')[0]
        older = httpx.get(f"{url}/?cursor={cursor}")
        assert "page00" in older.text and "Older conversations" not in older.text


def test_visitor_text_is_shown_as_text_never_run(base: str) -> None:
    attack = "<script>alert('pwned')</script>"
    document = conversation(
        "xss", attack, name='<img src=x onerror="alert(1)">', tags=["<b>vip</b>"]
    )
    document["visitor"]["customFields"] = {"plan": "<i>pro</i>"}
    assert post(base, document).status_code == 200

    for path in ("/transcripts/xss", "/"):
        page = httpx.get(f"{base}{path}")
        assert page.status_code == 200
        assert attack not in page.text
        assert "<img src=x" not in page.text
        assert "<b>vip</b>" not in page.text
    transcript = httpx.get(f"{base}/transcripts/xss").text
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in transcript
    assert "&lt;i&gt;pro&lt;/i&gt;" in transcript


def test_the_transcript_page_reads_as_a_chat(base: str, fixtures_dir: Path) -> None:
    document = json.loads((fixtures_dir / "php-consumer-real-transcript-1.json").read_text())
    document["visitor"]["customFields"] = {"plan": "Enterprise", "seats": 40}
    document["visitor"]["chat_feedback"] = {
        "overall_chat": 5,
        "responsiveness": 4,
        "comments": "Quick and kind",
    }
    post(base, document)
    offline = json.loads((fixtures_dir / "php-consumer-real-offline-message-1.json").read_text())
    post(base, offline)

    page = httpx.get(f"{base}/transcripts/{document['id']}").text
    for item in document["items"]:
        assert item["body"].split("\n")[0] in page
    assert 'class="bubble operator"' in page and 'class="bubble visitor"' in page
    assert "Enterprise" in page and "seats" in page
    assert "5 / 5" in page and "Quick and kind" in page
    assert "2019-05-17" in page  # the messages' timestamps, as dates

    offline_page = httpx.get(f"{base}/transcripts/{offline['id']}").text
    assert 'class="bubble offline"' in offline_page
    assert "offline message" in offline_page


def test_a_late_start_event_does_not_hide_the_transcript(base: str, fixtures_dir: Path) -> None:
    transcript = json.loads((fixtures_dir / "php-consumer-real-transcript-2.json").read_text())
    start = json.loads((fixtures_dir / "php-consumer-real-start-event-2.json").read_text())
    assert transcript["id"] == start["id"]
    post(base, transcript)
    post(base, start)  # e.g. a retry of the start event that arrived late

    detail = httpx.get(f"{base}/api/transcripts/{transcript['id']}").json()
    assert detail["document"] == transcript
    assert detail["kind"] == "transcript"
    assert [v["kind"] for v in detail["versions"]] == ["transcript", "start_event"]


async def test_concurrent_posts_keep_every_version_and_dedupe_retries(base: str) -> None:
    async with httpx.AsyncClient() as client:

        async def send(document: dict[str, Any], **headers: str) -> httpx.Response:
            return await client.post(
                f"{base}/webhook", content=encode_form(document), headers={**FORM, **headers}
            )

        growing = [conversation("busy", *[f"m{i}" for i in range(n + 1)]) for n in range(8)]
        answers = await asyncio.gather(*(send(doc) for doc in growing))
        retries = await asyncio.gather(
            *(send(conversation("retried", "hi"), **{"webhook-id": "msg_same"}) for _ in range(8))
        )
        busy = (await client.get(f"{base}/api/transcripts/busy")).json()
        retried = (await client.get(f"{base}/api/transcripts/retried")).json()
    assert {a.status_code for a in [*answers, *retries]} == {200}
    assert len({a.json()["integrationUrl"] for a in retries}) == 1
    assert [v["number"] for v in busy["versions"]] == list(range(1, 9))
    assert retried["version_count"] == 1


def test_unknown_ids_and_bad_parameters_get_clear_errors(base: str) -> None:
    missing = httpx.get(f"{base}/api/transcripts/nope")
    assert missing.status_code == 404
    assert missing.json()["field"] == "id"
    assert httpx.get(f"{base}/transcripts/nope").status_code == 404

    bad_cursor = httpx.get(f"{base}/api/transcripts", params={"cursor": "abc"})
    assert bad_cursor.status_code == 400
    assert bad_cursor.json() == {
        "error": "invalid_cursor",
        "field": "cursor",
        "message": bad_cursor.json()["message"],
    }
    huge_cursor = httpx.get(f"{base}/api/transcripts", params={"cursor": "9" * 30})
    assert huge_cursor.status_code == 400
    assert huge_cursor.json()["field"] == "cursor"
    bad_limit = httpx.get(f"{base}/api/transcripts", params={"limit": 0})
    assert bad_limit.status_code == 400
    assert bad_limit.json()["field"] == "limit"

    not_form = httpx.post(
        f"{base}/webhook", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert not_form.status_code == 415
    assert not_form.json()["field"] == "content-type"

    empty_id = post(base, conversation("", "hi"))
    assert empty_id.status_code == 400
    assert empty_id.json()["field"] == "id"
    assert listed_ids(base) == []


def test_ids_with_reserved_characters_get_working_links(base: str) -> None:
    answer = post(base, conversation("team/a b?c", "hello"))
    url = answer.json()["integrationUrl"]
    assert url.endswith("/transcripts/team%2Fa%20b%3Fc")
    page = httpx.get(url)
    assert page.status_code == 200 and "hello" in page.text


def test_raw_json_bodies_are_accepted_too(base: str) -> None:
    document = conversation("as-json", "sent as JSON")
    answer = httpx.post(f"{base}/webhook", json=document)
    assert answer.status_code == 200
    assert httpx.get(f"{base}/api/transcripts/as-json").json()["document"] == document


def test_health_and_stylesheet_are_served(base: str) -> None:
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    css = httpx.get(f"{base}/static/receiver.css")
    assert css.status_code == 200 and ".bubble" in css.text

"""Request limits of the API, on SQLite and PostgreSQL: bodies, keys before bodies, NULs.

Each limit answers with the JSON error body and a 4xx; none reaches the
database or costs the memory of a whole body.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from chathooks.repository.validation import MAX_HEADER_NAME, MAX_HEADER_VALUE, MAX_HEADERS
from support.raw_http import exchange
from support.service import running_service


def _post_head(path: str, key: str | None, length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_request_with_a_body_and_no_valid_key_is_refused_before_the_body_arrives(
    database_url: str,
) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, _ = service.create_site()
        path = f"/api/v1/sites/{site}/conversations"
        # Only the head is sent: a server that waited for the 1 MB body would never answer.
        keyless = exchange(service.url, _post_head(path, None, 1024 * 1024), [], timeout=20)
        wrong = exchange(service.url, _post_head(path, "chk_nope", 1024 * 1024), [], timeout=20)

    for answer, message in ((keyless, "Authorization: Bearer"), (wrong, "not valid")):
        assert answer.status == 401, answer
        assert b"www-authenticate: Bearer" in answer.head
        document = httpx.Response(401, content=answer.body).json()
        assert document["error"] == "unauthorized"
        assert document["field"] == "authorization"
        assert message in document["message"]


def test_bodies_over_a_routes_limit_get_413(database_url: str) -> None:
    with running_service(database_url, run_worker=False, max_body_bytes=100_000) as service:
        site, auth = service.create_site()
        big_chat = {"id": "c1", "messages": [{"body": "x" * 200_000}]}
        chat = service.client.post(
            f"/api/v1/sites/{site}/conversations", json=big_chat, headers=auth
        )
        # Settings are small: an endpoint with a 100 KB header value is refused.
        endpoint = service.client.post(
            f"/api/v1/sites/{site}/endpoints",
            json={"url": "https://example.com/hook", "headers": {"X-Big": "v" * 100_000}},
            headers=auth,
        )

        def stream() -> Iterator[bytes]:
            for _ in range(30):
                yield b"x" * 10_000

        streamed = service.client.post(
            f"/api/v1/sites/{site}/transcripts",
            content=stream(),
            headers={**auth, "Content-Type": "application/json"},
        )
        still = service.client.get(f"/api/v1/sites/{site}/endpoints", headers=auth)

    for response in (chat, endpoint, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "body_too_large"
        assert response.json()["field"] == "body"
    assert still.status_code == 200
    assert still.json()["items"] == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/deliveries/%00", "path"),
        ("/deliveries?status=%00", "status"),
        ("/deliveries?cursor=a%00b", "cursor"),
        ("/conversations/x%00y", "path"),
    ],
)
def test_a_nul_in_the_path_or_query_is_a_400_naming_it(
    database_url: str, path: str, field: str
) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        response = service.client.get(f"/api/v1/sites/{site}{path}", headers=auth)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request"
    assert response.json()["field"] == field
    assert "NUL" in response.json()["message"]


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"X-Token": "v" * (MAX_HEADER_VALUE + 1)}, "value of header 'X-Token' is longer than"),
        ({"X-" + "n" * MAX_HEADER_NAME: "v"}, f"longer than {MAX_HEADER_NAME} characters"),
        ({f"X-H{n}": "v" for n in range(MAX_HEADERS + 1)}, f"at most {MAX_HEADERS} extra"),
    ],
    ids=["value", "name", "count"],
)
def test_endpoint_headers_over_their_limits_get_422_naming_the_field(
    sqlite_url: str, headers: dict[str, str], says: str
) -> None:
    with running_service(sqlite_url, run_worker=False) as service:
        site, auth = service.create_site()
        endpoints = f"/api/v1/sites/{site}/endpoints"
        made = service.client.post(
            endpoints, json={"url": "https://example.com/hook", "headers": headers}, headers=auth
        )
        largest = {"X-Token": "v" * MAX_HEADER_VALUE}
        kept = service.client.post(
            endpoints, json={"url": "https://example.com/hook", "headers": largest}, headers=auth
        )
        changed = service.client.patch(
            f"{endpoints}/{kept.json()['id']}", json={"headers": headers}, headers=auth
        )

    assert kept.status_code == 201, kept.text
    for response in (made, changed):
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "headers"
        assert says in response.json()["message"]

"""Hostile requests against the real ``chathooks serve`` and ``chathooks receive`` processes.

A body or a header too large for any purpose is refused while it arrives, so
it costs neither memory nor the event loop: before, 300 MB posted to a JSON
route without a key took ``serve`` from 106 MB to over 1 GB, and a 40 MB
header kept every other request waiting for seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx

from acceptance.test_cli_service import chathooks, chathooks_json, serving
from acceptance.test_receive_cli import running_receiver
from support.raw_http import chunks_of, exchange

MB = 1024 * 1024


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


def site_key(tmp_path: Path, database_url: str) -> tuple[str, str]:
    assert chathooks("migrate", "--database-url", database_url, cwd=tmp_path).returncode == 0
    created = chathooks_json("site", "create", "Acme", "--database-url", database_url, cwd=tmp_path)
    return created["id"], created["api_key"]


def post_head(path: str, key: str | None, *, length: int | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def test_a_300_mb_body_is_refused_while_it_arrives_and_costs_serve_no_memory(
    tmp_path: Path, sqlite_url: str
) -> None:
    site, key = site_key(tmp_path, sqlite_url)
    path = f"/api/v1/sites/{site}/conversations"
    with serving(tmp_path, sqlite_url) as (base, process):
        pid = process.process.pid
        for _ in range(20):  # warm up the routes the test uses
            httpx.post(base + path, json={"id": "warm"}, headers={"Authorization": f"Bearer {key}"})
        before = rss_bytes(pid)

        streamed = exchange(base, post_head(path, key), chunked(chunks_of(300 * MB)))
        declared = exchange(base, post_head(path, key, length=300 * MB), chunks_of(300 * MB))
        keyless = exchange(base, post_head(path, None), chunked(chunks_of(300 * MB)))

        peak = rss_bytes(pid, "VmHWM")
        assert httpx.get(base + "/healthz").status_code == 200

    for answer in (streamed, declared):
        assert answer.status == 413, answer
        assert json.loads(answer.body)["error"] == "body_too_large"
        assert json.loads(answer.body)["field"] == "body"
    assert keyless.status == 401, keyless
    assert json.loads(keyless.body)["field"] == "authorization"
    # Nothing like the 300 MB offered was taken in.
    assert streamed.sent < 100 * MB
    assert declared.sent < 100 * MB
    assert keyless.sent < 100 * MB
    assert peak - before < 20 * MB, f"serve grew by {(peak - before) / MB:.1f} MB"


def _huge_header(total: int) -> tuple[bytes, Iterator[bytes]]:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
    return head, chunks_of(total, 256 * 1024)


def _assert_431_while_healthz_answers(base: str) -> None:
    answers: list[int] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while not stop.is_set():
                answers.append(client.get("/healthz").status_code)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        deadline = time.monotonic() + 30
        while not answers and time.monotonic() < deadline:  # the prober is under way
            time.sleep(0.01)
        head, parts = _huge_header(40 * MB)
        answer = exchange(base, head, parts)
    finally:
        stop.set()
        prober.join(30)
    assert answer.status == 431, answer
    document = json.loads(answer.body)
    assert document["error"] == "headers_too_large"
    assert document["field"] == "headers"
    assert answer.sent < 20 * MB  # refused long before the 40 MB were through
    assert answers and set(answers) == {200}
    assert httpx.get(base + "/healthz").status_code == 200


def test_a_40_mb_header_gets_431_from_serve_and_healthz_keeps_answering(
    tmp_path: Path, sqlite_url: str
) -> None:
    with serving(tmp_path, sqlite_url) as (base, _process):
        _assert_431_while_healthz_answers(base)
        assert httpx.get(base + "/healthz").status_code == 200


def test_a_40_mb_header_gets_431_from_receive(tmp_path: Path) -> None:
    with running_receiver(tmp_path, database_url=f"sqlite:///{tmp_path / 'r.db'}") as running:
        _assert_431_while_healthz_answers(running.base)

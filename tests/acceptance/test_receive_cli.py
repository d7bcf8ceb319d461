"""``chathooks receive`` as a user runs it: a real process, real HTTP, a real database.

Each test starts the installed ``chathooks receive`` on a free loopback port,
POSTs Olark's wire-exact fixture bodies to it with httpx, and checks what a
user sees: the answer Olark gets, the pages, the JSON API and the export.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from chathooks.signing import generate_secret, signature_headers
from chathooks.wire import FORM_CONTENT_TYPE, encode_form
from support.receive_process import (
    READ_KEY,
    READER,
    RunningReceiver,
    free_port,
    running_receiver,
)

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
FORM = {"content-type": FORM_CONTENT_TYPE}
TRANSCRIPT = "snowplow-enrich-common-e1-transcript-HEAD"
OFFLINE = "snowplow-enrich-common-e2-offline-message"
SEND_TEST = "snowplow-spark-olark-test-transcript-raw"


def run_chathooks(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHATHOOKS, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def fixture_body(fixtures_dir: Path, stem: str) -> bytes:
    return (fixtures_dir / f"{stem}.body.txt").read_bytes()


def fixture_document(fixtures_dir: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((fixtures_dir / name).read_text())
    return document


def test_olark_posts_are_stored_and_shown_on_pages_api_and_export(
    tmp_path: Path, fixtures_dir: Path, database_url: str
) -> None:
    with running_receiver(tmp_path, database_url=database_url) as receiver:
        answers = {
            stem: receiver.post(fixture_body(fixtures_dir, stem))
            for stem in (TRANSCRIPT, OFFLINE, SEND_TEST)
        }
        for stem, answer in answers.items():
            conversation_id = fixture_document(fixtures_dir, f"{stem}.json")["id"]
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "integrationUrl": f"{receiver.base}/transcripts/{conversation_id}"
            }

        listed = receiver.conversations()
        assert [c["id"] for c in listed] == [
            "NOTAREALTRANSCRIPT5LGcbVTa3hKBRB",  # newest first
            "EV695BI2930A6XMO32886QPT899443414",
            "EV695BI2930A6XMO32886MPT899443414",
        ]
        assert [c["kind"] for c in listed] == ["transcript", "offline_message", "transcript"]
        assert listed[2]["visitor"] == {"name": "Bob Doe", "email": "bob@example.com"}
        assert listed[2]["tags"] == ["olark", "customer"]

        detail = receiver.get("/api/transcripts/EV695BI2930A6XMO32886MPT899443414").json()
        assert detail["document"] == fixture_document(fixtures_dir, f"{TRANSCRIPT}.json")
        assert detail["message_count"] == 2
        assert detail["first_message_at"] == "2011-06-03T15:57:37.100000+00:00"
        assert [v["kind"] for v in detail["versions"]] == ["transcript"]

        home = receiver.get("/")
        assert home.status_code == 200
        assert "Bob Doe" in home.text and "offline message" in home.text

        integration_url = answers[SEND_TEST].json()["integrationUrl"]
        page = httpx.get(integration_url, headers=READER)
        assert page.status_code == 200
        assert "Hi from an operator" in page.text and "Hi from a visitor" in page.text
        assert "2016-09-13 13:53:39 UTC" in page.text  # Olark's timestamp, as a date
        assert "test_example" in page.text  # tags
        assert "Chat feedback" in page.text

        jsonl = run_chathooks(
            "receive", "export", "--database-url", database_url, "--format", "jsonl"
        )
        assert jsonl.returncode == 0, jsonl.stderr
        exported = [json.loads(line) for line in jsonl.stdout.splitlines()]
        assert exported == [
            fixture_document(fixtures_dir, f"{stem}.json")
            for stem in (TRANSCRIPT, OFFLINE, SEND_TEST)
        ]

        output = tmp_path / "conversations.csv"
        table = run_chathooks(
            "receive", "export", "--database-url", database_url, "--format", "csv",
            "--output", str(output),
        )  # fmt: skip
        assert table.returncode == 0, table.stderr
        rows = list(csv.DictReader(io.StringIO(output.read_text())))
        assert rows[0] == {
            "id": "EV695BI2930A6XMO32886MPT899443414",
            "kind": "transcript",
            "visitor_name": "Bob Doe",
            "visitor_email": "bob@example.com",
            "first_timestamp": "2011-06-03T15:57:37+00:00",
            "last_timestamp": "2011-06-03T15:57:41+00:00",
            "message_count": "2",
            "tags": "olark;customer",
        }
        assert [row["kind"] for row in rows] == ["transcript", "offline_message", "transcript"]


def test_the_same_conversation_three_times_keeps_three_versions(
    tmp_path: Path, fixtures_dir: Path, database_url: str
) -> None:
    start = fixture_document(fixtures_dir, "php-consumer-real-start-event-1.json")
    final = fixture_document(fixtures_dir, "php-consumer-real-transcript-1.json")
    lead = {**final, "items": final["items"][:2], "manuallySubmitted": True}  # after !lead
    conversation_id = final["id"]

    with running_receiver(tmp_path, database_url=database_url) as receiver:
        urls = {
            receiver.post(encode_form(doc)).json()["integrationUrl"] for doc in (start, lead, final)
        }
        assert urls == {f"{receiver.base}/transcripts/{conversation_id}"}

        listed = receiver.conversations()
        assert [(c["id"], c["version_count"], c["message_count"]) for c in listed] == [
            (conversation_id, 3, 3)
        ]
        detail = receiver.get(f"/api/transcripts/{conversation_id}").json()
        assert [v["number"] for v in detail["versions"]] == [1, 2, 3]
        assert [v["kind"] for v in detail["versions"]] == [
            "start_event",
            "transcript",
            "transcript",
        ]
        assert [v["manually_submitted"] for v in detail["versions"]] == [False, True, False]
        assert [v["document"] for v in detail["versions"]] == [start, lead, final]
        assert detail["document"] == final

        page = receiver.get(f"/transcripts/{conversation_id}").text
        assert "start event" in page and "3 POSTs" in page

        latest = run_chathooks("receive", "export", "--database-url", database_url)
        assert [json.loads(line) for line in latest.stdout.splitlines()] == [final]
        every = run_chathooks("receive", "export", "--database-url", database_url, "--all-versions")
        assert [json.loads(line) for line in every.stdout.splitlines()] == [start, lead, final]


def test_a_repeated_webhook_id_is_answered_again_but_not_stored_even_after_a_restart(
    tmp_path: Path, fixtures_dir: Path, database_url: str
) -> None:
    body = fixture_body(fixtures_dir, TRANSCRIPT)
    retry = {"webhook-id": "msg_2f6d0c", "webhook-timestamp": str(int(time.time()))}

    with running_receiver(tmp_path, database_url=database_url) as receiver:
        first = receiver.post(body, retry)
        again = receiver.post(body, retry)
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert receiver.conversations()[0]["version_count"] == 1

    with running_receiver(tmp_path, database_url=database_url) as restarted:
        after_restart = restarted.post(body, retry)
        assert after_restart.status_code == 200
        assert after_restart.json()["integrationUrl"].endswith(
            "/transcripts/EV695BI2930A6XMO32886MPT899443414"
        )
        assert restarted.conversations()[0]["version_count"] == 1

        new_delivery = restarted.post(body, {**retry, "webhook-id": "msg_7a1e44"})
        assert new_delivery.status_code == 200
        versions = restarted.get("/api/transcripts/EV695BI2930A6XMO32886MPT899443414").json()
        assert [v["webhook_id"] for v in versions["versions"]] == ["msg_2f6d0c", "msg_7a1e44"]


def test_malformed_bodies_get_400_naming_the_problem_and_nothing_is_stored(
    tmp_path: Path, fixtures_dir: Path, database_url: str
) -> None:
    cases = {
        "snowplow-enrich-common-e7-missing-data-key": ("missing_data_field", "data"),
        "snowplow-enrich-common-e8-invalid-json": ("invalid_json", "data"),
        "snowplow-issue-1014-olark-2014-send-test-TRUNCATED": ("invalid_json", "data"),
    }
    with running_receiver(tmp_path, database_url=database_url) as receiver:
        for stem, (code, field) in cases.items():
            answer = receiver.post(fixture_body(fixtures_dir, stem))
            assert answer.status_code == 400, stem
            assert answer.json()["error"] == code, stem
            assert answer.json()["field"] == field, stem
            assert answer.json()["message"]

        wrong_shape = receiver.post(encode_form({"id": "x", "items": "not a list"}))
        assert wrong_shape.status_code == 400
        assert wrong_shape.json()["field"] == "items"

        assert receiver.conversations() == []


def test_a_receiver_with_a_secret_refuses_bad_signatures(
    tmp_path: Path, fixtures_dir: Path, sqlite_url: str
) -> None:
    secret = generate_secret()
    body = fixture_body(fixtures_dir, TRANSCRIPT)
    with running_receiver(tmp_path, "--secret", secret, database_url=sqlite_url) as receiver:
        forged = receiver.post(body, signature_headers(generate_secret(), "msg_1", body))
        assert forged.status_code == 401
        assert forged.json()["error"] == "signature_mismatch"
        assert forged.json()["field"] == "webhook-signature"

        unsigned = receiver.post(body)
        assert unsigned.status_code == 401
        assert unsigned.json()["error"] == "missing_signature_headers"

        tampered = receiver.post(body + b"x", signature_headers(secret, "msg_2", body))
        assert tampered.status_code == 401
        assert receiver.conversations() == []

        signed = receiver.post(body, signature_headers(secret, "msg_3", body))
        assert signed.status_code == 200, signed.text
        assert [c["id"] for c in receiver.conversations()] == ["EV695BI2930A6XMO32886MPT899443414"]


def test_a_source_outside_the_allow_list_gets_403(
    tmp_path: Path, fixtures_dir: Path, sqlite_url: str
) -> None:
    body = fixture_body(fixtures_dir, TRANSCRIPT)
    with running_receiver(
        tmp_path, "--allow-cidr", "10.0.0.0/8", database_url=sqlite_url
    ) as receiver:
        refused = receiver.post(body)
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden_source"
        assert "127.0.0.1" in refused.json()["message"]

        # Without --trust-proxy, a client cannot pick its own address.
        spoofed = receiver.post(body, {"x-forwarded-for": "10.1.2.3"})
        assert spoofed.status_code == 403
        assert receiver.conversations() == []


def test_a_trusted_proxy_passes_on_the_client_address(
    tmp_path: Path, fixtures_dir: Path, sqlite_url: str
) -> None:
    body = fixture_body(fixtures_dir, TRANSCRIPT)
    args = ("--allow-cidr", "10.0.0.0/8", "--trust-proxy", "127.0.0.1")
    with running_receiver(tmp_path, *args, database_url=sqlite_url) as receiver:
        assert receiver.post(body, {"x-forwarded-for": "192.0.2.9"}).status_code == 403
        forwarded = receiver.post(body, {"x-forwarded-for": "10.1.2.3"})
        assert forwarded.status_code == 200
        detail = receiver.get("/api/transcripts/EV695BI2930A6XMO32886MPT899443414").json()
        assert detail["versions"][0]["remote_addr"] == "10.1.2.3"


def test_settings_come_from_the_environment_and_sqlite_is_the_default(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    port = free_port()
    env = {"CHATHOOKS_RECEIVER_PUBLIC_URL": "https://hooks.example.org/receiver/"}
    with running_receiver(tmp_path, env=env, port=port) as receiver:
        answer = receiver.post(fixture_body(fixtures_dir, OFFLINE))
        assert answer.json() == {
            "integrationUrl": "https://hooks.example.org/receiver/transcripts/"
            "EV695BI2930A6XMO32886QPT899443414"
        }
    assert (tmp_path / "received.db").is_file()

    exported = run_chathooks("receive", "export", "--format", "csv", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "EV695BI2930A6XMO32886QPT899443414" in exported.stdout


def test_bad_settings_stop_with_a_message(tmp_path: Path, sqlite_url: str) -> None:
    bad_cidr = run_chathooks("receive", "--allow-cidr", "10.0.0.0/33", "--database-url", sqlite_url)
    assert bad_cidr.returncode != 0
    assert "10.0.0.0/33" in bad_cidr.stderr

    bad_secret = run_chathooks("receive", "--secret", "whsec_***", "--database-url", sqlite_url)
    assert bad_secret.returncode != 0
    assert "secret" in bad_secret.stderr

    bad_url = run_chathooks("receive", "--database-url", "mysql://db/x")
    assert bad_url.returncode != 0
    assert "unsupported database" in bad_url.stderr

    bad_public_url = run_chathooks("receive", "--public-url", "hooks.example.org")
    assert bad_public_url.returncode == 2
    assert "--public-url" in bad_public_url.stderr

    missing = run_chathooks(
        "receive", "export", "--database-url", f"sqlite:///{tmp_path / 'nothing-here.db'}"
    )
    assert missing.returncode == 1
    assert "no receiver database" in missing.stderr
    assert not (tmp_path / "nothing-here.db").exists()

    csv_versions = run_chathooks(
        "receive", "export", "--database-url", sqlite_url, "--format", "csv", "--all-versions"
    )
    assert csv_versions.returncode == 2
    assert "--all-versions" in csv_versions.stderr


def test_send_test_reaches_a_signed_receiver_end_to_end(tmp_path: Path, sqlite_url: str) -> None:
    secret = generate_secret()
    with running_receiver(tmp_path, "--secret", secret, database_url=sqlite_url) as receiver:
        unsigned = run_chathooks("send-test", f"{receiver.base}/webhook")
        assert unsigned.returncode == 1
        assert "401" in unsigned.stdout and "missing_signature_headers" in unsigned.stdout

        signed = run_chathooks("send-test", f"{receiver.base}/webhook", "--secret", secret)
        assert signed.returncode == 0, signed.stdout + signed.stderr
        page_url = f"{receiver.base}/transcripts/NOTAREALTRANSCRIPT5LGcbVTa3hKBRB"
        assert f"integrationUrl: {page_url}" in signed.stdout
        assert "Hi from an operator" in httpx.get(page_url, headers=READER).text


@pytest.mark.browser
def test_a_script_in_a_message_is_shown_as_text_in_the_browser(
    tmp_path: Path, sqlite_url: str, page: Page
) -> None:
    script = "<script>window.pwned = 'script'</script>"
    image = "<img src=x onerror=\"window.pwned = 'img'\">"
    document = {
        "kind": "Conversation",
        "id": "xss-in-browser",
        "items": [
            {"kind": "MessageToOperator", "body": script, "timestamp": "1700000000.000000"},
            {"kind": "MessageToOperator", "body": image, "timestamp": "1700000001.000000"},
        ],
        "visitor": {"kind": "Visitor", "fullName": image},
        "operators": {},
    }
    with running_receiver(tmp_path, database_url=sqlite_url) as receiver:
        url = receiver.post(encode_form(document)).json()["integrationUrl"]
        page.context.set_extra_http_headers(READER)
        page.goto(url)
        assert page.locator(".bubble .body").all_inner_texts() == [script, image]
        assert page.evaluate("window.pwned") is None
        page.goto(receiver.base)
        assert page.get_by_role("link", name=image).is_visible()
        assert page.evaluate("window.pwned") is None


# -- reading needs the read key ---------------------------------------------------------


def test_reading_needs_the_read_key_and_the_webhook_does_not(
    tmp_path: Path, sqlite_url: str, fixtures_dir: Path
) -> None:
    with running_receiver(tmp_path, database_url=sqlite_url) as receiver:
        stored = receiver.post(fixture_body(fixtures_dir, TRANSCRIPT))
        assert stored.status_code == 200, stored.text  # the webhook keeps its own checks

        for path in ("/api/transcripts", "/api/transcripts/EV695BI2930A6XMO32886MPT899443414"):
            anonymous = httpx.get(f"{receiver.base}{path}")
            assert anonymous.status_code == 401, path
            assert anonymous.json()["field"] == "authorization"
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            wrong = httpx.get(f"{receiver.base}{path}", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert receiver.get(path).status_code == 200
        for path in ("/", "/transcripts/EV695BI2930A6XMO32886MPT899443414"):
            page = httpx.get(f"{receiver.base}{path}")
            assert page.status_code == 401
            assert "Bob Doe" not in page.text and 'name="key"' in page.text  # the sign-in form
        assert httpx.get(f"{receiver.base}/healthz").status_code == 200


def test_a_person_signs_in_with_the_form_and_keeps_a_cookie(
    tmp_path: Path, sqlite_url: str, fixtures_dir: Path
) -> None:
    with running_receiver(tmp_path, database_url=sqlite_url) as receiver:
        url = receiver.post(fixture_body(fixtures_dir, TRANSCRIPT)).json()["integrationUrl"]
        with httpx.Client() as browser:
            shown = browser.get(url)  # the link an operator clicks after !lead
            assert shown.status_code == 401
            path = url.removeprefix(receiver.base)
            assert f'value="{path}"' in shown.text  # back to this page after signing in

            refused = browser.post(f"{receiver.base}/signin", data={"key": "wrong", "next": path})
            assert refused.status_code == 401
            assert "not this receiver" in refused.text

            signed_in = browser.post(
                f"{receiver.base}/signin", data={"key": READ_KEY, "next": path}
            )
            assert signed_in.status_code == 303
            assert signed_in.headers["location"] == path
            cookie = signed_in.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=lax" in cookie
            assert READ_KEY.lower() not in cookie  # the cookie is not the key itself
            page = browser.get(url)
            assert page.status_code == 200 and "Bob Doe" in page.text

            browser.post(f"{receiver.base}/signout")
            assert browser.get(url).status_code == 401

        elsewhere = httpx.post(
            f"{receiver.base}/signin", data={"key": READ_KEY, "next": "//evil.example/"}
        )
        assert elsewhere.headers["location"] == "/"  # never an open redirect


def test_a_generated_read_key_is_printed_once_at_start(tmp_path: Path, sqlite_url: str) -> None:
    with running_receiver(tmp_path, database_url=sqlite_url, read_key=None) as receiver:
        lines = [line for line in receiver.log.read_text().splitlines() if "read key" in line]
        assert len(lines) == 1, receiver.log.read_text()
        key = lines[0].rsplit(": ", 1)[1].strip()
        assert len(key) >= 32
        assert httpx.get(f"{receiver.base}/api/transcripts").status_code == 401
        allowed = httpx.get(
            f"{receiver.base}/api/transcripts", headers={"Authorization": f"Bearer {key}"}
        )
        assert allowed.status_code == 200


def printed_read_key(receiver: RunningReceiver) -> str:
    [line] = [line for line in receiver.log.read_text().splitlines() if "read key" in line]
    return line.rsplit(": ", 1)[1].strip()


def test_a_generated_read_key_survives_a_restart_and_read_key_overrides_it(
    tmp_path: Path, database_url: str
) -> None:
    # Bookmarks and signed-in browsers keep working when the receiver restarts.
    with running_receiver(tmp_path, database_url=database_url, read_key=None) as receiver:
        first = printed_read_key(receiver)
    with running_receiver(tmp_path, database_url=database_url, read_key=None) as receiver:
        assert printed_read_key(receiver) == first
        allowed = httpx.get(
            f"{receiver.base}/api/transcripts", headers={"Authorization": f"Bearer {first}"}
        )
        assert allowed.status_code == 200
    with running_receiver(tmp_path, database_url=database_url) as receiver:
        assert "read key" not in receiver.log.read_text()
        refused = httpx.get(
            f"{receiver.base}/api/transcripts", headers={"Authorization": f"Bearer {first}"}
        )
        assert refused.status_code == 401
        assert receiver.get("/api/transcripts").status_code == 200  # the given --read-key


def test_public_opts_out_with_a_warning(tmp_path: Path, sqlite_url: str) -> None:
    with running_receiver(tmp_path, "--public", database_url=sqlite_url) as receiver:
        assert httpx.get(f"{receiver.base}/api/transcripts").status_code == 200
        assert "warning: --public" in receiver.log.read_text()
        assert "read key" not in receiver.log.read_text()


def test_bad_read_key_settings_stop_with_a_message(sqlite_url: str) -> None:
    both = run_chathooks(
        "receive", "--public", "--read-key", READ_KEY, "--database-url", sqlite_url
    )
    assert both.returncode == 2
    assert "--public" in both.stderr
    short = run_chathooks("receive", "--read-key", "abc", "--database-url", sqlite_url)
    assert short.returncode == 2
    assert "16 characters" in short.stderr

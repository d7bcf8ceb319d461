"""Olark's chat rules end to end: the real service on loopback, a real receiver, real databases.

Each test reports chat events to the conversation API the way a chat
platform would, and checks what the receiver was actually POSTed, and what
the operator is shown (``integrationUrl`` in ``GET`` and on the event stream).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from chathooks.conversations.constraints import consumer_problems
from chathooks.wire import FORM_CONTENT_TYPE
from support.receiver import RecordingReceiver
from support.service import RunningService, running_service

VISITOR = {
    "fullName": "Paul",
    "emailAddress": "visitor1@example.com",
    "city": "Buffalo Grove",
    "region": "IL",
    "country": "United States",
    "countryCode": "US",
    "ip": "203.0.113.10",
    "browser": "Chrome 74.0.3729.131",
    "operatingSystem": "Windows",
    "conversationBeginPage": "https://www.example-clinic.org/",
}
OPERATOR = {
    "id": "1029431",
    "username": "paul-clinic",
    "nickname": "Paul",
    "emailAddress": "operator@example.com",
}


@dataclass
class Site:
    service: RunningService
    id: str
    auth: dict[str, str]

    @property
    def client(self) -> httpx.Client:
        return self.service.client

    def path(self, tail: str) -> str:
        return f"/api/v1/sites/{self.id}{tail}"

    def endpoint(self, url: str, **switches: Any) -> str:
        return str(self.service.create_endpoint(self.id, self.auth, url, **switches)["id"])

    def post(self, tail: str, body: Any = None, expect: int | None = None) -> Any:
        response = self.client.post(self.path(tail), json=body, headers=self.auth)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json()

    def get(self, tail: str) -> Any:
        response = self.client.get(self.path(tail), headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    def start(self, **fields: Any) -> str:
        body = self.post("/conversations", {"visitor": VISITOR, **fields}, expect=201)
        return str(body["id"])

    def visitor_says(self, conversation: str, text: str) -> Any:
        return self.post(
            f"/conversations/{conversation}/messages", {"from": "visitor", "body": text}, 201
        )

    def operator_says(self, conversation: str, text: str) -> Any:
        body = {"from": "operator", "body": text, "operator": OPERATOR}
        return self.post(f"/conversations/{conversation}/messages", body, 201)

    def close(self, conversation: str) -> Any:
        return self.post(f"/conversations/{conversation}/close", expect=200)

    def wait_until(self, conversation: str, check: Any, timeout: float = 15.0) -> Any:
        """The conversation once ``check(conversation)`` holds; fails with its last state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.get(f"/conversations/{conversation}")
            if check(state):
                return state
            assert time.monotonic() < deadline, json.dumps(state, indent=1)
            time.sleep(0.05)


def all_delivered(state: dict[str, Any]) -> bool:
    deliveries = [d for i in state["integrations"] for d in i["deliveries"]]
    return bool(deliveries) and all(d["status"] == "succeeded" for d in deliveries)


@pytest.fixture
def site(database_url: str) -> Iterator[Site]:
    with running_service(database_url) as service:
        site_id, auth = service.create_site()
        yield Site(service, site_id, auth)


def test_a_start_event_goes_out_at_once(site: Site, receiver: RecordingReceiver) -> None:
    site.endpoint(receiver.url, auto_send=False, send_events=True)
    conversation = site.start(groups=[{"id": "b342", "name": "Spanish"}])
    (request,) = receiver.wait_for(1)
    document = request.document()
    assert document["eventType"] == "start"
    assert document["id"] == conversation
    assert document["items"] == []
    assert document["operators"] == {}
    assert document["groups"] == [{"kind": "Group", "id": "b342", "name": "Spanish"}]
    assert document["visitor"]["fullName"] == "Paul"


def test_lead_posts_the_transcript_so_far_and_shows_the_integration_url(
    site: Site, receiver: RecordingReceiver
) -> None:
    site.endpoint(receiver.url, auto_send=False)
    conversation = site.start()
    site.visitor_says(conversation, "I'd like a quote for 20 seats")
    site.operator_says(conversation, "Sure, let me pass this to sales")
    answer = site.operator_says(conversation, "!LEAD 20 seats, wants a call")
    assert answer["command"] == "lead"
    assert len(answer["deliveries"]) == 1

    (request,) = receiver.wait_for(1)
    assert request.content_type == FORM_CONTENT_TYPE
    document = request.document()
    assert document["id"] == conversation
    assert document["manuallySubmitted"] is True
    assert [item["body"] for item in document["items"]] == [
        "I'd like a quote for 20 seats",
        "Sure, let me pass this to sales",
    ]
    assert list(document["operators"]) == [OPERATOR["id"]]

    state = site.wait_until(conversation, all_delivered)
    (integration,) = state["integrations"]
    assert integration["trigger"] == "command"
    assert integration["command"] == "lead"
    assert integration["operator_id"] == OPERATOR["id"]
    (delivery,) = integration["deliveries"]
    assert delivery["integration_url"] == f"https://crm.example/leads/{conversation}"


def test_a_command_line_is_kept_as_typed_in_its_place_but_not_posted(
    site: Site, receiver: RecordingReceiver
) -> None:
    site.endpoint(receiver.url, auto_send=True)
    conversation = site.start()
    site.visitor_says(conversation, "Can you call me tomorrow?")
    answer = site.operator_says(conversation, "!lead call back tomorrow 9am")
    site.operator_says(conversation, "!case no endpoint cares twice")
    site.operator_says(conversation, "Sure, talk tomorrow.")

    assert answer["line"]["body"] == "!lead call back tomorrow 9am"
    assert answer["line"]["after_items"] == 1
    state = site.get(f"/conversations/{conversation}")
    assert [(c["command"], c["body"], c["after_items"]) for c in state["commands"]] == [
        ("lead", "!lead call back tomorrow 9am", 1),
        ("case", "!case no endpoint cares twice", 1),
    ]
    assert state["commands"][0]["operator_id"] == OPERATOR["id"]
    assert state["commands"][0]["at"] == answer["line"]["at"]
    assert state["messages"] == 2
    site.close(conversation)
    requests = receiver.wait_for(2)
    for request in requests:
        bodies = [item["body"] for item in request.document()["items"]]
        assert not any(body.startswith("!") for body in bodies), bodies
    assert [item["body"] for item in requests[-1].document()["items"]] == [
        "Can you call me tomorrow?",
        "Sure, talk tomorrow.",
    ]


def test_a_visitor_typing_lead_is_just_a_message(site: Site, receiver: RecordingReceiver) -> None:
    site.endpoint(receiver.url, auto_send=False)
    conversation = site.start()
    answer = site.visitor_says(conversation, "!lead")
    assert answer["command"] is None
    assert answer["item"]["kind"] == "MessageToOperator"
    assert answer["item"]["body"] == "!lead"
    assert site.get(f"/conversations/{conversation}")["transcript"]["items"][0]["body"] == "!lead"
    assert site.close(conversation)["deliveries"] == []
    assert receiver.requests == []


def test_the_event_stream_reports_each_delivery_with_its_integration_url(
    site: Site, receiver: RecordingReceiver
) -> None:
    site.endpoint(receiver.url, auto_send=False)
    conversation = site.start()
    site.visitor_says(conversation, "hello")
    url = site.service.url + site.path(f"/conversations/{conversation}/events")
    with (
        httpx.Client(timeout=httpx.Timeout(20.0)) as listener,
        listener.stream("GET", url, headers=site.auth) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        site.operator_says(conversation, "!webhook")
        event = read_event(lines)
    assert event["event"] == "delivery"
    data = json.loads(event["data"])
    assert data["status"] == "succeeded"
    assert data["final"] is True
    assert data["command"] == "webhook"
    assert data["integration_url"] == f"https://crm.example/leads/{conversation}"


def test_the_event_stream_reports_failures_too(site: Site, receiver: RecordingReceiver) -> None:
    site.endpoint(receiver.url, auto_send=False)
    # Down until the stream has shown the failure: a stream shows the state each delivery
    # is in when it looks, so a retry that succeeded before it opened would be all it saw.
    receiver.answer_all(503, {"error": "down for maintenance"})
    conversation = site.start()
    site.operator_says(conversation, "!case")
    url = site.service.url + site.path(f"/conversations/{conversation}/events")
    with (
        httpx.Client(timeout=httpx.Timeout(20.0)) as listener,
        listener.stream("GET", url, headers=site.auth) as stream,
    ):
        lines = stream.iter_lines()
        first = json.loads(read_event(lines)["data"])
        receiver.answer_normally()
        later = json.loads(read_event(lines)["data"])
        while later["status"] == "retrying":  # attempts that failed before the receiver was back
            assert (later["status_code"], later["final"]) == (503, False)
            later = json.loads(read_event(lines)["data"])
    assert (first["status"], first["status_code"], first["final"]) == ("retrying", 503, False)
    assert later["status"] == "succeeded"
    assert later["integration_url"] == f"https://crm.example/leads/{conversation}"


def test_the_event_stream_of_an_unknown_conversation_is_404(site: Site) -> None:
    response = site.client.get(site.path("/conversations/nope/events"), headers=site.auth)
    assert response.status_code == 404
    assert response.json()["field"] == "conversation"


def read_event(lines: Iterator[str]) -> dict[str, str]:
    """The next event of an SSE stream (comments skipped)."""
    event: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if event:
                return event
            continue
        name, _, value = line.partition(":")
        event[name] = value.removeprefix(" ")
    raise AssertionError(f"the stream ended inside an event: {event}")


def test_the_chat_is_posted_again_with_the_same_id_only_if_it_went_on(
    site: Site, receiver: RecordingReceiver
) -> None:
    site.endpoint(receiver.url, auto_send=False)
    went_on = site.start()
    site.visitor_says(went_on, "hello")
    site.operator_says(went_on, "!lead")
    site.visitor_says(went_on, "one more thing: I need it by Friday")
    assert len(site.close(went_on)["deliveries"]) == 1

    stopped = site.start()
    site.visitor_says(stopped, "hello")
    site.operator_says(stopped, "!lead")
    assert site.close(stopped)["deliveries"] == []

    requests = receiver.wait_for(3)
    site.wait_until(went_on, all_delivered)
    site.wait_until(stopped, all_delivered)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for request in receiver.requests:
        document = request.document()
        by_id.setdefault(document["id"], []).append(document)
    assert len(requests) == len(receiver.requests) == 3
    first, second = by_id[went_on]
    assert first["manuallySubmitted"] is True
    assert [i["body"] for i in first["items"]] == ["hello"]
    assert second["manuallySubmitted"] is False
    assert [i["body"] for i in second["items"]] == ["hello", "one more thing: I need it by Friday"]
    assert len(by_id[stopped]) == 1
    assert site.get(f"/conversations/{went_on}")["integrations"][1]["trigger"] == "completion"


def test_closing_sends_the_transcript_to_auto_send_endpoints(
    site: Site, receiver: RecordingReceiver
) -> None:
    site.endpoint(receiver.url)
    conversation = site.start(tags=["vip"])
    site.visitor_says(conversation, "hello")
    site.operator_says(conversation, "hi there!")
    patched = site.client.patch(
        site.path(f"/conversations/{conversation}"),
        json={
            "tags": ["vip", "sales"],
            "customFields": {"plan": "pro"},
            "chat_feedback": {"overall_chat": 5, "comments": "quick and helpful"},
            "visitor": {"phoneNumber": "555.555.0100"},
        },
        headers=site.auth,
    )
    assert patched.status_code == 200, patched.text
    assert site.close(conversation)["deliveries"][0]["trigger"] == "completion"
    (request,) = receiver.wait_for(1)
    document = request.document()
    assert document["manuallySubmitted"] is False
    assert document["tags"] == ["vip", "sales"]
    assert [item["kind"] for item in document["items"]] == ["MessageToOperator", "MessageToVisitor"]
    assert document["visitor"]["customFields"] == {"plan": "pro"}
    assert document["visitor"]["phoneNumber"] == "555.555.0100"
    assert document["visitor"]["chat_feedback"] == {
        "overall_chat": 5,
        "comments": "quick and helpful",
    }
    state = site.get(f"/conversations/{conversation}")
    assert state["state"] == "closed"
    assert state["close_reason"] == "api"
    assert state["transcript"] == document


def test_an_idle_conversation_completes_by_itself(
    database_url: str, receiver: RecordingReceiver
) -> None:
    with running_service(database_url, idle_timeout=0.5) as service:
        site_id, auth = service.create_site()
        site = Site(service, site_id, auth)
        site.endpoint(receiver.url)
        conversation = site.start()
        site.visitor_says(conversation, "anyone there?")
        (request,) = receiver.wait_for(1)
        document = request.document()
        assert document["id"] == conversation
        assert document["manuallySubmitted"] is False
        state = site.get(f"/conversations/{conversation}")
        assert (state["state"], state["close_reason"]) == ("closed", "idle")
        late = site.client.post(
            site.path(f"/conversations/{conversation}/messages"),
            json={"from": "visitor", "body": "hello?"},
            headers=site.auth,
        )
        assert late.status_code == 409
        assert late.json()["error"] == "conversation_closed"


def test_an_offline_message_is_posted_at_once_without_operators(
    site: Site, receiver: RecordingReceiver
) -> None:
    site.endpoint(receiver.url, auto_send=False)
    accepted = site.post(
        "/offline-messages",
        {
            "visitor": VISITOR,
            "body": "name: Paul\nemail: visitor1@example.com\nMessage: please call me",
            "groups": [{"id": "g1", "name": "English"}],
        },
        expect=202,
    )
    (request,) = receiver.wait_for(1)
    document = request.document()
    assert document["id"] == accepted["id"]
    assert "operators" not in document
    assert [item["kind"] for item in document["items"]] == ["OfflineMessage"]
    assert document["groups"] == [{"kind": "Group", "id": "g1", "name": "English"}]


def test_every_payload_passes_what_strict_consumers_enforce(
    site: Site, receiver: RecordingReceiver
) -> None:
    site.endpoint(receiver.url, send_events=True)
    conversation = site.start(tags=["vip"], groups=[{"kind": "Group", "id": "g", "name": "Sales"}])
    site.visitor_says(conversation, "hello")
    site.operator_says(conversation, "hi!")
    site.operator_says(conversation, "!lead")
    site.post(
        f"/conversations/{conversation}/messages",
        {"from": "visitor", "body": "thanks", "timestamp": "1473774821.411154"},
        expect=201,
    )
    site.close(conversation)
    ipv6 = site.start(visitor={**VISITOR, "ip": "2001:db8::7"})
    site.close(ipv6)
    site.post("/offline-messages", {"visitor": VISITOR, "body": "call me"}, expect=202)
    requests = receiver.wait_for(6)
    kinds = []
    for request in requests:
        document = request.document()
        assert consumer_problems(document, request.content_type) == [], document
        kinds.append("event" if "eventType" in document else str(document.get("manuallySubmitted")))
    # Two start events, the !lead, two completions and the offline message.
    assert sorted(kinds) == ["False", "False", "False", "True", "event", "event"]
    ipv6_posts = [r.document() for r in requests if r.document()["id"] == ipv6]
    assert ipv6_posts and all("ip" not in d["visitor"] for d in ipv6_posts)


def test_bad_input_is_refused_naming_the_field(site: Site) -> None:
    bad_ip = site.client.post(
        site.path("/conversations"), json={"visitor": {"ip": "not-an-ip"}}, headers=site.auth
    )
    assert bad_ip.status_code == 422
    assert bad_ip.json()["field"] == "visitor.ip"

    conversation = site.start()
    for body, field in [
        ({"from": "visitor", "body": "x", "timestamp": 1473774821.4}, "timestamp"),
        ({"from": "visitor", "body": "x", "timestamp": "2024-01-01T10:00:00Z"}, "timestamp"),
        ({"from": "operator", "body": "x"}, "operator"),
        ({"from": "bot", "body": "x"}, "from"),
        ({"from": "visitor", "body": ""}, "body"),
    ]:
        response = site.client.post(
            site.path(f"/conversations/{conversation}/messages"), json=body, headers=site.auth
        )
        assert response.status_code == 422, body
        assert response.json()["field"] == field, response.json()

    duplicate = site.client.post(
        site.path("/conversations"),
        json={"id": conversation, "visitor": VISITOR},
        headers=site.auth,
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "conversation_exists"

    missing = site.client.post(
        site.path("/conversations/nope/messages"),
        json={"from": "visitor", "body": "x"},
        headers=site.auth,
    )
    assert missing.status_code == 404

    site.close(conversation)
    again = site.client.post(site.path(f"/conversations/{conversation}/close"), headers=site.auth)
    assert again.status_code == 409


def test_a_chosen_id_is_kept_and_generated_ids_look_like_olarks(site: Site) -> None:
    assert site.start(id="chat-2024-0001") == "chat-2024-0001"
    generated = site.start()
    assert len(generated) == 32 and generated.isalnum()


def test_conversations_are_listed_newest_first_by_state(site: Site) -> None:
    ids = [site.start() for _ in range(5)]
    site.close(ids[1])
    site.close(ids[3])
    open_page = site.get("/conversations?state=open&limit=2")
    assert [c["id"] for c in open_page["items"]] == [ids[4], ids[2]]
    rest = site.get(f"/conversations?state=open&limit=2&cursor={open_page['next_cursor']}")
    assert [c["id"] for c in rest["items"]] == [ids[0]]
    assert rest["next_cursor"] is None
    closed = site.get("/conversations?state=closed")
    assert [c["id"] for c in closed["items"]] == [ids[3], ids[1]]
    bad = site.client.get(site.path("/conversations?cursor=zzz"), headers=site.auth)
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"


def test_another_sites_key_cannot_see_a_conversation(site: Site) -> None:
    conversation = site.start()
    _, other = site.service.create_site("other.example")
    response = site.client.get(site.path(f"/conversations/{conversation}"), headers=other)
    assert response.status_code == 404


def test_the_in_process_worker_sends_a_command_and_a_completion_at_once(
    database_url: str, receiver: RecordingReceiver
) -> None:
    """Its worker polls only every 30 s here: the posts come sooner only if the API wakes it."""
    with running_service(database_url, poll_interval=30.0) as service:
        site_id, auth = service.create_site()
        site = Site(service, site_id, auth)
        site.endpoint(receiver.url)
        time.sleep(0.5)  # the worker's first look found nothing; now it waits
        conversation = site.start()
        site.visitor_says(conversation, "Hello")
        started = time.monotonic()
        site.operator_says(conversation, "!lead")
        receiver.wait_for(1, timeout=5)
        site.visitor_says(conversation, "Thanks")
        site.close(conversation)
        receiver.wait_for(2, timeout=5)
        assert time.monotonic() - started < 10
    assert [r.document()["id"] for r in receiver.requests] == [conversation, conversation]


def test_a_line_is_answered_alike_whichever_content_type_sends_it(site: Site) -> None:
    """``application/json`` lines take the route's short path; other JSON types go
    through FastAPI's own handler. The answers, and the checks, are the same."""
    conversation = site.start()
    path = site.path(f"/conversations/{conversation}/messages")
    answers = []
    for content_type in ("application/json; charset=utf-8", "application/vnd.chat+json"):
        for body in (
            {"from": "visitor", "body": "Grüße", "timestamp": "1473774821.4"},
            {"from": "operator", "body": "Hi", "timestamp": "1473774822.4", "operator": OPERATOR},
            {
                "from": "operator",
                "body": "!lead",
                "timestamp": "1473774823.4",
                "operator": OPERATOR,
            },
        ):
            headers = {**site.auth, "content-type": content_type}
            response = site.client.post(path, content=json.dumps(body), headers=headers)
            assert response.status_code == 201, response.text
            assert response.headers["content-type"] == "application/json"
            answers.append(response.json())
    lean, full = answers[:3], answers[3:]
    for short, usual in zip(lean, full, strict=True):
        assert short.keys() == usual.keys()
        assert short["item"] == usual["item"]
        assert short["command"] == usual["command"]
        if short["line"] is not None:
            assert {k: v for k, v in short["line"].items() if k not in ("at", "after_items")} == {
                k: v for k, v in usual["line"].items() if k not in ("at", "after_items")
            }
    assert [a["version"] for a in answers] == [2, 3, 3, 4, 5, 5]

    _, other = site.service.create_site("other.example")
    line = {"from": "visitor", "body": "x"}
    assert site.client.post(path, json=line, headers=other).status_code == 404
    assert site.client.post(path, json=line, headers=site.service.admin()).status_code == 201
    assert site.client.post(path, json=line, headers={}).status_code == 401
    untyped = site.client.post(path, content=json.dumps(line), headers=site.auth)
    assert untyped.status_code == 422
    missing = site.client.post(
        site.path("/conversations/nope/messages"), json=line, headers=site.auth
    )
    assert missing.status_code == 404
    assert missing.json()["field"] == "conversation"


def test_a_chat_starts_and_closes_alike_whichever_content_type_sends_it(
    site: Site, receiver: RecordingReceiver
) -> None:
    """``application/json`` starts take the route's short path, other JSON types
    FastAPI's own handler; a close (no body) is always answered on the short path.
    The answers, and the checks, are the same."""
    site.endpoint(receiver.url, send_events=True)
    answers = []
    for number, content_type in enumerate(("application/json", "application/vnd.chat+json")):
        body = {"id": f"chat-{number}", "visitor": VISITOR, "tags": ["pricing"]}
        headers = {**site.auth, "content-type": content_type}
        response = site.client.post(
            site.path("/conversations"), content=json.dumps(body), headers=headers
        )
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/json"
        answers.append(response.json())
    lean, full = answers
    assert lean.keys() == full.keys()
    timestamps = ("created_at", "updated_at", "last_activity_at")
    for answer, number in ((lean, 0), (full, 1)):
        assert answer["id"] == f"chat-{number}"
        assert [d["trigger"] for d in answer["deliveries"]] == ["start"]
    same = {k: v for k, v in lean.items() if k not in ("id", "deliveries", *timestamps)}
    assert same == {k: v for k, v in full.items() if k not in ("id", "deliveries", *timestamps)}

    for refused, code, field in (
        ({"visitor": {"ip": "not-an-ip"}}, 422, "visitor.ip"),
        ({"id": "chat-0", "visitor": VISITOR}, 409, None),
    ):
        response = site.client.post(site.path("/conversations"), json=refused, headers=site.auth)
        assert response.status_code == code, response.text
        if field is not None:
            assert response.json()["field"] == field

    path = site.path("/conversations/chat-0/close")
    assert site.client.post(path).status_code == 401
    _, other = site.service.create_site("other.example")
    assert site.client.post(path, headers=other).status_code == 404
    closed = site.client.post(path, json={}, headers=site.auth)
    assert closed.status_code == 200, closed.text
    assert closed.headers["content-type"] == "application/json"
    answer = closed.json()
    assert (answer["id"], answer["state"]) == ("chat-0", "closed")
    assert [d["trigger"] for d in answer["deliveries"]] == ["completion"]
    assert set(answer["deliveries"][0]) == {
        "id",
        "endpoint_id",
        "trigger",
        "status",
        "reused",
        "integration_url",
    }
    again = site.client.post(path, headers=site.auth)
    assert again.status_code == 409
    missing = site.client.post(site.path("/conversations/nope/close"), headers=site.auth)
    assert missing.status_code == 404
    assert missing.json()["field"] == "conversation"

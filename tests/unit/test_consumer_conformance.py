"""Every payload chathooks produces, read the way Olark's strictest consumers read it.

Snowplow's Olark adapter takes the form body (Content-Type compared exactly),
decodes ``data``, tells an offline message by its missing ``operators`` and
validates against the ``com.olark`` schemas, whose rules that real Olark also
satisfies are :func:`consumer_problems`. RudderStack's Olark source maps the
JSON of the request body into track and group events; its mapping is encoded
below and checked against RudderStack's own test cases before it is used on
ours. The payloads are built by the same functions the service posts with.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from chathooks.conversations import rules
from chathooks.conversations.constraints import consumer_problems
from chathooks.conversations.inputs import NewConversation, NewMessage, NewOfflineMessage
from chathooks.sender.requests import build_request
from chathooks.wire import FORM_CONTENT_TYPE, dumps, send_test_transcript
from support.fixtures import OLARK_FIXTURES

LONG_NAME = "Maximiliana Alexandra Konstantinopoulou-Worthington"
LONG_EMAIL = "maximiliana.konstantinopoulou-worthington@example-enterprise.com"
VISITOR = {
    "kind": "Visitor",
    "id": "Wwcqs2f4AQPIYR2p8D5z70UaB2bFb5rT",
    "fullName": LONG_NAME,
    "emailAddress": LONG_EMAIL,
    "city": "Buffalo Grove",
    "region": "IL",
    "country": "United States",
    "ip": "2001:db8::7",
    "browser": "Chrome 74.0.3729.131",
    "operatingSystem": "Windows",
    "conversationBeginPage": "https://www.example-clinic.org/",
}
GROUPS = [{"kind": "Group", "id": "ca77f4296fb7568909ad864aebf48201", "name": "Sales"}]
OPERATOR = {"kind": "Operator", "id": "1029431", "username": "paul", "emailAddress": "o@x.org"}
NOW = 1473774819.263083


def produced_payloads() -> dict[str, dict[str, Any]]:
    """One of each payload the conversation engine and Send test post."""
    begun = rules.begin(
        "conv1", NewConversation.model_validate({"visitor": VISITOR, "groups": GROUPS})
    )
    chat = rules.add_message(
        begun, NewMessage.model_validate({"from": "visitor", "body": "hi"}), now=NOW
    )
    chat = rules.add_message(
        chat,
        NewMessage.model_validate({"from": "operator", "body": "hello", "operator": OPERATOR}),
        now=NOW + 1,
    )
    offline = rules.offline_message(
        NewOfflineMessage.model_validate(
            {"visitor": {**VISITOR, "ip": ""}, "body": "name: Max\nMessage: call me"}
        ),
        now=NOW,
    )
    return {
        "start event": rules.start_event(begun).to_wire(),
        "command": rules.transcript_payload(chat, manually_submitted=True).to_wire(),
        "completion": rules.transcript_payload(chat, manually_submitted=False).to_wire(),
        "offline message": offline.to_wire(),
        "send test": send_test_transcript().to_wire(),
    }


PAYLOADS = produced_payloads()


def snowplow_reads(body: bytes, content_type: str) -> dict[str, Any]:
    """What Snowplow's Olark adapter does with a request before schema validation."""
    assert content_type == FORM_CONTENT_TYPE, "Snowplow compares the content type exactly"
    fields = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert list(fields) == ["data"], "Snowplow reads the one form field 'data'"
    document: dict[str, Any] = json.loads(fields["data"][0])
    return document


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_snowplow_accepts_every_payload_kind(kind: str) -> None:
    document = PAYLOADS[kind]
    request = build_request(
        delivery_id="msg_2Q0Zb3o2B9ZzY8wQh1xTt0mUuHk",
        url="http://x/",
        document_json=dumps(document),
    )

    read = snowplow_reads(request.body, request.content_type)

    assert read == document
    assert consumer_problems(read, request.content_type) == []
    # Snowplow validates an offline message against com.olark/offline_message.
    assert ("operators" not in read) == (kind == "offline message")


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_no_payload_carries_a_non_ipv4_ip_or_a_long_nickname(kind: str) -> None:
    document = PAYLOADS[kind]
    ip = document.get("visitor", {}).get("ip")
    assert ip is None or ip.count(".") == 3, ip
    for item in document["items"]:
        for key in ("nickname", "visitor_nickname"):
            assert len(item.get(key, "")) <= 64, item


def test_real_olark_payloads_pass_the_same_rules() -> None:
    """The encoded rules are ones Olark's own payloads satisfy (else they would be wrong)."""
    real = [
        "olark-docs-current-transcript-RECONSTRUCTED.json",
        "olark-official-webhook-examples-php-test-transcript.json",
        "snowplow-spark-olark-test-transcript-raw.json",
        "snowplow-enrich-common-e1-transcript-HEAD.json",
        "snowplow-enrich-common-e2-offline-message.json",
        "php-consumer-real-offline-message-1.json",
        "php-consumer-real-start-event-1.json",
        "php-consumer-real-transcript-1.json",
        "getchat-2013-transcript-debuglog.json",
    ]
    for name in real:
        document = json.loads((OLARK_FIXTURES / name).read_text())
        assert consumer_problems(document) == [], name


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"visitor": {"ip": ""}}, "visitor.ip"),
        ({"visitor": {"ip": "2001:db8::1"}}, "visitor.ip"),
        (
            {"items": [{"kind": "MessageToOperator", "timestamp": "1.5", "nickname": "x" * 65}]},
            "nickname",
        ),
        ({"groups": [{"kind": "Group", "id": "g", "extra": 1}]}, "groups.0"),
        ({"visitor": {"region": "California"}}, "visitor.region"),
    ],
)
def test_the_rules_catch_what_snowplow_rejects(change: dict[str, Any], problem: str) -> None:
    document = {**PAYLOADS["completion"], **change}
    problems = consumer_problems(document)
    assert any(problem in p for p in problems), problems


# -- RudderStack ------------------------------------------------------------------------


def rudderstack_events(request_body: Any) -> list[dict[str, Any]]:
    """RudderStack's Olark source: the request's JSON to a track event (and group events)."""
    if not isinstance(request_body, dict) or not isinstance(request_body.get("visitor"), dict):
        return []
    visitor = request_body["visitor"]
    context_traits = {
        name: visitor[key]
        for key, name in (
            ("city", "city"),
            ("fullName", "name"),
            ("emailAddress", "email"),
            ("phoneNumber", "phone"),
            ("region", "region"),
            ("country", "country"),
        )
        if key in visitor
    }
    context: dict[str, Any] = {}
    if "operatingSystem" in visitor:
        context["os"] = {"name": visitor["operatingSystem"]}
    page = {
        name: visitor[key]
        for key, name in (("conversationBeginPage", "url"), ("referrer", "referrer"))
        if key in visitor
    }
    if page:
        context["page"] = page
    context["traits"] = context_traits
    if "browser" in visitor:
        name, _, version = visitor["browser"].rpartition(" ")
        context["browser"] = {"name": name, "version": version}
    library = {"name": "unknown", "version": "unknown"}
    context.update(library=library, integration={"name": "Olark"})
    traits = {key: visitor[key] for key in ("organization", "chat_feedback") if key in visitor}
    properties = {key: request_body[key] for key in ("tags", "items") if key in request_body}
    events = [
        {
            "type": "track",
            "event": request_body["kind"],
            "traits": traits,
            "userId": visitor["id"],
            "context": context,
            "properties": properties,
            "integrations": {"Olark": False},
        }
    ]
    for group in request_body.get("groups") or []:
        events.append(
            {
                "name": group["name"],
                "type": "group",
                "traits": {"kind": group["kind"]},
                "userId": visitor["id"],
                "context": {"library": library, "integration": {"name": "Olark"}},
                "groupId": group["id"],
                "integrations": {"Olark": False},
            }
        )
    return events


def _gateway(body: bytes, content_type: str) -> Any:
    """RudderStack's webhook gateway: JSON bodies as they are, form bodies as lists."""
    if content_type.startswith("application/json"):
        return json.loads(body)
    return {key: values for key, values in parse_qs(body.decode("ascii")).items()}


@pytest.mark.parametrize("case", [1, 2, 3])
def test_the_encoded_rudderstack_mapping_matches_rudderstacks_own_cases(case: int) -> None:
    given = json.loads((OLARK_FIXTURES / f"rudderstack-fixture-{case}-input.json").read_text())
    expected = json.loads(
        (OLARK_FIXTURES / f"rudderstack-fixture-{case}-expected-output.json").read_text()
    )
    body = given["request"]["body"]
    assert rudderstack_events(json.loads(body) if isinstance(body, str) else body) == expected


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_rudderstack_maps_every_payload_kind_sent_as_json(kind: str) -> None:
    document = PAYLOADS[kind]
    request = build_request(
        delivery_id="msg_2Q0Zb3o2B9ZzY8wQh1xTt0mUuHk",
        url="http://x/",
        document_json=dumps(document),
        fmt="json",
    )

    events = rudderstack_events(_gateway(request.body, request.content_type))

    track = events[0]
    assert track["event"] == "Conversation"
    assert track["userId"] == document["visitor"]["id"]
    assert track["properties"]["items"] == document["items"]
    assert track["context"]["traits"]["name"] == document["visitor"]["fullName"]
    groups = [e["groupId"] for e in events if e["type"] == "group"]
    assert groups == [g["id"] for g in document.get("groups", [])]


def test_rudderstack_maps_nothing_from_the_form_body() -> None:
    """Why the README says RudderStack needs ``format: json``: the gateway sees ``data: [...]``."""
    request = build_request(
        delivery_id="msg_2Q0Zb3o2B9ZzY8wQh1xTt0mUuHk",
        url="http://x/",
        document_json=dumps(PAYLOADS["completion"]),
    )
    assert rudderstack_events(_gateway(request.body, request.content_type)) == []

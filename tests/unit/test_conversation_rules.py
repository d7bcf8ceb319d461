"""Olark's chat rules, one at a time, on the pure functions (no database, no HTTP)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from chathooks.conversations import rules
from chathooks.conversations.constraints import consumer_problems
from chathooks.conversations.inputs import (
    ConversationChanges,
    NewConversation,
    NewMessage,
    NewOfflineMessage,
)
from chathooks.conversations.rules import PriorPost
from chathooks.wire import (
    MessageToOperator,
    OfflineMessageTranscript,
    StartEvent,
    Transcript,
    payload_from_dict,
)

VISITOR = {
    "id": "Wwcqs2f4AQPIYR2p8D5z70UaB2bFb5rT",
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
    "customFields": {"plan": "pro"},
}
OPERATOR = {
    "id": "1029431",
    "username": "paul-clinic",
    "nickname": "Paul",
    "emailAddress": "operator@example.com",
}


@dataclass(frozen=True)
class FakeEndpoint:
    id: str
    enabled: bool = True
    auto_send: bool = True
    send_offline: bool = True
    send_events: bool = False


def started(**extra: object) -> Transcript:
    return rules.begin("conv1", NewConversation.model_validate({"visitor": VISITOR, **extra}))


def operator_says(body: str, **extra: object) -> NewMessage:
    return NewMessage.model_validate(
        {"from": "operator", "body": body, "operator": OPERATOR, **extra}
    )


def visitor_says(body: str, **extra: object) -> NewMessage:
    return NewMessage.model_validate({"from": "visitor", "body": body, **extra})


@pytest.mark.parametrize(
    ("body", "command"),
    [
        ("!lead", "lead"),
        ("!LEAD", "lead"),
        ("!Case please follow up", "case"),
        ("  !webhook", "webhook"),
        ("!trigger\nnow", "trigger"),
        ("!leads", None),
        ("lead!", None),
        ("please !lead", None),
        ("!unknown", None),
    ],
)
def test_commands_are_recognised_in_any_case_with_optional_text(
    body: str, command: str | None
) -> None:
    assert rules.parse_command(body) == command


def test_a_new_conversation_has_the_visitor_and_no_messages() -> None:
    transcript = started(tags=["vip"], groups=[{"id": "g1", "name": "Spanish"}])
    document = transcript.to_wire()
    assert document["id"] == "conv1"
    assert document["items"] == []
    assert document["operators"] == {}
    assert document["tags"] == ["vip"]
    assert document["groups"] == [{"kind": "Group", "id": "g1", "name": "Spanish"}]
    assert document["visitor"]["fullName"] == "Paul"
    assert document["visitor"]["customFields"] == {"plan": "pro"}
    assert document["visitor"]["chat_feedback"] == {}


def test_groups_are_only_written_when_used() -> None:
    assert "groups" not in started().to_wire()


def test_a_visitor_without_id_gets_an_olark_style_one() -> None:
    transcript = rules.begin("c", NewConversation.model_validate({"visitor": {"fullName": "A"}}))
    assert transcript.visitor is not None
    assert re.fullmatch(r"[A-Za-z0-9]{32}", transcript.visitor.id or "")


def test_the_start_event_is_the_envelope_without_items_or_operators() -> None:
    transcript = rules.add_message(started(), operator_says("hello"), now=1_700_000_000.0)
    event = rules.start_event(transcript).to_wire()
    assert event["eventType"] == "start"
    assert event["items"] == []
    assert event["operators"] == {}
    assert event["id"] == "conv1"
    assert event["manuallySubmitted"] is False
    assert isinstance(payload_from_dict(event), StartEvent)
    assert consumer_problems(event) == []


def test_an_operator_message_joins_the_operator() -> None:
    transcript = rules.add_message(started(), operator_says("hi there!"), now=1558107754.825684)
    document = transcript.to_wire()
    assert document["items"] == [
        {
            "kind": "MessageToVisitor",
            "body": "hi there!",
            "timestamp": "1558107754.825684",
            "nickname": "Paul",
            "operatorId": "1029431",
        }
    ]
    assert document["operators"] == {"1029431": {"kind": "Operator", **OPERATOR}}


def test_a_visitor_message_is_labelled_as_olark_labels_visitors() -> None:
    transcript = rules.add_message(started(), visitor_says("help"), now=1.5)
    (item,) = transcript.to_wire()["items"]
    assert item["kind"] == "MessageToOperator"
    assert item["nickname"] == "Paul (visitor1@example.com)"
    assert item["visitor_nickname"] == "Paul"
    assert item["timestamp"] == "1.500000"


def test_an_anonymous_visitor_gets_a_location_label() -> None:
    transcript = rules.begin(
        "c",
        NewConversation.model_validate(
            {"visitor": {"id": "v1", "city": "Paris", "country": "France"}}
        ),
    )
    item = rules.add_message(transcript, visitor_says("bonjour"), now=1.0).items[0]
    assert isinstance(item, MessageToOperator)
    label = item.nickname or ""
    assert re.fullmatch(r"Visitor \| France \(Paris\) #\d+", label)


def test_a_given_timestamp_is_kept_exactly() -> None:
    message = visitor_says("x", timestamp="1473774819.263080")
    transcript = rules.add_message(started(), message, now=2.0)
    assert transcript.to_wire()["items"][0]["timestamp"] == "1473774819.263080"


@pytest.mark.parametrize("timestamp", [1473774819.26, "2024-01-01T00:00:00Z", "-1", "12,5"])
def test_a_timestamp_of_another_shape_is_refused_naming_the_field(timestamp: object) -> None:
    with pytest.raises(ValidationError) as caught:
        visitor_says("x", timestamp=timestamp)
    assert caught.value.errors()[0]["loc"] == ("timestamp",)


def test_an_operator_message_needs_the_operator() -> None:
    with pytest.raises(ValidationError) as caught:
        NewMessage.model_validate({"from": "operator", "body": "hi"})
    assert caught.value.errors()[0]["loc"] == ("operator",)


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("", None),
        ("2001:db8::1", None),
        ("::ffff:203.0.113.7", "203.0.113.7"),
    ],
)
def test_the_visitor_ip_is_written_as_ipv4_or_left_out(given: str, written: str | None) -> None:
    request = NewConversation.model_validate({"visitor": {**VISITOR, "ip": given}})
    assert rules.begin("c", request).to_wire()["visitor"].get("ip") == written


def test_an_ipv6_address_in_a_change_removes_the_old_ip() -> None:
    changes = ConversationChanges.model_validate({"visitor": {"ip": "2001:db8::1"}})
    assert "ip" not in rules.apply_changes(started(), changes).to_wire()["visitor"]


def test_generated_nicknames_fit_snowplows_64_characters() -> None:
    long_visitor = {
        **VISITOR,
        "fullName": "Maximiliana Alexandra Konstantinopoulou-Worthington",
        "emailAddress": "maximiliana.konstantinopoulou-worthington@example-enterprise.com",
    }
    begun = rules.begin("c", NewConversation.model_validate({"visitor": long_visitor}))
    line = rules.add_message(begun, visitor_says("hi"), now=1.0).items[-1]
    assert isinstance(line, MessageToOperator)
    assert line.nickname == long_visitor["fullName"]
    anonymous = {"id": "v", "country": "X" * 100, "city": "Y" * 100}
    label = rules.visitor_label(
        rules.begin("c", NewConversation.model_validate({"visitor": anonymous})).visitor
        or pytest.fail("no visitor")
    )
    assert len(label) <= 64
    assert label.startswith("Visitor | XXX") and label.endswith(f"#{label.rsplit('#')[1]}")
    named = rules.add_message(
        rules.begin("c", NewConversation.model_validate({"visitor": {"fullName": "N" * 300}})),
        visitor_says("hi"),
        now=1.0,
    ).items[-1]
    assert isinstance(named, MessageToOperator)
    assert len(named.nickname or "") == 64 == len(named.visitor_nickname or "")


def test_every_input_object_accepts_the_kind_the_wire_gives_it() -> None:
    request = NewConversation.model_validate(
        {"visitor": {**VISITOR, "kind": "Visitor"}, "groups": [{"kind": "Group", "id": "g"}]}
    )
    assert rules.begin("c", request).to_wire()["groups"] == [{"kind": "Group", "id": "g"}]
    message = operator_says("hi", operator={**OPERATOR, "kind": "Operator"})
    assert message.operator is not None
    changes = ConversationChanges.model_validate({"visitor": {"kind": "Visitor", "city": "Oslo"}})
    assert rules.apply_changes(started(), changes).to_wire()["visitor"]["city"] == "Oslo"
    with pytest.raises(ValidationError):
        NewConversation.model_validate(
            {"visitor": VISITOR, "groups": [{"kind": "Team", "id": "g"}]}
        )


def test_a_junk_visitor_ip_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        NewConversation.model_validate({"visitor": {**VISITOR, "ip": "not-an-ip"}})
    assert caught.value.errors()[0]["loc"] == ("visitor", "ip")


def test_unknown_visitor_keys_are_refused_rather_than_posted() -> None:
    with pytest.raises(ValidationError) as caught:
        NewConversation.model_validate({"visitor": {"fullname": "typo"}})
    assert caught.value.errors()[0]["loc"] == ("visitor", "fullname")


def test_changes_update_tags_visitor_custom_fields_feedback_and_groups() -> None:
    changes = ConversationChanges.model_validate(
        {
            "tags": ["sales", "sales", "urgent"],
            "visitor": {"phoneNumber": "555.555.0100", "city": None},
            "customFields": {"plan": None, "seats": 12},
            "chat_feedback": {"overall_chat": 5, "comments": "great"},
            "groups": [{"id": "g2", "name": "English"}],
        }
    )
    document = rules.apply_changes(started(), changes).to_wire()
    assert document["tags"] == ["sales", "urgent"]
    assert document["visitor"]["phoneNumber"] == "555.555.0100"
    assert "city" not in document["visitor"]
    assert document["visitor"]["customFields"] == {"seats": 12}
    assert document["visitor"]["chat_feedback"] == {"overall_chat": 5, "comments": "great"}
    assert document["groups"] == [{"kind": "Group", "id": "g2", "name": "English"}]


def test_a_change_that_changes_nothing_keeps_the_transcript() -> None:
    transcript = started(tags=["a"])
    assert (
        rules.apply_changes(transcript, ConversationChanges.model_validate({"tags": ["a"]}))
        is transcript
    )


def test_feedback_scores_outside_one_to_five_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ConversationChanges.model_validate({"chat_feedback": {"knowledge": 6}})
    assert caught.value.errors()[0]["loc"] == ("chat_feedback", "knowledge")


def test_an_offline_message_has_its_own_id_one_item_and_no_operators() -> None:
    request = NewOfflineMessage.model_validate(
        {
            "visitor": VISITOR,
            "body": "name: Paul\nMessage: call me",
            "groups": [{"id": "g1", "name": "English"}],
        }
    )
    payload = rules.offline_message(request, now=1558118672.500824)
    document = payload.to_wire()
    assert "operators" not in document
    assert re.fullmatch(r"[A-Za-z0-9]{32}", document["id"])
    assert document["items"] == [
        {
            "kind": "OfflineMessage",
            "body": "name: Paul\nMessage: call me",
            "timestamp": "1558118672.500824",
        }
    ]
    assert document["tags"] == []
    assert document["manuallySubmitted"] is False
    assert isinstance(payload_from_dict(document), OfflineMessageTranscript)
    assert consumer_problems(document) == []


def test_a_command_posts_to_every_enabled_endpoint_whatever_its_auto_send() -> None:
    endpoints = [
        FakeEndpoint("auto"),
        FakeEndpoint("manual", auto_send=False),
        FakeEndpoint("off", enabled=False),
    ]
    to_post, already = rules.command_recipients(endpoints, [], started(), 1)
    assert [e.id for e in to_post] == ["auto", "manual"]
    assert already == []


def test_a_repeated_command_with_nothing_new_posts_nothing_new() -> None:
    endpoints = [FakeEndpoint("a"), FakeEndpoint("b")]
    prior = [PriorPost("a", "command", 3)]
    to_post, already = rules.command_recipients(endpoints, prior, started(), 3)
    assert [e.id for e in to_post] == ["b"]
    assert [e.id for e in already] == ["a"]


def test_completion_goes_to_auto_send_and_to_commanded_endpoints_when_the_chat_went_on() -> None:
    endpoints = [
        FakeEndpoint("auto"),
        FakeEndpoint("commanded-then-more", auto_send=False),
        FakeEndpoint("commanded-nothing-after", auto_send=False),
        FakeEndpoint("never", auto_send=False),
        FakeEndpoint("disabled", enabled=False),
    ]
    prior = [
        PriorPost("commanded-then-more", "command", 2),
        PriorPost("commanded-nothing-after", "command", 5),
        PriorPost("auto", "start", 1),
    ]
    chosen = rules.completion_recipients(endpoints, prior, started(), 5)
    assert [e.id for e in chosen] == ["auto", "commanded-then-more"]


def test_completion_skips_an_auto_send_endpoint_that_already_has_this_version() -> None:
    prior = [PriorPost("auto", "command", 4)]
    assert rules.completion_recipients([FakeEndpoint("auto")], prior, started(), 4) == []
    assert [
        e.id for e in rules.completion_recipients([FakeEndpoint("auto")], prior, started(), 5)
    ] == ["auto"]


def test_the_posted_transcript_marks_manual_submission() -> None:
    transcript = rules.add_message(started(), operator_says("hi"), now=1.0)
    manual = rules.transcript_payload(transcript, manually_submitted=True).to_wire()
    automatic = rules.transcript_payload(transcript, manually_submitted=False).to_wire()
    assert manual["manuallySubmitted"] is True
    assert automatic["manuallySubmitted"] is False
    assert consumer_problems(manual) == [] == consumer_problems(automatic)


def test_the_constraint_check_catches_what_strict_consumers_reject() -> None:
    bad = {
        "kind": "Conversation",
        "id": "x",
        "items": [{"kind": "MessageToOperator", "timestamp": 12.5}],
        "visitor": {"ip": "::1"},
        "delivery": "extra",
    }
    problems = consumer_problems(bad, "application/x-www-form-urlencoded; charset=utf-8")
    assert len(problems) == 4

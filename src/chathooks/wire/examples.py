"""The payloads behind Olark's **Send test** button: its transcript, and the same chat as an
offline message and as a start event, so a receiver can be tried with each kind it gets."""

from __future__ import annotations

from typing import Literal

from chathooks.wire.models import (
    ChatFeedback,
    MessageToOperator,
    MessageToVisitor,
    OfflineMessage,
    OfflineMessageTranscript,
    Operator,
    Payload,
    StartEvent,
    Transcript,
    Visitor,
)

#: What Send test can post: ``transcript`` is Olark's own test.
TestPayloadKind = Literal["transcript", "offline_message", "start_event"]
TEST_PAYLOAD_KINDS: tuple[TestPayloadKind, ...] = ("transcript", "offline_message", "start_event")

TEST_TRANSCRIPT_ID = "NOTAREALTRANSCRIPT5LGcbVTa3hKBRB"
TEST_VISITOR_ID = "NOTAREALVISITORIDS5LGl6QUrK2OaPP"

#: Who "sent" the test when no operator account is named.
DEFAULT_TEST_OPERATOR = Operator(
    id="647563",
    username="olark-operator",
    nickname="Olark operator",
    email_address="operator@example.com",
)


def send_test_transcript(operator: Operator | None = None) -> Transcript:
    """The fixed test transcript, as Olark's Send test posts it.

    Olark names the operator account that pressed the button; pass it as
    ``operator`` to do the same.
    """
    who = operator or DEFAULT_TEST_OPERATOR
    operator_id = who.id or DEFAULT_TEST_OPERATOR.id or "0"
    return Transcript(
        kind="Conversation",
        id=TEST_TRANSCRIPT_ID,
        tags=["test_example"],
        items=[
            MessageToVisitor(
                body="Hi from an operator",
                timestamp="1473774819.263083",
                nickname="Olark operator",
                operator_id=operator_id,
            ),
            MessageToOperator(
                body="Hi from a visitor",
                timestamp="1473774821.411154",
                nickname="Returning Visitor | USA (San Francisco, CA) #7617",
                visitor_nickname="Olark Visitor",
            ),
        ],
        operators={operator_id: who.model_copy(update={"id": operator_id})},
        visitor=Visitor(
            id=TEST_VISITOR_ID,
            full_name="Olark",
            email_address="support+integrationtest@olark.com",
            phone_number="5555555555",
            city="San Francisco",
            region="CA",
            country="United States",
            country_code="US",
            organization="Visitor Organization",
            ip="127.0.0.1",
            browser="Internet Explorer 11",
            operating_system="Windows",
            conversation_begin_page="http://www.olark.com",
            referrer="http://www.olark.com",
            chat_feedback=ChatFeedback(
                overall_chat=4,
                responsiveness=5,
                friendliness=5,
                knowledge=4,
            ),
        ),
        manually_submitted=False,
    )


def send_test_payload(kind: TestPayloadKind = "transcript") -> Payload:
    """The test payload of ``kind``, all three about the same test visitor and chat id.

    The offline message has its one ``OfflineMessage`` item and no ``operators``;
    the start event has no items, ``operators: {}`` and ``eventType: "start"``,
    as the sender posts them for real chats.
    """
    transcript = send_test_transcript()
    if kind == "offline_message":
        return OfflineMessageTranscript(
            kind="Conversation",
            id=TEST_TRANSCRIPT_ID,
            tags=["test_example"],
            items=[OfflineMessage(body="Hi from a visitor", timestamp="1473774821.411154")],
            visitor=transcript.visitor,
            manually_submitted=False,
        )
    if kind == "start_event":
        return StartEvent(
            kind="Conversation",
            id=TEST_TRANSCRIPT_ID,
            tags=["test_example"],
            items=[],
            operators={},
            visitor=transcript.visitor,
            manually_submitted=False,
            event_type="start",
        )
    return transcript

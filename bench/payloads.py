"""Realistic Olark transcripts for the benchmark, built with the wire models.

The bodies have the size and shape of real chats (twenty messages, a full
visitor record, one or two operators, 2-5 KB of JSON), so the benchmark pays
the same encoding, hashing and transfer costs production would. Generation is
seeded: two runs post the same bytes.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chathooks.wire import (
    ChatFeedback,
    MessageToOperator,
    MessageToVisitor,
    Operator,
    Transcript,
    Visitor,
    dumps,
    encode_form,
    format_timestamp,
)

MESSAGES_PER_TRANSCRIPT = 20
_ID_ALPHABET = string.ascii_letters + string.digits

_OPERATORS = [
    Operator(id="647563", username="maria", nickname="Maria", email_address="maria@example.com"),
    Operator(id="712001", username="devon", nickname="Devon", email_address="devon@example.com"),
    Operator(id="733145", username="keiko", nickname="Keiko", email_address="keiko@example.com"),
]
_PLACES = [
    ("San Francisco", "CA", "United States", "US", "USA"),
    ("Austin", "TX", "United States", "US", "USA"),
    ("Toronto", "ON", "Canada", "CA", "Canada"),
    ("Berlin", "BE", "Germany", "DE", "Germany"),
    ("Lyon", "ARA", "France", "FR", "France"),
    ("Melbourne", "VIC", "Australia", "AU", "Australia"),
]
_FIRST_NAMES = ["Paul", "Ana", "Jun", "Priya", "Lars", "Fatima", "Tom", "Chloe", "Mateo", "Ines"]
_LAST_NAMES = ["Smith", "Garcia", "Tanaka", "Patel", "Berg", "Haddad", "Moreau", "Rossi", "Kim"]
_BROWSERS = ["Chrome 124.0.6367.91", "Firefox 125.0", "Safari 17.4.1", "Edge 124.0.2478.67"]
_SYSTEMS = ["Windows", "Macintosh", "Linux", "iOS", "Android"]
_PAGES = ["pricing", "docs/getting-started", "checkout", "blog/webhooks-in-practice", "contact"]
_VISITOR_LINES = [
    "Hi, I have a question about your pricing for teams.",
    "We are about forty people, mostly support agents across two time zones.",
    "Does the annual plan include the reporting add-on, or is that billed separately?",
    "Can I export transcripts to our CRM automatically when a chat ends?",
    "Our current tool drops messages when the visitor reloads the page, which is painful.",
    "Is there a way to route chats from the checkout page to the billing team only?",
    "That sounds good. What about data retention, can we set it to ninety days?",
    "Thanks! Could you send me a link to the security overview as well?",
    "Perfect, I'll share it with our IT lead and get back to you this week.",
    "One more thing: do you support single sign-on with Okta?",
    "ok",
    "Thanks!",
    "Got it.",
    "Hmm, let me check with my manager.",
]
_OPERATOR_LINES = [
    "Hello! Happy to help. How large is your team?",
    "Great, the Team plan fits that size; it includes unlimited transcripts & routing.",
    "Reporting is included in the annual plan at no extra cost (monthly plans pay $10/seat).",
    "Yes: add a webhook under Settings > Integrations and every transcript is posted there.",
    "Sorry to hear that. Our widget keeps the conversation across reloads and new tabs.",
    "You can: create a group for billing and set a rule for URLs containing /checkout.",
    "Retention is configurable from 30 days to forever, per site, under Settings > Privacy.",
    "Of course, here it is: https://example.com/security - let me know if anything is missing.",
    "Sounds good, I've added a note so whoever picks up your next chat has the context.",
    "We do, SAML 2.0 with Okta, Azure AD and Google Workspace on the Team plan and above.",
    "Sure!",
    "One moment please.",
    "You're welcome :)",
    "Anything else I can help with?",
]


@dataclass(frozen=True)
class Sample:
    """One transcript ready to post: its conversation ``id`` and the JSON document."""

    id: str
    document: dict[str, Any]

    def form_body(self) -> bytes:
        """Olark's wire body (``data=<urlencoded JSON>``), as chathooks would send it."""
        return encode_form(self.document)

    def json_body(self) -> bytes:
        return dumps(self.document).encode("utf-8")


def conversation_id(prefix: str, index: int) -> str:
    """A 32-character alphanumeric id, unique per (prefix, index), like Olark's."""
    head = f"{prefix}{index:09d}"
    rng = random.Random(head)
    return head + "".join(rng.choice(_ID_ALPHABET) for _ in range(32 - len(head)))


def build_transcript(rng: random.Random, transcript_id: str, started_at: float) -> Transcript:
    """A completed chat of :data:`MESSAGES_PER_TRANSCRIPT` messages between a visitor and staff."""
    city, region, country, code, label = rng.choice(_PLACES)
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    staff = rng.sample(_OPERATORS, k=rng.choice([1, 1, 2]))
    returning = "Returning Visitor | " if rng.random() < 0.5 else ""
    visitor_label = f"{returning}{label} ({city}, {region}) #{rng.randint(1000, 9999)}"
    # Newer Olark data adds ``visitor_nickname``; older captures do not have it.
    visitor_nickname = f"{first} {last}" if rng.random() < 0.5 else None
    moment = started_at
    items: list[MessageToVisitor | MessageToOperator] = []
    for turn in range(MESSAGES_PER_TRANSCRIPT):
        moment += rng.uniform(4.0, 90.0)
        if turn % 2 == 0:
            items.append(
                MessageToOperator(
                    body=rng.choice(_VISITOR_LINES),
                    timestamp=format_timestamp(moment),
                    nickname=visitor_label,
                    **({"visitor_nickname": visitor_nickname} if visitor_nickname else {}),
                )
            )
        else:
            operator = rng.choice(staff)
            items.append(
                MessageToVisitor(
                    body=rng.choice(_OPERATOR_LINES),
                    timestamp=format_timestamp(moment),
                    nickname=operator.nickname,
                    operator_id=operator.id,
                )
            )
    page = rng.choice(_PAGES)
    return Transcript(
        kind="Conversation",
        id=transcript_id,
        tags=rng.sample(["sales", "pricing", "sso", "support", "lead"], k=rng.randint(0, 2)),
        items=list(items),
        operators={operator.id or "": operator for operator in staff},
        visitor=Visitor(
            id="".join(rng.choice(_ID_ALPHABET) for _ in range(32)),
            full_name=f"{first} {last}",
            email_address=f"{first.lower()}.{last.lower()}@example.org",
            phone_number=f"555{rng.randint(1000000, 9999999)}",
            city=city,
            region=region,
            country=country,
            country_code=code,
            organization=f"{last} & Partners",
            ip=f"203.0.113.{rng.randint(1, 254)}",
            browser=rng.choice(_BROWSERS),
            operating_system=rng.choice(_SYSTEMS),
            conversation_begin_page=f"https://www.example.com/{page}",
            referrer="https://www.google.com/",
            custom_fields={"plan": rng.choice(["trial", "team", "business"]), "seats": 40},
            chat_feedback=ChatFeedback(
                overall_chat=rng.randint(3, 5),
                responsiveness=rng.randint(3, 5),
                friendliness=rng.randint(4, 5),
                knowledge=rng.randint(3, 5),
                comments="Quick and helpful, thanks!",
            ),
        ),
        manually_submitted=False,
    )


def generate(count: int, *, prefix: str, seed: int = 20_000) -> list[Sample]:
    """``count`` transcripts whose ids start with ``prefix`` (one prefix per benchmark phase)."""
    rng = random.Random(f"{seed}:{prefix}")
    started_at = 1_715_000_000.0
    samples = []
    for index in range(count):
        transcript_id = conversation_id(prefix, index)
        document = build_transcript(rng, transcript_id, started_at + index * 7.0).to_wire()
        samples.append(Sample(id=transcript_id, document=document))
    return samples


def size_range(bodies: Sequence[bytes]) -> tuple[int, int, int]:
    """(smallest, median, largest) body size in bytes."""
    sizes = sorted(len(body) for body in bodies)
    return sizes[0], sizes[len(sizes) // 2], sizes[-1]

"""Every page, of the sender and of ``chathooks receive``, at a desktop's and a phone's width.

Each page is opened showing real data (an endpoint, deliveries with an open
detail, a chat with a ``!lead`` answer, stored transcripts) and checked by
:func:`support.pagecheck.check_page`: no serious or critical axe-core
violation, no sideways scroll of the page at 400 px, and a screenshot at both
widths when ``CHATHOOKS_SCREENSHOTS`` names a folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from chathooks.wire import encode_form
from support.pagecheck import axe_source, check_page
from support.receive_process import READER, running_receiver
from support.receiver import RecordingReceiver
from support.ui_site import UiSite

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _axe_installed() -> None:
    axe_source()  # skip (fail in CI) up front when axe-core is missing


def chat_with_a_lead(page: Page) -> None:
    page.get_by_role("button", name="Start chat").click()
    for sender, text in (("Visitor", "Do you ship to Norway?"), ("Operator", "!lead")):
        page.get_by_role("radio", name=sender).check()
        page.get_by_label("Message", exact=True).fill(text)
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_label("Message", exact=True)).to_have_value("")
    expect(page.locator("#chat-log .notice-succeeded")).to_have_count(1)


def test_every_page_of_the_sender_passes_at_1280_and_400_px(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    problems: list[str] = []
    page.goto(ui_site.url("/ui/signin"))
    page.locator("body[data-ready='true']").wait_for()
    problems += check_page(page, "sender-signin")

    endpoint = ui_site.post(
        "endpoints",
        {"url": receiver.url + "/a/rather/long/path/that/would/not/fit", "description": "CRM"},
    )
    ui_site.sign_in(page, "/ui/console")
    chat_with_a_lead(page)
    problems += check_page(page, "sender-console")

    page.goto(ui_site.url("/ui/settings"))
    page.locator("body[data-ready='true']").wait_for()
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("region", name="Test result")).to_be_visible()
    problems += check_page(page, "sender-settings")

    page.goto(ui_site.url("/ui/deliveries"))
    page.locator("body[data-ready='true']").wait_for()
    rows = page.locator("#delivery-rows tr")
    expect(rows).to_have_count(1)
    problems += check_page(page, "sender-deliveries")
    rows.first.get_by_role("button").click()
    expect(page.get_by_role("list", name="Attempts").get_by_role("listitem")).to_have_count(1)
    problems += check_page(page, "sender-delivery-detail")
    assert endpoint["id"]
    assert not problems, "\n".join(problems)


def test_every_page_of_the_receiver_passes_at_1280_and_400_px(
    page: Page, tmp_path: Path, sqlite_url: str
) -> None:
    document = {
        "kind": "Conversation",
        "id": "a-conversation-with-a-rather-long-identifier-0123456789",
        "items": [
            {
                "kind": "MessageToOperator",
                "nickname": "ada.visitor.with.a.long.address@example.com",
                "body": "Do you ship to Norway? " * 20,
                "timestamp": "1700000000.000000",
            },
            {
                "kind": "MessageToVisitor",
                "nickname": "Sam",
                "operatorId": "1001",
                "body": "We do.",
                "timestamp": "1700000060.000000",
            },
        ],
        "visitor": {
            "kind": "Visitor",
            "fullName": "Ada Visitor",
            "emailAddress": "ada.visitor.with.a.long.address@example.com",
            "conversationBeginPage": "https://www.example.com/" + "pricing/" * 12,
        },
        "operators": {"1001": {"kind": "Operator", "nickname": "Sam", "username": "sam"}},
    }
    problems: list[str] = []
    favicons: list[str] = []
    page.on("request", lambda r: favicons.append(r.url) if "favicon" in r.url else None)
    with running_receiver(tmp_path, database_url=sqlite_url) as receiver:
        url = receiver.post(encode_form(document)).json()["integrationUrl"]
        page.goto(receiver.base)
        problems += check_page(page, "receiver-signin")
        page.set_extra_http_headers(READER)
        page.goto(receiver.base)
        problems += check_page(page, "receiver-list")
        page.goto(url)
        problems += check_page(page, "receiver-transcript")
        page.goto(receiver.base + "/transcripts/nobody")
        problems += check_page(page, "receiver-not-found")
        for icon in favicons:
            assert receiver.get(icon.removeprefix(receiver.base)).status_code == 200, icon
    assert not problems, "\n".join(problems)

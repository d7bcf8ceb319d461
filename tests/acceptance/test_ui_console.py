"""The operator console in a real Chromium: a chat from both sides, ``!lead`` and its answer.

Olark shows the operator who typed ``!lead`` the ``integrationUrl`` the
endpoint answered; the console must do the same, from the event stream.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from support.receiver import RecordingReceiver
from support.ui_site import UiSite, send

#: A picture of the page for a person to look at, in the system's temporary folder.
SCREENSHOT = str(Path(tempfile.gettempdir()) / "chathooks-ui-console.png")


def test_lead_shows_the_endpoints_integration_url_in_the_chat(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    ui_site.sign_in(page, "/ui/console")
    page.get_by_label("Visitor name").fill("Grace <Visitor>")
    page.get_by_label("Operator nickname").fill("Sam from Support")
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("status").filter(has_text="Open")).to_be_visible()
    conversation_id = page.locator("#chat-id").inner_text().removeprefix("Conversation ")

    chat = page.get_by_role("log", name="Chat log")
    send(page, "Visitor", "Hi, <b>do you ship</b> to Norway?")
    send(page, "Operator", "We do! Shall I pass you to sales?")
    expect(chat).to_contain_text("Hi, <b>do you ship</b> to Norway?")
    expect(chat.locator(".msg-operator")).to_contain_text("Sam from Support")

    send(page, "Operator", "!lead wants a quote")
    expected = f"https://crm.example/leads/{conversation_id}"
    link = chat.get_by_role("link", name=expected)
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", expected)
    expect(chat).to_contain_text("delivered to CRM")

    [received] = receiver.wait_for(1)
    document = received.document()
    assert document["id"] == conversation_id
    assert document["manuallySubmitted"] is True
    assert [item["body"] for item in document["items"]] == [
        "Hi, <b>do you ship</b> to Norway?",
        "We do! Shall I pass you to sales?",
    ]
    assert document["visitor"]["fullName"] == "Grace <Visitor>"
    [operator] = document["operators"].values()
    assert operator["nickname"] == "Sam from Support"

    # The chat goes on, then closes: the same id is posted again with the rest.
    send(page, "Visitor", "Thanks!")
    page.get_by_role("button", name="Close chat").click()
    expect(page.get_by_role("status").filter(has_text="Closed")).to_be_visible()
    expect(chat.locator(".notice-succeeded")).to_have_count(2)
    expect(chat).to_contain_text("Final transcript delivered to CRM")
    assert page.get_by_label("Message", exact=True).is_disabled()
    final = receiver.wait_for(2)[1].document()
    assert final["id"] == conversation_id
    assert final["manuallySubmitted"] is False
    assert final["items"][-1]["body"] == "Thanks!"
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_a_failing_endpoint_shows_the_reason_in_the_chat(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    receiver.reply(500, "CRM is down", times=3)
    ui_site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    send(page, "Visitor", "Hello?")
    send(page, "Operator", "!case")

    chat = page.get_by_role("log", name="Chat log")
    failure = chat.locator(".notice-failed").last
    expect(failure).to_contain_text(re.compile(r"\(!case\) to CRM failed: HTTP 500"))
    # Retries keep being reported; after the last one the console says it gave up.
    expect(failure).to_contain_text("Gave up")
    expect(chat.get_by_role("link", name=re.compile("crm"))).to_have_count(0)

    # The notice leads to the delivery's attempts, where it can be redelivered.
    failure.get_by_role("link", name="delivery log").click()
    page.wait_for_url("**/ui/deliveries?delivery=*")
    attempts = page.get_by_role("list", name="Attempts").get_by_role("listitem")
    expect(attempts).to_have_count(3)
    expect(attempts.first).to_contain_text("HTTP 500")


def test_a_command_typed_as_the_visitor_is_only_chat(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url})
    ui_site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    page.get_by_label("Message", exact=True).fill("!lead")
    expect(page.get_by_text("only work when sent as the operator")).to_be_visible()
    send(page, "Visitor", "!lead")
    chat = page.get_by_role("log", name="Chat log")
    expect(chat.locator(".msg-visitor")).to_have_text(re.compile("!lead"))
    conversation_id = page.locator("#chat-id").inner_text().removeprefix("Conversation ")
    conversation = ui_site.get(f"conversations/{conversation_id}")
    assert [i["body"] for i in conversation["transcript"]["items"]] == ["!lead"]
    assert receiver.requests == []


def test_reloading_the_console_resumes_the_chat_and_its_answers(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url})
    ui_site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    send(page, "Visitor", "Still there?")
    send(page, "Operator", "!webhook")
    chat = page.get_by_role("log", name="Chat log")
    conversation_id = page.locator("#chat-id").inner_text().removeprefix("Conversation ")
    integration_url = f"https://crm.example/leads/{conversation_id}"
    expect(chat.get_by_role("link", name=integration_url)).to_have_count(1)

    page.reload()
    page.locator("body[data-ready='true']").wait_for()
    expect(chat).to_contain_text("Still there?")
    expect(chat.get_by_role("link", name=integration_url)).to_have_count(1)
    expect(page.get_by_label("Message", exact=True)).to_be_enabled()


def test_an_outcome_from_the_stream_is_not_undone_by_a_late_answer(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    """The delivery can succeed before the browser reads the API's own "queued" answer."""
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    ui_site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    send(page, "Visitor", "A quote, please")
    chat = page.get_by_role("log", name="Chat log")

    def answer_late(route: Route) -> None:
        response = route.fetch()
        receiver.wait_for(1)  # delivered, so the stream reports it before this answer
        page.wait_for_timeout(500)
        route.fulfill(response=response)

    page.route("**/conversations/*/messages", answer_late)
    send(page, "Operator", "!lead")  # returns once the late answer has been shown
    expect(chat.locator(".notice-succeeded")).to_have_count(1)
    expect(chat.locator(".notice-pending")).to_have_count(0)
    expect(chat.get_by_role("link", name=re.compile(r"crm\.example"))).to_be_visible()

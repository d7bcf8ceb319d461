"""The operator console's chat log in Chromium: the same lines in the same order after a
reload, a time on every line, and the view kept on the newest line while the user is there."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect

from support.receiver import RecordingReceiver
from support.ui_site import UiSite, send


def lines(page: Page) -> list[str]:
    texts: list[str] = page.locator("#chat-log > *").all_inner_texts()
    return texts


def test_the_console_after_a_reload_shows_the_same_lines_in_the_same_order(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM", "send_events": True})
    ui_site.sign_in(page, "/ui/console")
    page.get_by_label("Operator nickname").fill("Sam")
    page.get_by_role("button", name="Start chat").click()
    chat = page.get_by_role("log", name="Chat log")
    expect(chat.locator(".notice-succeeded")).to_have_count(1)  # the start event
    send(page, "Visitor", "Do you ship to Norway?")
    send(page, "Operator", "We do.")
    send(page, "Operator", "!lead wants a quote for 40 seats")
    expect(chat.locator(".notice-succeeded")).to_have_count(2)
    send(page, "Visitor", "Thanks!")
    page.get_by_role("button", name="Close chat").click()
    expect(chat.locator(".notice-succeeded")).to_have_count(3)
    before = lines(page)
    assert len(before) == 9, before
    assert "Chat started" in before[0] and "Start event delivered to CRM" in before[1]
    assert "!lead wants a quote for 40 seats" in before[4]
    assert "Transcript (!lead) delivered to CRM" in before[5]
    assert "Chat closed." in before[7] and "Final transcript delivered" in before[8]
    # Every line has its time.
    expect(chat.locator(":scope > * time")).to_have_count(len(before))

    page.reload()
    page.locator("body[data-ready='true']").wait_for()
    expect(chat.locator(".notice-succeeded")).to_have_count(3)
    assert lines(page) == before


def test_a_retry_says_when_it_will_be_tried_again(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    receiver.reply(500, "down", times=3)
    ui_site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    send(page, "Operator", "!case")
    chat = page.get_by_role("log", name="Chat log")
    expect(chat.locator(".notice-failed")).to_contain_text(
        re.compile(r"Will retry at \d{1,2}:\d{2}:\d{2}|Gave up")
    )


def test_the_log_follows_the_newest_line_only_while_the_user_is_at_the_bottom(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    page.set_viewport_size({"width": 1280, "height": 700})
    ui_site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    log = page.locator("#chat-log")
    for n in range(14):
        send(page, "Visitor", f"Line {n}\nwith a second row")
    gap = "el => el.scrollHeight - el.scrollTop - el.clientHeight"
    assert log.evaluate("el => el.scrollHeight > el.clientHeight + 50")
    assert log.evaluate(gap) < 8

    # A notice that appears and then grows (queued → delivered) keeps the end in view.
    send(page, "Operator", "!lead")
    expect(log.locator(".notice-succeeded")).to_have_count(1)
    page.wait_for_function(f"() => ({gap})(document.getElementById('chat-log')) < 8")

    # Scrolled up to read: new lines do not pull the view down.
    log.evaluate("el => { el.scrollTop = 0; }")
    send(page, "Visitor", "One more")
    expect(log).to_contain_text("One more")
    assert log.evaluate("el => el.scrollTop") == 0


def test_an_outcome_told_before_the_commands_answer_still_follows_the_command(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    """The stream can report the delivery before the browser reads the POST's answer."""
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    ui_site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    send(page, "Visitor", "A quote, please")
    chat = page.get_by_role("log", name="Chat log")

    def answer_late(route: Route) -> None:
        response = route.fetch()
        receiver.wait_for(1)
        expect(chat.locator(".notice-succeeded")).to_have_count(1)  # told by the stream
        route.fulfill(response=response)

    page.route("**/conversations/*/messages", answer_late)
    send(page, "Operator", "!lead")
    expect(chat.locator(".notice-succeeded")).to_have_count(1)
    before = lines(page)
    assert "!lead" in before[-2] and "delivered to CRM" in before[-1], before

    page.unroute("**/conversations/*/messages")
    page.reload()
    page.locator("body[data-ready='true']").wait_for()
    expect(chat.locator(".notice-succeeded")).to_have_count(1)
    assert lines(page) == before


def test_a_command_with_no_endpoint_to_post_to_is_still_there_after_a_reload(
    page: Page, ui_site: UiSite
) -> None:
    ui_site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    chat = page.get_by_role("log", name="Chat log")
    send(page, "Visitor", "Can someone call me back?")
    send(page, "Operator", "!case callback tomorrow 9am")
    send(page, "Operator", "Noted, we will call you.")
    expect(chat.get_by_text("No enabled endpoint to post to")).to_be_visible()
    before = lines(page)
    assert "!case callback tomorrow 9am" in before[2], before

    page.reload()
    page.locator("body[data-ready='true']").wait_for()
    expect(chat.get_by_text("Noted, we will call you.")).to_be_visible()
    after = lines(page)
    assert "!case callback tomorrow 9am" in after[2], after
    assert "Noted, we will call you." in after[-1], after

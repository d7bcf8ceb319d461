"""The delivery log as a support team uses it after a complaint or an outage, in Chromium:
find one conversation or a time window, watch the counters, recover what failed."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from support.receiver import RecordingReceiver
from support.ui_site import UiSite, ingest


def local_input(page: Page, iso: str) -> str:
    """An API time as the browser's datetime-local input writes it (its own time zone)."""
    text: str = page.evaluate(
        """iso => {
            const d = new Date(iso), pad = (n) => String(n).padStart(2, "0");
            return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T`
                + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
        }""",
        iso,
    )
    return text


def test_the_log_finds_one_conversation_by_id_or_prefix_and_keeps_it_in_the_address(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    wanted = {name: ingest(ui_site, name) for name in ("order-7", "order-71", "refund-7")}
    for delivery_id in wanted.values():
        ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "succeeded")

    ui_site.sign_in(page, "/ui/deliveries")
    rows = page.locator("#delivery-rows tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Conversation id").fill("order-7")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("order-7")
    assert "conversation_id=order-7" in page.url

    page.get_by_label("Ids starting with this").check()
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("order-71")
    expect(rows.nth(1)).to_contain_text("order-7")
    assert "conversation_prefix=order-7" in page.url and "conversation_id" not in page.url

    # A shared link opens the same view.
    shared = page.url
    page.goto(shared)
    page.locator("body[data-ready='true']").wait_for()
    expect(page.get_by_label("Conversation id")).to_have_value("order-7")
    expect(page.get_by_label("Ids starting with this")).to_be_checked()
    expect(rows).to_have_count(2)


def test_the_log_filters_to_a_time_range_and_says_what_is_wrong_with_a_bad_one(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    early = ingest(ui_site, "chat-early")
    made = ui_site.get(f"deliveries/{early}")["created_at"]
    made_second = int(datetime.fromisoformat(made).timestamp())
    deadline = time.monotonic() + 10
    while int(time.time()) <= made_second and time.monotonic() < deadline:
        time.sleep(0.05)  # the inputs count whole seconds: the next ones start in a later one
    later = [ingest(ui_site, f"chat-later-{n}") for n in range(2)]
    boundary = min(ui_site.get(f"deliveries/{d}")["created_at"] for d in later)
    boundary_second = datetime.fromisoformat(boundary).replace(microsecond=0)
    assert boundary_second.timestamp() > made_second

    ui_site.sign_in(page, "/ui/deliveries")
    rows = page.locator("#delivery-rows tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Created before").fill(local_input(page, boundary_second.isoformat()))
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("chat-early")
    assert "created_to=" in page.url

    page.get_by_label("Created before").fill("")
    page.get_by_label("Created from").fill(local_input(page, boundary_second.isoformat()))
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="chat-early")).to_have_count(0)

    # Full dates: the absolute local time is on hover, with the date.
    created = rows.first.locator("time")
    expect(created).to_have_attribute("title", re.compile(r"\d{4}"))
    expect(created).to_have_text(re.compile(r"ago|now"))

    # An end before the start: the API's message, next to the filters; the rows stay.
    page.get_by_label("Created before").fill(local_input(page, made))
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#filters [role='alert']").filter(has_text="created_to")).to_be_visible()
    expect(rows).to_have_count(2)


def test_the_counters_change_by_themselves_when_a_delivery_fails(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    ui_site.sign_in(page, "/ui/deliveries")
    failed = page.get_by_role("link", name=re.compile(r"^Failed"))
    expect(failed).to_have_text(re.compile(r"Failed\s*0"))
    expect(page.get_by_role("link", name=re.compile(r"^Pending"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Retrying"))).to_be_visible()

    receiver.reply(500, "broken", times=3)
    delivery_id = ingest(ui_site, "chat-broken")
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "failed")
    expect(failed).to_have_text(re.compile(r"Failed\s*1"), timeout=20_000)
    # The list follows too, without Refresh.
    expect(page.locator("#delivery-rows tr")).to_have_count(1, timeout=20_000)
    expect(page.locator("#delivery-rows tr").first).to_contain_text("failed")
    failed.click()
    page.wait_for_url("**status=failed*")
    expect(page.get_by_label("Status")).to_have_value("failed")


def test_recover_resends_what_failed_during_an_outage_after_a_preview_and_a_confirmation(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    crm = ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    outage_began = datetime.now(UTC).replace(microsecond=0)
    receiver.reply(503, "maintenance", times=6)  # two deliveries, three attempts each
    down = [ingest(ui_site, f"chat-outage-{n}") for n in range(2)]
    for delivery_id in down:
        ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "failed")
    assert len(receiver.requests) == 6

    ui_site.sign_in(page, "/ui/deliveries")
    expect(page.get_by_role("link", name=re.compile(r"^Failed"))).to_have_text(
        re.compile(r"Failed\s*2")
    )
    page.get_by_text("Recover after an outage").click()
    page.get_by_label("Resend to").select_option(crm["id"])
    page.get_by_label("Failed deliveries made since").fill(
        local_input(page, outage_began.isoformat())
    )
    page.get_by_role("button", name="Count them").click()
    confirm = page.get_by_role("button", name="Resend 2 deliveries")
    expect(confirm).to_be_visible()
    expect(page.locator("#recover-summary")).to_contain_text("Resend 2 failed deliveries to CRM")
    assert len(receiver.requests) == 6  # nothing is sent before the confirmation

    # Cancel first: nothing goes out.
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#recover-status")).to_have_text("Nothing was resent.")
    assert len(receiver.requests) == 6

    page.get_by_role("button", name="Count them").click()
    confirm.click()
    expect(page.locator("#recover-status")).to_have_text("2 deliveries queued to be sent again.")
    received = receiver.wait_for(8)
    # Oldest first, with the same webhook-ids, so the receiver can dedupe.
    assert [r.header("webhook-id") for r in received[6:]] == down
    for delivery_id in down:
        ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "succeeded")
    expect(page.get_by_role("link", name=re.compile(r"^Failed"))).to_have_text(
        re.compile(r"Failed\s*0"), timeout=20_000
    )


def test_opening_a_row_does_not_move_the_page(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    ids = [ingest(ui_site, f"chat-{n}") for n in range(30)]
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, ids[0], "succeeded")
    ui_site.sign_in(page, "/ui/deliveries")
    rows = page.locator("#delivery-rows tr")
    expect(rows).to_have_count(30)
    target = rows.nth(25)
    target.scroll_into_view_if_needed()
    assert page.evaluate("() => window.scrollY") > 0
    before = target.bounding_box()
    assert before is not None
    target.get_by_role("button").click()
    expect(page.get_by_role("region", name=re.compile(r"^Delivery msg_"))).to_be_visible()
    expect(target).to_have_class(re.compile("selected"))
    # The row clicked stays under the pointer (the list narrows beside the detail, and the
    # browser's scroll anchoring keeps the row where it was); it used to jump to the top.
    after = target.bounding_box()
    assert after is not None
    assert abs(after["y"] - before["y"]) <= 2, (before, after)
    # Keyboard users land on the detail.
    assert page.evaluate("() => document.activeElement.id") == "detail-heading"


def test_an_attempt_shows_the_request_as_sent_and_the_whole_answer(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post(
        "endpoints",
        {"url": receiver.url, "description": "CRM", "headers": {"X-Crm-Token": "very-secret"}},
    )
    receiver.reply(429, "slow down", headers={"X-Crm-Trace": "t-42"})
    delivery_id = ingest(ui_site, "chat-exchange")
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "succeeded")
    [sent, _] = receiver.wait_for(2)

    ui_site.sign_in(page, f"/ui/deliveries?delivery={delivery_id}")
    attempts = page.get_by_role("list", name="Attempts").get_by_role("listitem")
    expect(attempts).to_have_count(2)
    first = attempts.first
    first.get_by_text("Request sent").click()
    request = first.get_by_label("Request headers")
    expect(request).to_contain_text(f"webhook-id{delivery_id}")
    expect(request).to_contain_text("X-Crm-Token")
    expect(request).not_to_contain_text("very-secret")
    expect(first.locator(".exchange pre")).to_have_text(sent.body.decode())
    first.get_by_text("Response headers").click()
    expect(first.get_by_label("Response headers")).to_contain_text("t-42")
    expect(first).to_contain_text("HTTP 429")

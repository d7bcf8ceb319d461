"""The delivery log in a real Chromium: the list, its filters and paging, attempts, Redeliver."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect

from support.receiver import RecordingReceiver
from support.ui_site import UiSite, ingest, transcript

#: A picture of the page for a person to look at, in the system's temporary folder.
SCREENSHOT = str(Path(tempfile.gettempdir()) / "chathooks-ui-deliveries.png")


def test_a_failed_delivery_shows_its_attempts_and_redeliver_sends_it_again(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    receiver.reply(503, "<b>maintenance</b>", times=3)  # the first try and both retries
    delivery_id = ingest(ui_site, "chat-down")
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "failed")

    ui_site.sign_in(page, "/ui/deliveries")
    rows = page.locator("#delivery-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("failed")
    expect(rows.first).to_contain_text("chat-down")
    expect(rows.first).to_contain_text("CRM")
    page.get_by_role("button", name=f"Details of delivery {delivery_id}").click()

    detail = page.get_by_role("region", name=f"Delivery {delivery_id}")
    attempts = detail.get_by_role("list", name="Attempts").get_by_role("listitem")
    expect(attempts).to_have_count(3)
    expect(attempts.first).to_contain_text("Attempt 1")
    expect(attempts.first).to_contain_text("HTTP 503")
    expect(attempts.first).to_contain_text(re.compile(r"\d+ ms"))
    attempts.first.get_by_text("Response body").click()
    response_body = attempts.first.locator("details", has_text="Response body").locator("pre")
    expect(response_body).to_have_text("<b>maintenance</b>")

    detail.get_by_role("button", name="Redeliver").click()
    # The receiver answers 200 with an integrationUrl now; the detail follows by itself,
    # and the status line says what became of the redelivery, not that it is still queued.
    expect(attempts).to_have_count(4)
    expect(detail.get_by_role("status")).to_have_text("Sent again: delivered (HTTP 200).")
    expect(attempts.last).to_contain_text("succeeded")
    link = detail.get_by_role("link", name="https://crm.example/leads/chat-down").first
    expect(link).to_have_attribute("href", "https://crm.example/leads/chat-down")
    expect(rows.first).to_contain_text("succeeded")

    received = receiver.wait_for(4)
    assert {r.header("webhook-id") for r in received} == {delivery_id}
    assert received[-1].document()["id"] == "chat-down"
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_the_log_is_newest_first_filters_by_status_and_endpoint_and_pages(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    crm = ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    ids = [ingest(ui_site, f"chat-{n}") for n in range(3)]
    for delivery_id in ids:
        ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "succeeded")
    # A second endpoint nobody listens on: its delivery keeps failing.
    gone = ui_site.post("endpoints", {"url": "http://127.0.0.1:9/closed", "description": "Gone"})
    both = ui_site.post("transcripts", transcript("chat-refused"))["deliveries"]
    [to_crm] = [d["id"] for d in both if d["endpoint_id"] == crm["id"]]
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, to_crm, "succeeded")

    ui_site.sign_in(page, "/ui/deliveries?limit=2")
    rows = page.locator("#delivery-rows tr")
    expect(rows).to_have_count(2)
    # Newest first: the last transcript handed over is on top.
    expect(rows.nth(0)).to_contain_text("chat-refused")
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(4)
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(5)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(rows.nth(4)).to_contain_text("chat-0")

    page.get_by_label("Endpoint").select_option(gone["id"])
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("chat-refused")
    assert f"endpoint_id={gone['id']}" in page.url

    page.get_by_label("Endpoint").select_option("")
    page.get_by_label("Status").select_option("succeeded")
    expect(rows).to_have_count(2)  # page size 2, more to load
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(4)
    for n in range(4):
        expect(rows.nth(n)).to_contain_text("succeeded")
        expect(rows.nth(n)).to_contain_text("CRM")

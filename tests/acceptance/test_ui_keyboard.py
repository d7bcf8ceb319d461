"""The pages work from the keyboard alone, in Chromium: Tab reaches the controls in order,
Enter and Space work them, and focus goes where the user's next step is."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from support.receiver import RecordingReceiver
from support.ui_site import UiSite, ingest


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_settings_and_the_delivery_log_by_keyboard_only(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    created = ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    delivery_id = ingest(ui_site, "chat-keys")
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "succeeded")
    ui_site.sign_in(page)

    tab_to(page, "#endpoint-send-events")
    page.keyboard.press("Space")
    expect(page.locator("#dirty-note")).to_be_visible()
    tab_to(page, "#save-endpoint")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    assert ui_site.get(f"endpoints/{created['id']}")["send_events"] is True

    page.goto(ui_site.url("/ui/deliveries"))
    page.locator("body[data-ready='true']").wait_for()
    # The skip link is the first stop.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    tab_to(page, f"[aria-label='Details of delivery {delivery_id}']")
    page.keyboard.press("Enter")
    expect(page.locator("#detail-heading")).to_be_focused()
    tab_to(page, "#redeliver")
    page.keyboard.press("Enter")
    expect(page.locator("#redeliver-status")).to_have_text("Sent again: delivered (HTTP 200).")
    receiver.wait_for(2)

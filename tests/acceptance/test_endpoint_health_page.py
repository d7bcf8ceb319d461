"""The settings page shows each endpoint's health beside it, in a real Chromium."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from support.receiver import RecordingReceiver
from support.ui_site import UiSite


def test_the_endpoint_list_shows_how_each_endpoint_has_been_answering(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    receiver.reply(500, "broken")
    endpoint = ui_site.post("endpoints", {"url": receiver.url})
    [queued] = ui_site.post("transcripts", {"kind": "Conversation", "id": "c1"})["deliveries"]
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, queued["id"], "succeeded")
    health = ui_site.get(f"endpoints/{endpoint['id']}")["health"]
    assert health["success_rate_24h"] == 0.5  # one 500, then the retry succeeded

    ui_site.sign_in(page)
    item = page.locator(".endpoint-item", has_text=receiver.url)
    expect(item.locator(".endpoint-health")).to_have_text("healthy · 50% ok in 24 h")

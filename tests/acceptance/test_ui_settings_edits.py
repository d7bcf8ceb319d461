"""Settings a support team edits all day, in Chromium: unsaved changes are marked and never
lost without asking, custom headers reach the receiver, Send test tries each payload kind."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from chathooks.wire import payload_from_dict
from chathooks.wire.models import OfflineMessageTranscript, StartEvent
from support.receiver import RecordingReceiver
from support.ui_site import UiSite, answer_dialogs, closing_asks_first, ingest


def test_an_unsaved_switch_change_asks_before_leaving(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    created = ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    other = ui_site.post("endpoints", {"url": receiver.url + "/b", "description": "Helpdesk"})
    ui_site.sign_in(page, f"/ui/settings?endpoint={created['id']}")
    dirty = page.locator("#dirty-note")
    expect(dirty).to_be_hidden()
    page.get_by_label("Send all events").check()
    expect(dirty).to_have_text("Unsaved changes")

    # In-app navigation: the nav bar and another endpoint of the list ask, and "Cancel" stays.
    questions = answer_dialogs(page, accept=False)
    page.get_by_role("link", name="Delivery log").click()
    page.get_by_role("list", name="Endpoints").get_by_role("button", name="Helpdesk").click()
    assert len(questions) == 2 and all("unsaved changes" in q for q in questions)
    assert "/ui/settings" in page.url
    expect(page.get_by_label("Send all events")).to_be_checked()
    expect(page.get_by_label("URL to post to")).to_have_value(receiver.url)
    questions.stop()

    # Leaving the page itself (closing, reloading): the browser's own question.
    assert closing_asks_first(page)  # "Stay" kept the tab and the edit
    assert ui_site.get(f"endpoints/{created['id']}")["send_events"] is False
    assert other["id"]


def test_saving_clears_the_mark_and_leaving_then_asks_nothing(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    created = ui_site.post("endpoints", {"url": receiver.url})
    ui_site.sign_in(page)
    page.get_by_label("Send offline messages").uncheck()
    expect(page.locator("#dirty-note")).to_be_visible()
    page.get_by_label("Send offline messages").check()  # back as it was: nothing to save
    expect(page.locator("#dirty-note")).to_be_hidden()
    page.get_by_label("Send offline messages").uncheck()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    expect(page.locator("#dirty-note")).to_be_hidden()
    assert ui_site.get(f"endpoints/{created['id']}")["send_offline"] is False

    asked = answer_dialogs(page, accept=True)
    page.get_by_role("link", name="Delivery log").click()
    page.wait_for_url("**/ui/deliveries")
    assert asked == []


def test_a_custom_header_set_in_the_page_arrives_at_the_receiver(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    created = ui_site.post("endpoints", {"url": receiver.url, "headers": {"X-Old": "1"}})
    ui_site.sign_in(page)
    rows = page.get_by_role("list", name="Request headers").get_by_role("listitem")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_label("Header name")).to_have_value("X-Old")

    page.get_by_role("button", name="Add header").click()
    expect(rows).to_have_count(2)
    rows.nth(1).get_by_label("Header name").fill("X-Crm-Token")
    rows.nth(1).get_by_label("Header value").fill("s3cret-token")
    rows.first.get_by_label("Header value").fill("2")  # edit
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    assert ui_site.get(f"endpoints/{created['id']}")["headers"] == {
        "X-Old": "2",
        "X-Crm-Token": "s3cret-token",
    }

    ingest(ui_site, "chat-with-headers")
    [received] = receiver.wait_for(1)
    assert received.header("x-crm-token") == "s3cret-token"
    assert received.header("x-old") == "2"

    page.get_by_role("button", name="Remove header X-Old").click()
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#dirty-note")).to_be_hidden()
    assert ui_site.get(f"endpoints/{created['id']}")["headers"] == {"X-Crm-Token": "s3cret-token"}

    # A header the API refuses is explained, and nothing is stored.
    page.get_by_role("button", name="Add header").click()
    rows.nth(1).get_by_label("Header name").fill("Content-Type")
    rows.nth(1).get_by_label("Header value").fill("text/plain")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("[data-error-for='headers']")).to_contain_text("Content-Type")
    assert ui_site.get(f"endpoints/{created['id']}")["headers"] == {"X-Crm-Token": "s3cret-token"}


def test_send_test_of_a_new_endpoint_saves_nothing_and_each_kind_can_be_chosen(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.sign_in(page)
    page.get_by_label("URL to post to").fill(receiver.url)
    page.get_by_label("Test payload").select_option("offline_message")
    page.get_by_role("button", name="Send test").click()
    result = page.get_by_role("region", name="Test result")
    expect(result).to_contain_text("Test offline message posted to")
    expect(result).to_contain_text("not saved")
    [offline] = receiver.wait_for(1)
    assert type(payload_from_dict(offline.document())) is OfflineMessageTranscript
    assert ui_site.get("endpoints")["items"] == []

    page.get_by_label("Test payload").select_option("start_event")
    page.get_by_role("button", name="Send test").click()
    expect(result).to_contain_text("Test start event posted to")
    start = receiver.wait_for(2)[1]
    assert type(payload_from_dict(start.document())) is StartEvent
    assert ui_site.get("endpoints")["items"] == []


def test_an_endpoint_shows_its_health_and_a_disabled_one_is_re_enabled_from_the_page(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    created = ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    receiver.reply(410, "gone")
    delivery_id = ingest(ui_site, "chat-gone")
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "held")

    ui_site.sign_in(page, f"/ui/settings?endpoint={created['id']}")
    health = page.get_by_role("region", name="Health")
    expect(health).to_contain_text("Disabled")
    expect(health).to_contain_text("Consecutive failures")
    page.get_by_role("button", name="Re-enable and send what was held").click()
    expect(page.locator("#reenable-status")).to_contain_text("held deliveries are being sent")
    ui_site.service.wait_for_status(ui_site.site_id, ui_site.auth, delivery_id, "succeeded")
    assert len(receiver.wait_for(2)) == 2
    assert ui_site.get(f"endpoints/{created['id']}")["enabled"] is True
    page.reload()
    page.locator("body[data-ready='true']").wait_for()
    expect(page.get_by_role("region", name="Health")).to_contain_text("Healthy")
    expect(page.get_by_role("region", name="Health")).to_contain_text("Success in 24 h")

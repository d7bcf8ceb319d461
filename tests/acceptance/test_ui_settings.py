"""The settings page in a real Chromium: sign in, endpoints, Olark's switches, Send test.

Every check that something was saved asks the JSON API, not the page, so a
page that only looks right fails.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect

from chathooks.wire import FORM_CONTENT_TYPE, send_test_transcript
from support.receiver import RecordingReceiver
from support.ui_site import UI_EGRESS_CIDRS, UiSite

#: A picture of the page for a person to look at, in the system's temporary folder.
SCREENSHOT = str(Path(tempfile.gettempdir()) / "chathooks-ui-settings.png")


def test_the_front_door_asks_to_sign_in_and_refuses_a_wrong_key(
    page: Page, ui_site: UiSite
) -> None:
    page.goto(ui_site.url("/"))
    page.wait_for_url("**/ui/signin?next=%2Fui%2Fsettings")
    page.get_by_label("Site ID").fill(ui_site.site_id)
    page.get_by_label("API key").fill("chsk_not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match a site")
    assert "/ui/signin" in page.url

    page.get_by_label("API key").fill(ui_site.api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/settings")
    expect(page.locator("#session-site")).to_have_text(ui_site.site_id)
    # A new site starts on an empty "URL to post to", like Olark's page.
    expect(page.get_by_role("heading", name="New endpoint")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/signin")
    page.goto(ui_site.url("/ui/deliveries"))
    page.wait_for_url("**/ui/signin?next=%2Fui%2Fdeliveries")


def test_a_new_endpoint_is_saved_with_its_switches_and_its_secret_is_shown_once(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.sign_in(page)
    page.get_by_label("URL to post to").fill(receiver.url)
    page.get_by_label("Send all events").check()
    page.get_by_role("button", name="Save").click()

    secret_box = page.get_by_label("Signing secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("whsec_")
    [endpoint] = ui_site.get("endpoints")["items"]
    assert endpoint["url"] == receiver.url
    assert endpoint["signed"] is True
    assert (endpoint["enabled"], endpoint["auto_send"], endpoint["send_offline"]) == (
        True,
        True,
        True,
    )
    assert endpoint["send_events"] is True
    expect(page.get_by_role("list", name="Endpoints")).to_contain_text(receiver.url)

    # The secret is not shown again once the page is left.
    page.reload()
    page.locator("body[data-ready='true']").wait_for()
    expect(page.get_by_label("Signing secret")).to_be_hidden()
    expect(page.get_by_label("URL to post to")).to_have_value(receiver.url)


def test_editing_url_switches_format_and_description_persists(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    created = ui_site.post("endpoints", {"url": receiver.url})
    ui_site.sign_in(page)
    expect(page.get_by_label("URL to post to")).to_have_value(receiver.url)

    new_url = receiver.url + "?token=s3cret&x=1"
    page.get_by_label("URL to post to").fill(new_url)
    page.get_by_label("Send all transcripts automatically").uncheck()
    page.get_by_label("Send offline messages").uncheck()
    page.get_by_label("Send all events").check()
    page.get_by_text("More options").click()
    page.get_by_label("Enabled").uncheck()
    page.get_by_label("Format").select_option("json")
    page.get_by_label("Description").fill("CRM <leads> & more")
    page.get_by_label("Sign requests (Standard Webhooks)").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()

    endpoint = ui_site.get(f"endpoints/{created['id']}")
    assert endpoint["url"] == new_url
    assert endpoint["auto_send"] is False
    assert endpoint["send_offline"] is False
    assert endpoint["send_events"] is True
    assert endpoint["enabled"] is False
    assert endpoint["format"] == "json"
    assert endpoint["description"] == "CRM <leads> & more"
    assert endpoint["signed"] is False

    # What the page shows after a reload is what was stored.
    page.reload()
    page.locator("body[data-ready='true']").wait_for()
    expect(page.get_by_label("URL to post to")).to_have_value(new_url)
    expect(page.get_by_label("Send all transcripts automatically")).not_to_be_checked()
    expect(page.get_by_label("Send offline messages")).not_to_be_checked()
    expect(page.get_by_label("Send all events")).to_be_checked()
    expect(page.get_by_label("Format")).to_have_value("json")
    # Untrusted text is shown as text, never parsed as HTML.
    expect(page.get_by_role("list", name="Endpoints")).to_contain_text("CRM <leads> & more")
    expect(page.get_by_role("list", name="Endpoints")).to_contain_text("off")

    # Signing again makes a new secret, shown once.
    page.get_by_text("More options").click()
    page.get_by_label("Sign requests (Standard Webhooks)").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Signing secret")).to_have_value(re.compile(r"^whsec_"))
    assert ui_site.get(f"endpoints/{created['id']}")["signed"] is True


def test_send_test_shows_the_receivers_integration_url_and_posts_the_test_transcript(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    ui_site.post("endpoints", {"url": receiver.url})
    ui_site.sign_in(page)
    page.get_by_role("button", name="Send test").click()

    result = page.get_by_role("region", name="Test result")
    expect(result).to_contain_text("Succeeded")
    expect(result).to_contain_text("HTTP 200")
    expect(result).to_contain_text(re.compile(r"\d+ ms|\d+\.\d s"))
    link = result.get_by_role("link", name=re.compile("crm.example"))
    expected_url = "https://crm.example/leads/NOTAREALTRANSCRIPT5LGcbVTa3hKBRB"
    expect(link).to_have_attribute("href", expected_url)
    expect(result.locator("pre")).to_contain_text('"integrationUrl"')

    [received] = receiver.wait_for(1)
    assert received.content_type == FORM_CONTENT_TYPE
    assert received.document() == send_test_transcript().to_wire()
    assert received.header("webhook-signature") is not None
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_send_test_tries_an_unsaved_url_leaves_the_stored_endpoint_and_shows_a_failure_as_text(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    """Send test used to save unsaved edits first; it now tests them and saves nothing."""
    created = ui_site.post("endpoints", {"url": "https://old.example/hook"})
    receiver.reply(500, '<img src=x onerror="window.pwned=1"> service down')
    ui_site.sign_in(page)
    page.get_by_label("URL to post to").fill(receiver.url)
    expect(page.locator("#dirty-note")).to_be_visible()
    page.get_by_role("button", name="Send test").click()

    result = page.get_by_role("region", name="Test result")
    expect(result).to_contain_text("Failed")
    expect(result).to_contain_text("HTTP 500")
    expect(result).to_contain_text(f"posted to {receiver.url} with the settings on screen")
    expect(result).to_contain_text("not saved")
    expect(result.locator("pre")).to_have_text('<img src=x onerror="window.pwned=1"> service down')
    assert page.evaluate("window.pwned") is None
    assert len(receiver.wait_for(1)) == 1
    assert ui_site.get(f"endpoints/{created['id']}")["url"] == "https://old.example/hook"
    # Still marked unsaved: the edit is on screen only.
    expect(page.locator("#dirty-note")).to_be_visible()
    expect(page.get_by_label("URL to post to")).to_have_value(receiver.url)


def test_an_api_validation_error_is_shown_next_to_the_url_field(
    page: Page, ui_site: UiSite
) -> None:
    ui_site.sign_in(page)
    url_field = page.get_by_label("URL to post to")
    url_field.fill("ftp://files.example/olark")
    page.get_by_role("button", name="Save").click()

    error = page.locator("#endpoint-url-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("http:// or https://")
    expect(url_field).to_have_attribute("aria-invalid", "true")
    expect(url_field).to_be_focused()
    assert ui_site.get("endpoints")["items"] == []

    url_field.fill("https://crm.example/olark")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Signing secret")).to_be_visible()
    expect(error).to_be_hidden()
    expect(url_field).not_to_have_attribute("aria-invalid", "true")
    assert [e["url"] for e in ui_site.get("endpoints")["items"]] == ["https://crm.example/olark"]


def test_endpoints_can_be_added_switched_between_and_deleted(
    page: Page, ui_site: UiSite, receiver: RecordingReceiver
) -> None:
    first = ui_site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    ui_site.sign_in(page)
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_label("URL to post to")).to_have_value("")
    page.get_by_label("URL to post to").fill("https://helpdesk.example/olark")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Signing secret")).to_be_visible()
    endpoints = page.get_by_role("list", name="Endpoints")
    expect(endpoints.get_by_role("button")).to_have_count(2)

    endpoints.get_by_role("button", name=re.compile("CRM")).click()
    expect(page.get_by_label("URL to post to")).to_have_value(receiver.url)
    page.get_by_role("button", name="Delete endpoint").click()
    page.get_by_role("button", name="Confirm delete").click()
    expect(endpoints.get_by_role("button")).to_have_count(1)
    remaining = [e["id"] for e in ui_site.get("endpoints")["items"]]
    assert first["id"] not in remaining and len(remaining) == 1


def test_the_senders_egress_ranges_are_listed_for_allow_lists(page: Page, ui_site: UiSite) -> None:
    ui_site.sign_in(page)
    ranges = page.get_by_role("list", name="Sender egress CIDRs")
    expect(ranges.get_by_role("listitem")).to_have_text(UI_EGRESS_CIDRS)
    expect(page.get_by_text("Allow-list these on your receiver")).to_be_visible()

"""The settings page's alerts, in Chromium: the site's alert URL is set, changed and cleared
with unsaved changes marked and never lost without asking, and the alerts sent there are
listed with what they said, where they went, when, and how that went."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from support.pagecheck import check_page
from support.receiver import RecordingReceiver
from support.ui_site import UiSite, answer_dialogs, closing_asks_first, ingest, quick_breaker

#: A breaker that opens after three quick failures, so an alert is sent within seconds.
QUICK_BREAKER = quick_breaker(0.5)


@pytest.fixture
def alerting_site(ui_site_with: Callable[..., UiSite]) -> UiSite:
    return ui_site_with(**QUICK_BREAKER)


def _stored_alert_url(site: UiSite) -> str | None:
    response = site.service.client.get(f"/api/v1/sites/{site.site_id}", headers=site.auth)
    assert response.status_code == 200, response.text
    url: str | None = response.json()["alert_url"]
    return url


def _alerts_ready(page: Page) -> None:
    page.locator("#alerts[data-ready='true']").wait_for()


def test_the_alert_url_is_set_changed_and_cleared_from_the_page(
    page: Page, ui_site: UiSite
) -> None:
    ui_site.sign_in(page)
    _alerts_ready(page)
    field = page.get_by_label("Alert URL")
    dirty = page.locator("#alert-dirty-note")
    expect(field).to_have_value("")
    expect(page.get_by_text("No alerts sent to this address yet.")).to_be_visible()

    field.fill("http://127.0.0.1:9/alerts")
    expect(dirty).to_have_text("Unsaved changes")
    alerts = page.locator("#alerts")
    alerts.get_by_role("button", name="Apply alert URL").click()
    expect(page.locator("#alert-status")).to_have_text("Saved: alerts go to this address.")
    expect(dirty).to_be_hidden()
    expect(page.locator("#alert-secret-value")).to_have_value(re.compile(r"^whsec_"))
    assert _stored_alert_url(ui_site) == "http://127.0.0.1:9/alerts"

    field.fill("http://127.0.0.1:9/other-alerts")
    alerts.get_by_role("button", name="Apply alert URL").click()
    expect(dirty).to_be_hidden()
    assert _stored_alert_url(ui_site) == "http://127.0.0.1:9/other-alerts"

    field.fill("ftp://owner.example/alerts")
    alerts.get_by_role("button", name="Apply alert URL").click()
    error = page.locator("#alert-url-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("http")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert _stored_alert_url(ui_site) == "http://127.0.0.1:9/other-alerts"

    field.fill("")
    alerts.get_by_role("button", name="Apply alert URL").click()
    expect(page.locator("#alert-status")).to_have_text("Saved: no alerts are sent.")
    expect(page.locator("#alert-secret-box")).to_be_hidden()
    assert _stored_alert_url(ui_site) is None
    page.reload()
    page.locator("body[data-ready='true']").wait_for()
    _alerts_ready(page)
    expect(field).to_have_value("")


def test_an_unsaved_alert_url_asks_before_leaving(page: Page, ui_site: UiSite) -> None:
    ui_site.sign_in(page)
    _alerts_ready(page)
    page.get_by_label("Alert URL").fill("http://127.0.0.1:9/alerts")
    expect(page.locator("#alert-dirty-note")).to_be_visible()

    questions = answer_dialogs(page, accept=False)
    page.get_by_role("link", name="Delivery log").click()
    page.get_by_role("button", name="Sign out").click()
    assert len(questions) == 2 and all("alert URL" in q for q in questions), questions
    assert "/ui/settings" in page.url
    expect(page.get_by_label("Alert URL")).to_have_value("http://127.0.0.1:9/alerts")
    questions.stop()
    assert closing_asks_first(page)
    assert _stored_alert_url(ui_site) is None

    # Saved, the page lets the user go without a question.
    other = page.context.new_page()
    ui_site.sign_in(other)
    _alerts_ready(other)
    other.get_by_label("Alert URL").fill("http://127.0.0.1:9/alerts")
    other.locator("#alerts").get_by_role("button", name="Apply alert URL").click()
    expect(other.locator("#alert-dirty-note")).to_be_hidden()
    asked = answer_dialogs(other, accept=True)
    other.get_by_role("link", name="Delivery log").click()
    other.wait_for_url("**/ui/deliveries*")
    assert asked == []


def test_recent_alerts_show_what_was_sent_where_when_and_how_it_went(
    page: Page, alerting_site: UiSite, receiver: RecordingReceiver
) -> None:
    site = alerting_site
    receiver.answer_all(500, "broken")
    endpoint = site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    with RecordingReceiver() as owner:
        site.sign_in(page)
        _alerts_ready(page)
        page.get_by_label("Alert URL").fill(owner.url)
        page.locator("#alerts").get_by_role("button", name="Apply alert URL").click()
        expect(page.locator("#alert-status")).to_have_text("Saved: alerts go to this address.")

        ingest(site, "alerting-chat")
        owner.wait_for(1, timeout=20)
        # The alert reached its receiver; its delivery is marked done a moment later.
        [sent] = site.get("alerts")["items"]
        site.service.wait_for_status(site.site_id, site.auth, sent["id"], "succeeded")
        page.locator("#alerts").get_by_role("button", name="Refresh alerts").click()
        listed = page.locator("#recent-alerts > li")
        expect(listed).to_have_count(1)
        first = listed.first
        expect(first).to_contain_text("endpoint.failing")
        expect(first).to_contain_text("delivered (HTTP 200)")
        expect(first).to_contain_text(f"About {receiver.url}: HTTP 500")
        expect(first).to_contain_text(f"Sent to {owner.url}")
        when = first.locator("time")
        expect(when).to_have_attribute("title", re.compile(r"\d{4}"))
        assert endpoint["id"]
        expect(page.get_by_text("No alerts sent to this address yet.")).to_be_hidden()

        problems = check_page(page, "sender-settings-alerts")
        assert not problems, "\n".join(problems)

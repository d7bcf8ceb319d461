"""The operator console says why a delivery waits, in Chromium, with a receiver that fails:
while the endpoint's circuit breaker is open it is failing and tried next at the probe's
time; once the endpoint is disabled, the delivery is held until it is enabled again."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from support.pagecheck import check_page
from support.receiver import RecordingReceiver
from support.ui_site import UiSite, quick_breaker, send

#: The breaker opens after three quick failures, then probes only every 60 s: the notice
#: must name that probe's time, not the delivery's own retry, which is due much sooner.
SLOW_PROBES = quick_breaker(60.0)


@pytest.fixture
def breaker_site(ui_site_with: Callable[..., UiSite]) -> UiSite:
    return ui_site_with(**SLOW_PROBES)


def _time_of_day(page: Page, iso: str) -> str:
    """The time as the console writes it for today (the browser's locale and zone)."""
    text: str = page.evaluate(
        "(iso) => new Date(iso).toLocaleString(undefined,"
        " {hour: '2-digit', minute: '2-digit', second: '2-digit'})",
        iso,
    )
    return text


def test_a_delivery_behind_an_open_breaker_says_the_endpoint_is_failing_and_when(
    page: Page, breaker_site: UiSite, receiver: RecordingReceiver
) -> None:
    site = breaker_site
    receiver.answer_all(500, "down for maintenance")
    endpoint = site.post("endpoints", {"url": receiver.url, "description": "CRM"})
    site.sign_in(page, "/ui/console")
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("status").filter(has_text="Open")).to_be_visible()
    send(page, "Operator", "!lead wants a quote")

    chat = page.get_by_role("log", name="Chat log")
    notice = chat.locator(".notice-failed")
    expect(notice).to_contain_text("CRM is failing (3 failed attempts in a row)")
    health = site.get(f"endpoints/{endpoint['id']}")["health"]
    assert health["state"] == "failing" and health["next_probe_at"]
    expect(notice).to_contain_text(
        f"tried again only once it answers a probe: next at "
        f"{_time_of_day(page, health['next_probe_at'])}"
    )
    expect(notice).not_to_contain_text("Will retry")
    problems = check_page(page, "sender-console-breaker")
    assert not problems, "\n".join(problems)

    # Switched off: what waited for it is held, and the console says so.
    disabled = site.service.client.patch(
        f"/api/v1/sites/{site.site_id}/endpoints/{endpoint['id']}",
        json={"enabled": False},
        headers=site.auth,
    )
    assert disabled.status_code == 200, disabled.text
    held = chat.locator(".notice-held")
    expect(held).to_contain_text("to CRM is held: the endpoint is disabled")
    expect(held).to_contain_text("sent once the endpoint is enabled again")
    expect(chat.locator(".notice-failed")).to_have_count(0)

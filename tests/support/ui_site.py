"""A running sender service with one site, as the web UI tests use it.

The tests drive the pages in a browser and check the outcome through the
JSON API with the same site key, so these helpers do both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Dialog, Page, expect

from support.service import RunningService

#: Published at /api/v1/meta; the settings page lists them for receivers' allow-lists.
UI_EGRESS_CIDRS = ["203.0.113.0/24", "2001:db8:10::/48"]


@dataclass
class UiSite:
    """A running service with one site, and a browser tab that can sign in to it."""

    service: RunningService
    site_id: str
    api_key: str
    #: Tabs that signed in; closed before the service stops, so no open event
    #: stream keeps the server waiting on shutdown.
    pages: list[Page] = field(default_factory=list)

    @classmethod
    @contextmanager
    def on(cls, service: RunningService, name: str = "shop.example") -> Iterator[UiSite]:
        """A new site of ``service``; the tabs that signed in are closed at the end."""
        site_id, auth = service.create_site(name)
        site = cls(service, site_id, auth["Authorization"].removeprefix("Bearer "))
        try:
            yield site
        finally:
            for page in site.pages:
                page.close()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def url(self, path: str) -> str:
        return self.service.url + path

    def get(self, path: str) -> Any:
        """GET a path of this site's API (``"endpoints"`` → /api/v1/sites/<id>/endpoints)."""
        response = self.service.client.get(
            f"/api/v1/sites/{self.site_id}/{path}", headers=self.auth
        )
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: Any = None) -> Any:
        response = self.service.client.post(
            f"/api/v1/sites/{self.site_id}/{path}", json=body, headers=self.auth
        )
        assert response.status_code < 300, response.text
        return response.json()

    def sign_in(self, page: Page, path: str = "/ui/settings") -> None:
        """Sign in through the sign-in page, as a user does, and land on ``path``."""
        self.pages.append(page)
        page.goto(self.url(path))
        page.wait_for_url("**/ui/signin**")
        page.get_by_label("Site ID").fill(self.site_id)
        page.get_by_label("API key").fill(self.api_key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**{path}*")
        page.locator("body[data-ready='true']").wait_for()


def transcript(conversation_id: str) -> dict[str, Any]:
    """A small Olark transcript, as a site would hand it to chathooks."""
    return {
        "kind": "Conversation",
        "id": conversation_id,
        "tags": [],
        "items": [
            {
                "kind": "MessageToOperator",
                "body": "Do you ship to Norway?",
                "timestamp": "1473774821.411154",
                "nickname": "Visitor #7617",
            }
        ],
        "visitor": {"kind": "Visitor", "id": "v1", "fullName": "Ada"},
        "operators": {},
    }


def ingest(ui_site: UiSite, conversation_id: str) -> str:
    """Hand a transcript to the API; returns the id of its one delivery."""
    [delivery] = ui_site.post("transcripts", transcript(conversation_id))["deliveries"]
    return str(delivery["id"])


def send(page: Page, sender: str, text: str) -> None:
    """Type a chat line in the operator console as ``sender`` (Visitor or Operator)."""
    page.get_by_role("radio", name=sender).check()
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_label("Message", exact=True)).to_have_value("")


class Questions(list[str]):
    """The questions a page asked (``beforeunload`` for the browser's own), as answered."""

    def __init__(self, page: Page, *, accept: bool) -> None:
        super().__init__()
        self.page = page
        self.accept = accept
        page.on("dialog", self._answer)

    def _answer(self, dialog: Dialog) -> None:
        self.append("beforeunload" if dialog.type == "beforeunload" else dialog.message)
        if self.accept:
            dialog.accept()
        else:
            dialog.dismiss()

    def stop(self) -> None:
        """Answer no more (another handler may take over)."""
        self.page.remove_listener("dialog", self._answer)


def answer_dialogs(page: Page, *, accept: bool) -> Questions:
    """From now on, accept (leave) or dismiss (stay) every question the page asks."""
    return Questions(page, accept=accept)


def closing_asks_first(page: Page) -> bool:
    """Close the tab as a user would; True when the browser asked first and "Stay" kept it."""
    asked = answer_dialogs(page, accept=False)
    page.close(run_before_unload=True)
    deadline = time.monotonic() + 15
    while not asked and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    return asked == ["beforeunload"] and not page.is_closed()


def quick_breaker(probe_seconds: float) -> dict[str, Any]:
    """Service settings: a failing endpoint's breaker opens after three failed attempts 0.2 s
    apart, then lets a probe through every ``probe_seconds``; nothing is disabled."""
    return {
        "retry_schedule": [0.2] * 40,
        "breaker_threshold": 3,
        "breaker_probe_seconds": probe_seconds,
        "breaker_probe_max_seconds": probe_seconds,
        "disable_after": 3600.0,
    }

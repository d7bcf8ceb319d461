"""The UI's pages as HTTP resources: where they live, and the browser rules they ship with."""

from __future__ import annotations

import re

import pytest

from support.ui_site import UiSite

PAGES = ["/ui/signin", "/ui/settings", "/ui/deliveries", "/ui/console"]


def test_the_front_door_leads_to_the_settings_page(ui_site: UiSite) -> None:
    client = ui_site.service.client
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 307
    assert root.headers["location"] == "/ui/"
    home = client.get("/ui/", follow_redirects=False)
    assert home.headers["location"] == "/ui/settings"


@pytest.mark.parametrize("path", PAGES)
def test_pages_allow_only_their_own_scripts_and_load_nothing_from_elsewhere(
    ui_site: UiSite, path: str
) -> None:
    page = ui_site.service.client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # no inline script: the policy would block it anyway
    for reference in re.findall(r'(?:src|href)="([^"]*)"', page.text):
        assert reference.startswith(("/", "#", "data:")), reference
        static = reference.split("?")[0]
        if static.startswith("/ui/static/"):
            assert ui_site.service.client.get(static).status_code == 200, static


def test_static_files_are_served_and_unknown_ones_are_404(ui_site: UiSite) -> None:
    client = ui_site.service.client
    script = client.get("/ui/static/js/console.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/ui/static/js/nothing.js").status_code == 404
    assert client.get("/ui/static/%2e%2e/routes.py").status_code == 404

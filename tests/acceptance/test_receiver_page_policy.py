"""The receiver's pages in a real Chromium under their Content-Security-Policy.

The pages show whatever a sender posted, so they forbid every script and
load only the receiver's own stylesheet; the page still looks as designed,
and the browser reports no violation (the ``page`` fixture fails on any).
"""

from __future__ import annotations

import httpx
from playwright.sync_api import Page

from chathooks.receiver.app import ReceiverConfig
from chathooks.wire import encode_form
from integration.test_receive_app import FORM, conversation, serve


def test_a_transcript_page_runs_no_script_and_keeps_its_styles(page: Page, sqlite_url: str) -> None:
    hostile = (
        '<img src=x onerror="document.title=\'owned\'"><script>document.title="owned"</script>'
    )
    with serve(ReceiverConfig(database_url=sqlite_url)) as base:
        posted = httpx.post(
            f"{base}/webhook", content=encode_form(conversation("c1", hostile)), headers=FORM
        )
        assert posted.status_code == 200, posted.text
        for path in ("/", "/transcripts/c1", "/transcripts/missing"):
            response = page.goto(base + path)
            assert response is not None
            policy = response.headers["content-security-policy"]
            assert "default-src 'none'" in policy
            assert "script-src" not in policy  # so no script of any origin runs
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(246, 248, 250)"  # receiver.css applied
            assert page.title() != "owned"
        page.goto(base + "/transcripts/c1")
        assert "onerror" in page.inner_text("main")  # shown as text, not run

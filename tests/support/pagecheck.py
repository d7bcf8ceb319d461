"""Checks every page of the web UI must pass, whatever it shows.

- **axe-core** (from npm, pinned in ``package-lock.json``) is injected into the
  page and run; a serious or critical violation fails the test with its rule,
  its help text and the elements at fault.
- **No page scroll sideways** at a phone's width: ``scrollWidth`` of the
  document is at most the viewport's; wide tables scroll inside their own box.
- **Screenshots** for a person to look at: with ``CHATHOOKS_SCREENSHOTS=<folder>``
  each checked page is saved there at 1280 and 400 px wide.

axe-core is installed by ``make test`` (``npm ci``). Without it the tests
skip with the reason shown, and fail in CI (``CHATHOOKS_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: The widths a support team works at: a desktop, and a phone.
WIDE, NARROW = 1280, 400
#: Violations at these levels fail; "minor" and "moderate" are left to review.
BLOCKING = ("serious", "critical")


def axe_source() -> str:
    """The axe-core script, or a skip (a failure in CI) saying how to install it."""
    if not AXE.exists():
        unavailable(f"axe-core is not installed at {AXE} (run `npm ci` in the repository)")
    return AXE.read_text(encoding="utf-8")


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    # The pages' Content-Security-Policy forbids inline script, so the source goes in as
    # an evaluated string through the DevTools protocol, which the policy does not govern.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const results = await window.axe.run(document, { resultTypes: ["violations"] });
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
            }));
        }"""
    )
    violations: list[dict[str, Any]] = result
    return [v for v in violations if v["impact"] in BLOCKING]


def page_width(page: Page) -> int:
    width: int = page.evaluate("() => document.documentElement.scrollWidth")
    return width


def check_page(page: Page, name: str) -> list[str]:
    """Run every check at both widths; returns what failed (empty when the page is fine).

    Leaves the page at its original viewport size.
    """
    problems: list[str] = []
    original = page.viewport_size or {"width": WIDE, "height": 900}
    try:
        for width in (WIDE, NARROW):
            page.set_viewport_size({"width": width, "height": original["height"]})
            # A layout pass after the resize before measuring.
            page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r(null)))")
            save_screenshot(page, f"{name}-{width}")
            if width == NARROW and (scroll := page_width(page)) > NARROW:
                problems.append(f"{name}: the page is {scroll} px wide at {NARROW} px")
            for violation in accessibility_violations(page):
                problems.append(
                    f"{name} at {width} px: axe {violation['impact']} {violation['id']}:"
                    f" {violation['help']} ({', '.join(violation['nodes'])})"
                )
    finally:
        page.set_viewport_size(original)
    return problems


def save_screenshot(page: Page, name: str) -> None:
    """Save the whole page when ``CHATHOOKS_SCREENSHOTS`` names a folder."""
    folder = os.environ.get("CHATHOOKS_SCREENSHOTS", "")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    page.screenshot(path=str(Path(folder) / f"{safe}.png"), full_page=True)

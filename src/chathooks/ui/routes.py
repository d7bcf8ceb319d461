"""Routes of the web UI: the page shells under ``/ui/`` and their static files.

Every page is the same kind of thing: a template with no site data in it, and
a script that asks the JSON API for the data with the key the user signed in
with. That keeps authorization in one place (the API) and means the server
never renders untrusted payload text into HTML; the scripts only ever insert
it as text nodes. The Content-Security-Policy below makes that a rule the
browser enforces: no inline script, nothing loaded from another origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from chathooks import __version__

__all__ = ["PAGES", "router"]

_HERE = Path(__file__).resolve().parent
STATIC_DIR = _HERE / "static"
TEMPLATES_DIR = _HERE / "templates"

#: What the pages may load and talk to: only this origin. ``connect-src 'self'``
#: covers fetch() and the EventSource of the console.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

#: Sent with every page. ``no-referrer`` keeps our URLs out of the logs of the CRMs
#: an operator opens from an ``integrationUrl`` link.
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Page:
    """One page of the UI: where it lives, its title and the script that runs it."""

    slug: str
    title: str
    script: str
    #: Shown in the navigation bar (the sign-in page is not).
    in_nav: bool = True


PAGES: dict[str, Page] = {
    page.slug: page
    for page in (
        Page("settings", "Webhook settings", "settings.js"),
        Page("deliveries", "Delivery log", "deliveries.js"),
        Page("console", "Operator console", "console.js"),
        Page("signin", "Sign in", "signin.js", in_nav=False),
    )
}

router = APIRouter(include_in_schema=False)
router.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def _render(request: Request, page: Page) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        f"{page.slug}.html",
        {
            "page": page,
            "nav": [p for p in PAGES.values() if p.in_nav],
            "version": __version__,
        },
    )
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/")
async def root() -> Response:
    """The service's front door is the UI; API clients use ``/api/v1/...`` directly."""
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
@router.get("/ui/")
async def ui_home() -> Response:
    """Settings are where a new user starts (the scripts send them to sign in first)."""
    return RedirectResponse("/ui/settings", status_code=307)


@router.get("/ui/signin", response_class=HTMLResponse)
async def signin_page(request: Request) -> HTMLResponse:
    return _render(request, PAGES["signin"])


@router.get("/ui/settings", response_class=HTMLResponse)
async def settings_page(request: Request) -> HTMLResponse:
    return _render(request, PAGES["settings"])


@router.get("/ui/deliveries", response_class=HTMLResponse)
async def deliveries_page(request: Request) -> HTMLResponse:
    return _render(request, PAGES["deliveries"])


@router.get("/ui/console", response_class=HTMLResponse)
async def console_page(request: Request) -> HTMLResponse:
    return _render(request, PAGES["console"])

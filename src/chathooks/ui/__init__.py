"""The operator web UI: settings, delivery log and a console to try conversations.

The pages are static shells rendered once by the server; plain JavaScript
modules fill them from the public JSON API with the site's key, so the UI can
do nothing the API would not let the same key do.
"""

from __future__ import annotations

from chathooks.ui.routes import router

__all__ = ["router"]

"""The API's OpenAPI document, as a contract: the error bodies it really answers.

FastAPI describes every 422 as its own ``{"detail": [...]}``, but chathooks
answers every error as :class:`~chathooks.api.errors.ErrorBody`
(``{"error", "field", "message"}``). :func:`contract` builds the document from
the routes, then gives each operation the error statuses it can answer, each
with that body and an example; operation ids are ``<tag>_<function>`` and every
tag has a description.

The document is committed as ``docs/openapi.json``; a test fails when the code
and the file disagree, and ``make openapi`` (``python -m chathooks.api.openapi``)
writes it again. There is no ``/docs`` page: Swagger UI came from a CDN (blank
without internet), and the Swagger UI that can be installed from PyPI with its
assets (``swagger-ui-bundle``, 4.15) cannot render OpenAPI 3.1, which FastAPI
writes. ``/openapi.json`` and the committed file load in any OpenAPI viewer.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from chathooks.api.errors import ErrorBody

__all__ = ["TAGS", "contract", "operation_id", "render"]

TAGS: list[dict[str, Any]] = [
    {
        "name": "sites",
        "description": "A site is one Olark account: its own API key, endpoints and deliveries. "
        "The admin key creates sites; a site's key sees only that site.",
    },
    {
        "name": "endpoints",
        "description": "Where a site's payloads are posted, with Olark's three switches "
        "(auto-send, offline messages, start events), the body format and the signing secret.",
    },
    {
        "name": "transcripts",
        "description": "Hand over a whole Olark payload; it is routed by the switches and "
        "queued before the 202.",
    },
    {
        "name": "conversations",
        "description": "Report chat events as they happen; chathooks applies Olark's rules "
        "(start events, !lead, completion, offline messages).",
    },
    {
        "name": "deliveries",
        "description": "The delivery log: every payload to every endpoint, its attempts, and "
        "sending it again.",
    },
    {"name": "service", "description": "Version, egress ranges, health and metrics."},
]

#: What each error status means here, and an example body.
_ERRORS: dict[int, tuple[str, dict[str, str | None]]] = {
    400: (
        "The request cannot be read: a payload that is not Olark's, a bad cursor or timestamp.",
        {"error": "invalid_json", "field": "data", "message": "data is not valid JSON"},
    ),
    401: (
        "No API key, or one chathooks does not know.",
        {
            "error": "unauthorized",
            "field": "authorization",
            "message": "send the API key as 'Authorization: Bearer <key>'",
        },
    ),
    403: (
        "The key is valid but may not do this (only the admin key creates sites).",
        {
            "error": "forbidden",
            "field": "authorization",
            "message": "only the admin key (CHATHOOKS_ADMIN_KEY) can do this; "
            "a site key opens its own site",
        },
    ),
    404: (
        "No such site, endpoint, delivery or conversation (or it is another site's).",
        {"error": "not_found", "field": "endpoint", "message": "endpoint 'ep_x' does not exist"},
    ),
    409: (
        "The conversation's state does not allow this, e.g. it has completed.",
        {
            "error": "conversation_closed",
            "field": "conversation",
            "message": "conversation 'c1' has completed; start a new one",
        },
    ),
    413: (
        "The body is larger than chathooks accepts.",
        {"error": "body_too_large", "field": "body", "message": "the body is over 1048576 bytes"},
    ),
    415: (
        "The Content-Type is neither Olark's form body nor JSON.",
        {
            "error": "unsupported_content_type",
            "field": "content-type",
            "message": "send application/x-www-form-urlencoded or application/json",
        },
    ),
    422: (
        "A field of the request is invalid; `field` is its path.",
        {"error": "validation_error", "field": "url", "message": "url: must be http or https"},
    ),
    503: (
        "The database is unreachable or busy; nothing was stored. Retry later.",
        {
            "error": "unavailable",
            "field": "database",
            "message": "the database is not available right now; nothing was stored, "
            "try again shortly",
        },
    ),
}


def operation_id(route: APIRoute) -> str:
    """``<tag>_<function>``, e.g. ``endpoints_create``: unique, stable, readable."""
    return f"{route.tags[0]}_{route.name}" if route.tags else route.name


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer.

    Every route answers 400 to a NUL in its path or query and 503 while the
    database is away; a body over its route's limit gets 413; a POST under a
    site takes an ``Idempotency-Key`` (409 while the first request runs, 422
    when the key was used with another body).
    """
    statuses = {400, 503}
    queries = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
    if queries or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(413)
    if path.startswith("/api/v1/sites"):
        statuses.add(401)
        if "{" in path:
            statuses.add(404)
        if path == "/api/v1/sites" and method == "post":
            statuses.add(403)
        if path.startswith("/api/v1/sites/{") and method == "post":
            statuses |= {409, 422}
    if path == "/metrics":
        statuses.add(401)
    if method in ("post", "patch") and ("/conversations" in path or "/offline-messages" in path):
        statuses.add(409)
    if path.endswith("/transcripts") and method == "post":
        statuses |= {413, 415}
    return sorted(statuses)


def contract(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app`` with chathooks' real error bodies."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
        tags=TAGS,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    reference = {"$ref": "#/components/schemas/ErrorBody"}
    for path, methods in document.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            # FastAPI's own 422 entry points at its {"detail"} schema, which is not what we send.
            fastapi_422 = {422} if "422" in responses else set()
            for status in sorted({*_statuses(path, method, operation), *fastapi_422}):
                description, example = _ERRORS[status]
                responses[str(status)] = {
                    "description": description,
                    "content": {"application/json": {"schema": reference, "example": example}},
                }
    return document


def render(document: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    from chathooks.api.app import create_app
    from chathooks.settings import Settings

    app = create_app(Settings(admin_key="chadm_openapi"), run_worker=False)
    sys.stdout.write(render(app.openapi()))


if __name__ == "__main__":
    main()

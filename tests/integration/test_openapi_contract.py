"""The OpenAPI document is a contract: committed, in step with the code, and true about errors."""

from __future__ import annotations

import json
from pathlib import Path

from chathooks.api.app import create_app
from chathooks.api.openapi import render
from chathooks.settings import Settings
from support.service import running_service

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def generated() -> str:
    app = create_app(Settings(admin_key="chadm_openapi"), run_worker=False)
    return render(app.openapi())


def test_the_committed_document_matches_the_code() -> None:
    assert COMMITTED.read_text() == generated(), (
        "docs/openapi.json is out of date with the routes; run 'make openapi' and commit it"
    )


def test_every_error_is_described_as_the_body_the_api_sends() -> None:
    document = json.loads(generated())
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert set(document["components"]["schemas"]["ErrorBody"]["properties"]) == {
        "error",
        "field",
        "message",
    }
    operation_ids = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            operation_ids.append(operation["operationId"])
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = response["content"]["application/json"]
                    assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (
                        path,
                        method,
                        status,
                    )
                    assert set(content["example"]) == {"error", "field", "message"}
    assert len(operation_ids) == len(set(operation_ids))
    assert "endpoints_create" in operation_ids
    assert all(tag.get("description") for tag in document["tags"])
    ingest = document["paths"]["/api/v1/sites/{site}/transcripts"]["post"]["responses"]
    assert {"400", "401", "404", "413", "415", "422", "503"} <= set(ingest)


def test_the_served_document_is_the_committed_one_and_errors_look_as_described(
    sqlite_url: str,
) -> None:
    with running_service(sqlite_url, run_worker=False) as service:
        served = service.client.get("/openapi.json").json()
        site, auth = service.create_site()
        invalid = service.client.post(
            f"/api/v1/sites/{site}/endpoints", json={"url": "ftp://x/"}, headers=auth
        )
        unauthorized = service.client.get(f"/api/v1/sites/{site}/endpoints")
        docs = service.client.get("/docs")
    assert served == json.loads(COMMITTED.read_text())
    assert invalid.status_code == 422
    assert set(invalid.json()) == {"error", "field", "message"}
    assert invalid.json()["field"] == "url"
    assert unauthorized.status_code == 401
    assert set(unauthorized.json()) == {"error", "field", "message"}
    assert docs.status_code == 404  # no CDN-loaded page; /openapi.json is the document
    assert "/openapi.json" in docs.json()["message"]

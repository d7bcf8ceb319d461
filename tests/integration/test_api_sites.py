"""Sites and endpoints over real HTTP: keys, CRUD, isolation between sites, clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chathooks.repository.ids import hash_key
from support.service import RunningService, running_service


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    with running_service(database_url, run_worker=False) as running:
        yield running


def test_admin_key_creates_sites_and_the_site_key_is_shown_once(service: RunningService) -> None:
    created = service.client.post(
        "/api/v1/sites", json={"name": "  shop.example  "}, headers=service.admin()
    )
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "shop.example"
    assert body["id"].startswith("site_")
    assert body["api_key"]
    assert body["created_at"].endswith("Z")

    own = {"Authorization": f"Bearer {body['api_key']}"}
    read = service.client.get(f"/api/v1/sites/{body['id']}", headers=own)
    assert read.status_code == 200
    # A new site sends no operational alerts until it sets an alert_url.
    assert read.json() == {**{k: body[k] for k in ("id", "name", "created_at")}, "alert_url": None}
    assert "api_key" not in read.json()

    listed = service.client.get("/api/v1/sites", headers=own).json()
    assert [site["id"] for site in listed["items"]] == [body["id"]]
    assert listed["next_cursor"] is None


def test_site_keys_are_stored_only_as_hashes(service: RunningService) -> None:
    import asyncio

    from sqlalchemy import select

    from chathooks.db.engine import create_engine
    from chathooks.db.tables import sites

    created = service.client.post(
        "/api/v1/sites", json={"name": "a"}, headers=service.admin()
    ).json()

    async def stored() -> list[str]:
        engine = create_engine(service.settings.database_url)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(select(sites.c.api_key_hash))).scalars())
        finally:
            await engine.dispose()

    assert asyncio.run(stored()) == [hash_key(created["api_key"])]


def test_creating_a_site_needs_the_admin_key(service: RunningService) -> None:
    _site, site_auth = service.create_site()

    missing = service.client.post("/api/v1/sites", json={"name": "x"})
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"

    wrong = service.client.post(
        "/api/v1/sites", json={"name": "x"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"

    by_site = service.client.post("/api/v1/sites", json={"name": "x"}, headers=site_auth)
    assert by_site.status_code == 403
    assert by_site.json()["error"] == "forbidden"


def test_admin_lists_sites_page_by_page(service: RunningService) -> None:
    ids = [service.create_site(f"site-{n}")[0] for n in range(3)]
    first = service.client.get("/api/v1/sites?limit=2", headers=service.admin()).json()
    second = service.client.get(
        f"/api/v1/sites?limit=2&cursor={first['next_cursor']}", headers=service.admin()
    ).json()
    assert [s["id"] for s in first["items"] + second["items"]] == ids
    assert second["next_cursor"] is None


def test_endpoint_lifecycle(service: RunningService) -> None:
    site, auth = service.create_site()
    base = f"/api/v1/sites/{site}/endpoints"

    created = service.client.post(
        base,
        json={"url": "https://crm.example.com/olark?token=abc", "description": "CRM"},
        headers=auth,
    )
    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["url"] == "https://crm.example.com/olark?token=abc"
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["signed"] is True
    expected_defaults = {
        "enabled": True,
        "auto_send": True,
        "send_offline": True,
        "send_events": False,
        "format": "form",
        "headers": {},
        "disabled_reason": None,
    }
    assert {k: endpoint[k] for k in expected_defaults} == expected_defaults

    shown = service.client.get(f"{base}/{endpoint['id']}", headers=auth).json()
    assert "secret" not in shown
    assert shown["signed"] is True

    changed = service.client.patch(
        f"{base}/{endpoint['id']}",
        json={"auto_send": False, "send_events": True, "format": "json", "secret": None},
        headers=auth,
    )
    assert changed.status_code == 200
    after = changed.json()
    assert (after["auto_send"], after["send_events"], after["format"], after["signed"]) == (
        False,
        True,
        "json",
        False,
    )
    assert after["url"] == endpoint["url"]  # untouched keys stay

    listed = service.client.get(base, headers=auth).json()
    assert [e["id"] for e in listed["items"]] == [endpoint["id"]]

    assert service.client.delete(f"{base}/{endpoint['id']}", headers=auth).status_code == 204
    gone = service.client.get(f"{base}/{endpoint['id']}", headers=auth)
    assert gone.status_code == 404
    assert gone.json()["error"] == "not_found"
    assert service.client.get(base, headers=auth).json()["items"] == []


def test_an_unsigned_endpoint_and_extra_headers(service: RunningService) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(
        site, auth, "http://crm.example.com/hook", secret=None, headers={"X-Token": "t0ken"}
    )
    assert endpoint["secret"] is None
    assert endpoint["signed"] is False
    assert endpoint["headers"] == {"X-Token": "t0ken"}


def test_endpoints_list_page_by_page(service: RunningService) -> None:
    site, auth = service.create_site()
    ids = [service.create_endpoint(site, auth, f"https://e{n}.example/")["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = service.client.get(
            f"/api/v1/sites/{site}/endpoints", params=params, headers=auth
        ).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def test_a_cursor_no_listing_handed_out_is_refused_naming_it(service: RunningService) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, "https://e.example/")
    # A site id is no cursor: cursors are opaque, and one that was not handed out
    # is refused rather than read as a place to start.
    for path, headers in (
        ("/api/v1/sites", service.admin()),
        (f"/api/v1/sites/{site}/endpoints", auth),
    ):
        for cursor in (site, "not-a-cursor"):
            response = service.client.get(path, params={"cursor": cursor}, headers=headers)
            assert response.status_code == 422, (path, cursor, response.text)
            assert response.json()["field"] == "cursor"


def test_a_site_key_cannot_reach_another_site(service: RunningService) -> None:
    mine, my_auth = service.create_site("mine")
    theirs, their_auth = service.create_site("theirs")
    their_endpoint = service.create_endpoint(theirs, their_auth, "https://theirs.example/")
    ep = their_endpoint["id"]

    attempts = [
        ("GET", f"/api/v1/sites/{theirs}", None),
        ("GET", f"/api/v1/sites/{theirs}/endpoints", None),
        ("POST", f"/api/v1/sites/{theirs}/endpoints", {"url": "https://evil.example/"}),
        ("GET", f"/api/v1/sites/{theirs}/endpoints/{ep}", None),
        ("PATCH", f"/api/v1/sites/{theirs}/endpoints/{ep}", {"enabled": False}),
        ("DELETE", f"/api/v1/sites/{theirs}/endpoints/{ep}", None),
        ("POST", f"/api/v1/sites/{theirs}/endpoints/{ep}/test", None),
        ("POST", f"/api/v1/sites/{theirs}/transcripts", {"id": "x", "items": []}),
        ("GET", f"/api/v1/sites/{theirs}/deliveries", None),
        # Their endpoint through my own site's path is not found either.
        ("GET", f"/api/v1/sites/{mine}/endpoints/{ep}", None),
        ("PATCH", f"/api/v1/sites/{mine}/endpoints/{ep}", {"enabled": False}),
        ("DELETE", f"/api/v1/sites/{mine}/endpoints/{ep}", None),
    ]
    for method, path, body in attempts:
        response = service.client.request(method, path, json=body, headers=my_auth)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "not_found"

    # The same answer as for a site that does not exist at all.
    assert service.client.get("/api/v1/sites/site_nope", headers=my_auth).status_code == 404
    still = service.client.get(f"/api/v1/sites/{theirs}/endpoints/{ep}", headers=their_auth)
    assert still.json()["enabled"] is True

    # The admin key opens every site.
    assert service.client.get(f"/api/v1/sites/{theirs}", headers=service.admin()).status_code == 200
    assert service.client.get(f"/api/v1/sites/{mine}", headers=service.admin()).status_code == 200
    assert service.client.get("/api/v1/sites/site_nope", headers=service.admin()).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "hint"),
    [
        ({"url": "ftp://crm.example/"}, "url", "http"),
        ({"url": "https:///no-host"}, "url", "host"),
        ({"url": "not a url"}, "url", ""),
        ({}, "url", "required"),
        ({"url": "https://ok.example/", "format": "xml"}, "format", ""),
        ({"url": "https://ok.example/", "headers": {"Content-Type": "text/plain"}}, "headers", ""),
        ({"url": "https://ok.example/", "headers": {"webhook-id": "x"}}, "headers", ""),
        ({"url": "https://ok.example/", "headers": {"Connection": "close"}}, "headers", ""),
        ({"url": "https://ok.example/", "headers": {"Upgrade": "h2c"}}, "headers", "hop-by-hop"),
        ({"url": "https://ok.example/", "secret": "whsec_%%%"}, "secret", "base64"),
        ({"url": "https://ok.example/", "enabled": "perhaps"}, "enabled", ""),
        ({"url": "https://ok.example/", "autosend": False}, "autosend", ""),
        ({"url": "https://ok.example/", "max_in_flight": 0}, "max_in_flight", "1"),
        ({"url": "https://ok.example/", "max_in_flight": 65}, "max_in_flight", "64"),
        ({"url": "https://ok.example/", "max_in_flight": "many"}, "max_in_flight", ""),
    ],
)
def test_bad_endpoint_settings_are_refused_naming_the_field(
    service: RunningService, body: dict[str, object], field: str, hint: str
) -> None:
    site, auth = service.create_site()
    response = service.client.post(f"/api/v1/sites/{site}/endpoints", json=body, headers=auth)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "validation_error"
    assert error["field"] == field
    assert hint in error["message"]
    assert service.client.get(f"/api/v1/sites/{site}/endpoints", headers=auth).json()["items"] == []


def test_bad_changes_are_refused_and_nothing_changes(service: RunningService) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(site, auth, "https://ok.example/")
    path = f"/api/v1/sites/{site}/endpoints/{endpoint['id']}"
    for body, field in [
        ({"enabled": None}, "enabled"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"headers": {"Host": "other.example"}}, "headers"),
        ({"max_in_flight": 0}, "max_in_flight"),
    ]:
        response = service.client.patch(path, json=body, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    assert service.client.get(path, headers=auth).json()["url"] == "https://ok.example/"


def test_an_endpoint_sets_its_own_cap_on_requests_in_flight(service: RunningService) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(site, auth, "https://ok.example/", max_in_flight=2)
    assert endpoint["max_in_flight"] == 2
    path = f"/api/v1/sites/{site}/endpoints/{endpoint['id']}"
    changed = service.client.patch(path, json={"max_in_flight": 64}, headers=auth)
    assert changed.json()["max_in_flight"] == 64
    back = service.client.patch(path, json={"max_in_flight": None}, headers=auth)
    assert back.json()["max_in_flight"] is None  # the service default again


def test_bad_site_requests(service: RunningService) -> None:
    blank = service.client.post("/api/v1/sites", json={"name": "  "}, headers=service.admin())
    assert blank.status_code == 422
    assert blank.json()["field"] == "name"
    not_json = service.client.post(
        "/api/v1/sites",
        content=b"{name",
        headers={**service.admin(), "content-type": "application/json"},
    )
    assert not_json.status_code == 422
    assert not_json.json()["field"] == "body"
    bad_limit = service.client.get("/api/v1/sites?limit=0", headers=service.admin())
    assert bad_limit.status_code == 422
    assert bad_limit.json()["field"] == "limit"

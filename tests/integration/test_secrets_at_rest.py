"""No signing secret or key lies in the database in plain text, including after an upgrade."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import insert, select, text

from chathooks.db.engine import create_engine
from chathooks.db.migrate import alembic_config, upgrade_async
from chathooks.db.tables import endpoints, idempotency_keys, metadata
from chathooks.repository.endpoints import get_endpoint
from chathooks.sealing import is_sealed
from support.receiver import RecordingReceiver
from support.service import ADMIN_KEY, RunningService, running_service

PLAIN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#: Site ``s``, inserted in SQL that every schema version takes.
OLD_SITE = text("INSERT INTO sites (id, name, api_key_hash, created_at) VALUES ('s', 'S', 'h', 0)")
#: A receiver's own token, sent as an endpoint's request header.
RECEIVER_TOKEN = "rcv_tok_8Hq2LmZ4xWp7Ns1Vb6Kd"


def forms_of(secret: str) -> list[bytes]:
    """What would betray a secret in the file: its text, its base64 part, its key bytes."""
    encoded = secret.removeprefix("whsec_")
    found = [secret.encode(), encoded.encode()]
    if secret.startswith("whsec_"):
        found.append(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
    return found


def database_bytes(path: Path) -> bytes:
    """The database file and what SQLite keeps beside it (WAL, journal), not the key file."""
    beside = [path.with_name(path.name + tail) for tail in ("", "-wal", "-shm", "-journal")]
    return b"".join(p.read_bytes() for p in beside if p.exists())


def use_every_secret(
    service: RunningService, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> tuple[str, list[str], list[str]]:
    """Make every kind of secret and key the service keeps, the way users do; the id of the
    endpoint, the secrets, and the keys."""
    site, auth = service.create_site()
    once = {**auth, "Idempotency-Key": "create-1"}
    created = service.client.post(
        f"/api/v1/sites/{site}/endpoints",
        json={"url": receiver.url, "headers": {"X-Receiver-Token": "placeholder"}},
        headers=once,
    )
    assert created.status_code == 201
    endpoint = created.json()
    changed = service.client.patch(
        f"/api/v1/sites/{site}/endpoints/{endpoint['id']}",
        json={"headers": {"Authorization": f"Bearer {RECEIVER_TOKEN}"}},
        headers=auth,
    )
    assert changed.json()["headers"] == {"Authorization": f"Bearer {RECEIVER_TOKEN}"}
    rotated = service.client.post(
        f"/api/v1/sites/{site}/endpoints/{endpoint['id']}/rotate-secret",
        headers={**auth, "Idempotency-Key": "rotate-1"},
    ).json()
    alerts = service.client.patch(
        f"/api/v1/sites/{site}", json={"alert_url": receiver.url + "/alerts"}, headers=auth
    ).json()
    [delivery] = service.post_transcript(site, auth, transcript)
    service.wait_for_status(site, auth, delivery, "succeeded")
    # The worker opened the sealed header and sent it as the endpoint says.
    assert receiver.wait_for(1)[0].header("authorization") == f"Bearer {RECEIVER_TOKEN}"
    secrets = [endpoint["secret"], rotated["secret"], alerts["alert_secret"]]
    assert all(s and s.startswith("whsec_") for s in secrets)
    keys = [auth["Authorization"].removeprefix("Bearer "), ADMIN_KEY, RECEIVER_TOKEN]
    return endpoint["id"], secrets, keys


def assert_nothing_plain(stored: bytes, secrets: list[str], keys: list[str]) -> None:
    for secret in secrets:
        for form in forms_of(secret):
            assert form not in stored, f"a form of {secret} is stored"
    for key in keys:
        assert key.encode() not in stored


def test_no_secret_or_key_is_in_the_sqlite_file_in_plain_text(
    tmp_path: Path, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    path = tmp_path / "chathooks.db"
    with running_service(f"sqlite:///{path}") as service:
        endpoint_id, secrets, keys = use_every_secret(service, receiver, transcript)

    stored = database_bytes(path)
    assert endpoint_id.encode() in stored  # the file is the one the service wrote
    assert_nothing_plain(stored, secrets, keys)


def test_no_secret_or_key_is_in_any_postgresql_row_in_plain_text(
    postgres_url: str, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    with running_service(postgres_url) as service:
        endpoint_id, secrets, keys = use_every_secret(service, receiver, transcript)

    async def every_row() -> bytes:
        engine = create_engine(postgres_url)
        try:
            async with engine.connect() as connection:
                rows = [
                    text_of_row
                    for table in metadata.sorted_tables
                    for text_of_row in (
                        await connection.execute(
                            text(f'SELECT CAST(t AS TEXT) FROM "{table.name}" AS t')
                        )
                    ).scalars()
                ]
        finally:
            await engine.dispose()
        return "\n".join(rows).encode()

    stored = asyncio.run(every_row())
    assert endpoint_id.encode() in stored
    assert_nothing_plain(stored, secrets, keys)


def test_migrating_seals_the_plaintext_secrets_an_older_version_stored(database_url: str) -> None:
    """A database at r0006 (secrets in plain text) keeps working with the same secrets."""
    command.upgrade(alembic_config(database_url), "r0006")

    async def fill_upgrade_and_read() -> tuple[Any, Any, str | None]:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(OLD_SITE)
                await connection.execute(
                    text(
                        "INSERT INTO endpoints (id, site_id, url, description, enabled,"
                        " auto_send, send_offline, send_events, format, headers, created_at,"
                        " updated_at, role, secret) VALUES ('e', 's', 'http://x', '', true, true,"
                        " true, false, 'form', '{}', 0, 0, 'delivery', :secret)"
                    ),
                    {"secret": PLAIN_SECRET},
                )
                await connection.execute(
                    text(
                        "INSERT INTO idempotency_keys (site_id, key, request_hash, status_code,"
                        " response_body, created_at) VALUES ('s', 'k', 'x', 201, :body, 0)"
                    ),
                    {"body": f'{{"secret": "{PLAIN_SECRET}"}}'},
                )
            await upgrade_async(database_url)
            async with engine.connect() as connection:
                stored = (await connection.execute(select(endpoints.c.secret))).scalar_one()
                answer = (
                    await connection.execute(select(idempotency_keys.c.response_body))
                ).scalar_one()
                found = await get_endpoint(connection, "s", "e")
            return stored, answer, None if found is None else found.secret
        finally:
            await engine.dispose()

    stored, answer, opened = asyncio.run(fill_upgrade_and_read())
    assert is_sealed(stored) and PLAIN_SECRET not in stored
    assert is_sealed(answer) and PLAIN_SECRET not in answer
    assert opened == PLAIN_SECRET

    # Going back to r0006 gives the older version its plain secrets again.
    command.downgrade(alembic_config(database_url), "r0006")

    async def read_plain() -> tuple[Any, Any]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                secret = (await connection.execute(text("SELECT secret FROM endpoints"))).scalar()
                body = (
                    await connection.execute(text("SELECT response_body FROM idempotency_keys"))
                ).scalar()
            return secret, body
        finally:
            await engine.dispose()

    assert asyncio.run(read_plain()) == (PLAIN_SECRET, f'{{"secret": "{PLAIN_SECRET}"}}')


def test_migrating_seals_the_plain_header_values_an_older_version_stored(
    database_url: str,
) -> None:
    """At r0009 an endpoint's headers were plain JSON; r0010 seals each value, and back."""
    command.upgrade(alembic_config(database_url), "r0009")
    plain = {"Authorization": f"Bearer {RECEIVER_TOKEN}", "X-Team": "support"}

    async def fill_upgrade_and_read() -> tuple[Any, dict[str, str] | None]:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(OLD_SITE)
                await connection.execute(
                    insert(endpoints).values(
                        id="e",
                        site_id="s",
                        url="http://x",
                        headers=plain,
                        created_at=0,
                        updated_at=0,
                    )
                )
            await upgrade_async(database_url)
            async with engine.connect() as connection:
                stored = (await connection.execute(select(endpoints.c.headers))).scalar_one()
                found = await get_endpoint(connection, "s", "e")
            return stored, None if found is None else found.headers
        finally:
            await engine.dispose()

    stored, opened = asyncio.run(fill_upgrade_and_read())
    assert set(stored) == set(plain)
    assert all(is_sealed(value) for value in stored.values())
    assert RECEIVER_TOKEN not in str(stored)
    assert opened == plain

    command.downgrade(alembic_config(database_url), "r0009")

    async def read_plain() -> Any:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                return (await connection.execute(select(endpoints.c.headers))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(read_plain()) == plain

"""Fixtures shared by every test layer: databases on both backends, a loopback receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.fixtures import OLARK_FIXTURES
from support.receiver import RecordingReceiver
from support.services import fresh_postgres_database

FIXTURES = OLARK_FIXTURES


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The real Olark payloads the wire format is checked against."""
    if not FIXTURES.is_dir():
        pytest.fail(f"the Olark fixtures are missing: {FIXTURES}")
    return FIXTURES


@pytest.fixture
def transcript(fixtures_dir: Path) -> dict[str, Any]:
    """A real transcript as Olark posts it (conversation id ``'kzrL...'``)."""
    document: dict[str, Any] = json.loads(
        (fixtures_dir / "php-consumer-real-transcript-1.json").read_text()
    )
    return document


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database (``postgresql://...``) for this test."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chathooks.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chathooks.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture
def receiver() -> Iterator[RecordingReceiver]:
    """A real HTTP endpoint on 127.0.0.1 that records every request."""
    with RecordingReceiver() as recording:
        yield recording

"""``CHATHOOKS_SQLITE_SYNCHRONOUS``: NORMAL by default, FULL when asked, nothing else."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from chathooks.db.engine import create_engine
from chathooks.settings import Settings

#: What ``PRAGMA synchronous`` reads back as.
NORMAL, FULL = 1, 2


async def synchronous_of(url: str, **kwargs: str) -> int:
    engine = create_engine(url, inline=True, **kwargs)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("PRAGMA synchronous"))).scalar_one())
    finally:
        await engine.dispose()


async def test_sqlite_commits_are_synced_in_full_only_when_asked(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await synchronous_of(sqlite_url) == NORMAL
    monkeypatch.setenv("CHATHOOKS_SQLITE_SYNCHRONOUS", "full")
    settings = Settings()
    assert settings.sqlite_synchronous == "full"
    assert await synchronous_of(sqlite_url, synchronous=settings.sqlite_synchronous) == FULL


def test_an_unknown_synchronous_setting_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATHOOKS_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ValidationError, match="sqlite_synchronous"):
        Settings()
    with pytest.raises(ValueError, match="synchronous must be one of normal, full"):
        create_engine("sqlite:///x.db", synchronous="off")

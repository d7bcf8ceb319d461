"""API keys are looked up in the database once per key at a time, however many requests ask.

A busy site's key is cached for a few seconds; when the entry expires, every
request then in flight used to ask the database for the same key. Requests
with the same key at once now share one lookup, and one that gives up does
not fail the others'.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from chathooks.api.auth import Authenticator
from chathooks.db.engine import create_engine
from support.service import running_service


def _site_key(database_url: str) -> tuple[str, str]:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
    return site, auth["Authorization"].split()[1]


def test_requests_with_one_key_at_once_share_one_lookup(database_url: str) -> None:
    site, key = _site_key(database_url)

    async def scenario() -> tuple[list[Any], list[Any], int, int]:
        engine = create_engine(database_url)
        lookups = 0

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            nonlocal lookups
            if "api_key_hash" in statement:
                lookups += 1

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            authenticator = Authenticator(engine, admin_key=None, cache_seconds=0.0)
            # One caller gives up at once; the others still get their answer.
            impatient = asyncio.ensure_future(authenticator.owner(key))
            together = asyncio.gather(*(authenticator.owner(key) for _ in range(20)))
            await asyncio.sleep(0)
            impatient.cancel()
            owners = await together
            first = lookups
            unknown = await asyncio.gather(*(authenticator.owner("chk_nope") for _ in range(5)))
            return owners, unknown, first, lookups - first
        finally:
            await engine.dispose()

    owners, unknown, lookups, unknown_lookups = asyncio.run(scenario())
    assert [owner.site_id for owner in owners] == [site] * 20
    assert lookups == 1
    assert unknown == [None] * 5
    assert unknown_lookups == 1

"""Sites and the API keys that open them.

A key is shown once, when it is made, and stored only as its SHA-256: a copy
of the database does not let anyone post transcripts or read deliveries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import insert, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.tables import admin_keys, sites
from chathooks.paging import decode_cursor, encode_cursor
from chathooks.repository.ids import hash_key, new_id, new_key
from chathooks.repository.validation import check_site_name

__all__ = [
    "ADMIN_KEY_PREFIX",
    "SITE_KEY_PREFIX",
    "KeyOwner",
    "NewSite",
    "Site",
    "create_admin_key",
    "create_site",
    "get_site",
    "has_admin_key",
    "key_owner",
    "list_sites",
]

ADMIN_KEY_PREFIX = "chadm"
SITE_KEY_PREFIX = "chsk"


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class NewSite:
    """A site just created, with the only copy of its API key."""

    site: Site
    api_key: str


@dataclass(frozen=True)
class KeyOwner:
    """Who holds an API key: an administrator (``site_id`` None) or one site."""

    site_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.site_id is None


async def create_site(connection: AsyncConnection, name: str) -> NewSite:
    """A new site and its API key; raises :class:`ValueError` for a bad name."""
    site = Site(id=new_id("site"), name=check_site_name(name), created_at=time.time())
    api_key = new_key(SITE_KEY_PREFIX)
    await connection.execute(
        insert(sites).values(
            id=site.id, name=site.name, api_key_hash=hash_key(api_key), created_at=site.created_at
        )
    )
    return NewSite(site=site, api_key=api_key)


async def get_site(connection: AsyncConnection, site_id: str) -> Site | None:
    row = (
        await connection.execute(
            select(sites.c.id, sites.c.name, sites.c.created_at).where(sites.c.id == site_id)
        )
    ).first()
    return None if row is None else Site(id=row.id, name=row.name, created_at=row.created_at)


async def list_sites(
    connection: AsyncConnection, *, limit: int, cursor: str | None = None
) -> tuple[list[Site], str | None]:
    """Sites oldest first; ``cursor`` is the ``next_cursor`` of the previous page."""
    query = select(sites.c.id, sites.c.name, sites.c.created_at).order_by(sites.c.id)
    if cursor:
        query = query.where(sites.c.id > decode_cursor(cursor, str)[0])
    rows = (await connection.execute(query.limit(limit + 1))).all()
    items = [Site(id=r.id, name=r.name, created_at=r.created_at) for r in rows[:limit]]
    return items, (encode_cursor(items[-1].id) if len(rows) > limit else None)


async def key_owner(connection: AsyncConnection, api_key: str) -> KeyOwner | None:
    """Who ``api_key`` belongs to, in one query over site keys and stored admin keys."""
    digest = hash_key(api_key)
    query = union_all(
        select(sites.c.id.label("site_id")).where(sites.c.api_key_hash == digest),
        select(literal(None, sites.c.id.type).label("site_id")).where(
            admin_keys.c.key_hash == digest
        ),
    )
    row = (await connection.execute(query)).first()
    return None if row is None else KeyOwner(site_id=row.site_id)


async def has_admin_key(connection: AsyncConnection) -> bool:
    return (await connection.execute(select(admin_keys.c.key_hash).limit(1))).first() is not None


async def create_admin_key(connection: AsyncConnection) -> str:
    """A new admin key; its hash is stored so it keeps working across restarts."""
    key = new_key(ADMIN_KEY_PREFIX)
    await connection.execute(
        insert(admin_keys).values(key_hash=hash_key(key), created_at=time.time())
    )
    return key

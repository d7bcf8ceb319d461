"""Bearer keys: an admin key creates sites, a site key opens only its own site.

A request with another site's key gets 404, exactly as for a site that does
not exist, so keys cannot be used to probe which site ids exist.

Key lookups are cached for a few seconds: the ingest path is hot, and a key
never changes owner (keys are not reassigned, only new ones are made).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Match

from chathooks.api.errors import ApiError, not_found, unauthorized
from chathooks.http_limits.body import Refusal
from chathooks.repository.ids import hash_key
from chathooks.repository.sites import KeyOwner, get_site, key_owner

__all__ = [
    "AdminOnly",
    "Authenticator",
    "SiteId",
    "authenticate",
    "bearer_key",
    "key_gate",
    "open_site",
    "site_scope",
]

#: How long a looked-up key (or a site an admin opened) is trusted without asking the database.
CACHE_SECONDS = 5.0

_bearer = HTTPBearer(
    auto_error=False,
    description="An admin key (creates sites) or a site's API key (opens that site only).",
)


class Authenticator:
    """Finds the owner of a key; keeps recent answers for :data:`CACHE_SECONDS`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        admin_key: str | None,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._engine = engine
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self._cache_seconds = cache_seconds
        self._owners: dict[str, tuple[KeyOwner, float]] = {}
        self._lookups: dict[str, asyncio.Future[KeyOwner | None]] = {}
        self._sites: dict[str, float] = {}

    async def owner(self, api_key: str) -> KeyOwner | None:
        digest = hash_key(api_key)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return KeyOwner(site_id=None)
        cached = self._owners.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        # Requests with the same key at once (a busy site's, when its entry expires) share
        # one lookup rather than each asking the database.
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(digest, api_key))
            self._lookups[digest] = lookup
            lookup.add_done_callback(partial(self._looked_up, digest))
        # A caller that gives up does not cancel the lookup of the others.
        return await asyncio.shield(lookup)

    async def _look_up(self, digest: str, api_key: str) -> KeyOwner | None:
        async with self._engine.connect() as connection:
            found = await key_owner(connection, api_key)
        # An explicit admin key replaces stored ones, so a leaked generated key can be retired.
        if found is not None and found.is_admin and self._admin_hash is not None:
            found = None
        if found is not None:
            self._owners[digest] = (found, time.monotonic() + self._cache_seconds)
        return found

    def _looked_up(self, digest: str, lookup: asyncio.Future[KeyOwner | None]) -> None:
        if self._lookups.get(digest) is lookup:
            del self._lookups[digest]
        if not lookup.cancelled():
            lookup.exception()  # retrieved here too, in case every caller gave up

    async def opens(self, owner: KeyOwner, site_id: str) -> bool:
        """Whether ``owner``'s key opens ``site_id``: its own site; any that exists, for admin."""
        return owner.site_id == site_id or (owner.is_admin and await self.site_exists(site_id))

    async def site_exists(self, site_id: str) -> bool:
        now = time.monotonic()
        if self._sites.get(site_id, 0.0) > now:
            return True
        async with self._engine.connect() as connection:
            exists = await get_site(connection, site_id) is not None
        if exists:
            self._sites[site_id] = now + self._cache_seconds
        return exists


_NO_KEY = "send the API key as 'Authorization: Bearer <key>'"
_BAD_KEY = "the API key is not valid"


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> KeyOwner:
    """The owner of the request's bearer key, or 401."""
    key = credentials.credentials.strip() if credentials is not None else ""
    return await _owner_of(request, key or None)


async def _owner_of(request: Request, key: str | None) -> KeyOwner:
    if key is None:
        raise unauthorized(_NO_KEY)
    authenticator: Authenticator = request.app.state.services.auth
    owner = await authenticator.owner(key)
    if owner is None:
        raise unauthorized(_BAD_KEY)
    return owner


def bearer_key(scope: Mapping[str, Any]) -> str | None:
    """The key of the request's first ``Authorization: Bearer`` header, if any."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, key = bytes(value).decode("latin-1").partition(" ")
            return key.strip() if scheme.lower() == "bearer" and key.strip() else None
    return None


#: Where :func:`key_gate` leaves the key it let through and its owner, for the route's check.
_GATE_OWNER = "chathooks.key_owner"


def _routed(scope: dict[str, Any]) -> bool:
    routes = scope["app"].router.routes
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


async def key_gate(scope: dict[str, Any]) -> Refusal | None:
    """The API's key check, before a request's body is read (see :mod:`chathooks.http_limits`).

    Only whether the key is valid at all: which site it opens is the route's
    check. Without a key, or with an unknown one, the 401 goes out before a
    byte of the body is read. When the database cannot answer, the request
    goes on, and the route answers as it does for any request then.
    """
    if not scope.get("path", "").startswith("/api/"):
        return None
    key = bearer_key(scope)
    message = _NO_KEY
    if key is not None:
        try:
            authenticator: Authenticator = scope["app"].state.services.auth
            owner = await authenticator.owner(key)
            if owner is not None:
                scope[_GATE_OWNER] = (key, owner)
                return None
        except Exception:
            return None
        message = _BAD_KEY
    # Matched against the routes only for a refusal, not for every request with a good key
    # (each included router costs a match): a wrong path or method keeps its 404 or 405.
    if not _routed(scope):
        return None
    return Refusal(401, "unauthorized", "authorization", message, {"www-authenticate": "Bearer"})


async def require_admin(owner: Annotated[KeyOwner, Depends(authenticate)]) -> KeyOwner:
    if not owner.is_admin:
        raise ApiError(
            403,
            "forbidden",
            "only the admin key (CHATHOOKS_ADMIN_KEY) can do this; a site key opens its own site",
            field="authorization",
        )
    return owner


async def site_scope(
    request: Request,
    owner: Annotated[KeyOwner, Depends(authenticate)],
    site: Annotated[str, Path(description="The site id (site_...).")],
) -> str:
    """The site id of the path, once the key is known to open it; 404 otherwise."""
    return await _scoped(request, owner, site)


async def open_site(request: Request, site: str) -> str:
    """:data:`SiteId` for a route that reads its request itself: 401, 404 or ``site``.

    The same checks as the dependency, without FastAPI solving one per request. The
    owner :func:`key_gate` found for this request's key is not looked up again.
    """
    key = bearer_key(request.scope)
    gated: tuple[str, KeyOwner] | None = request.scope.get(_GATE_OWNER)
    if gated is not None and key is not None and gated[0] == key:
        return await _scoped(request, gated[1], site)
    return await _scoped(request, await _owner_of(request, key), site)


async def _scoped(request: Request, owner: KeyOwner, site: str) -> str:
    authenticator: Authenticator = request.app.state.services.auth
    if await authenticator.opens(owner, site):
        return site
    raise not_found(f"site {site!r}", field="site")


#: A route parameter: the site id of the path, checked against the key.
SiteId = Annotated[str, Depends(site_scope)]
#: A route dependency: the key must be an admin key.
AdminOnly = Annotated[KeyOwner, Depends(require_admin)]

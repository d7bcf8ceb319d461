"""One HTTP attempt of one delivery, over a shared keep-alive aiohttp session.

This is the hot path of the sender, so a :class:`Sender` owns a single
``ClientSession`` (pooled connections, cached DNS) for its lifetime and each
:meth:`Sender.send` does little beyond the POST itself. Whatever goes wrong on
the network or at the receiver is reported in the :class:`AttemptResult`,
never raised: the worker records it and schedules a retry.

Receiver behaviour is taken as Olark defines it: any 2xx is success, a
redirect is a failure (following it would re-POST transcripts to a URL the
customer never configured, past the destination guard), and a JSON reply may
carry ``integrationUrl`` to show the agent.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.resolver import DefaultResolver
from yarl import URL

from chathooks.sender.guard import DestinationGuard, DestinationRefused, GuardedResolver, IPNetwork
from chathooks.sender.requests import OutgoingRequest
from chathooks.sender.retry import parse_retry_after
from chathooks.wire import integration_url_of

if TYPE_CHECKING:
    from chathooks.settings import Settings

__all__ = ["AttemptResult", "Sender"]

_GONE = 410
# Parsed URLs and their guard verdicts, per URL string: endpoints are few and hot.
_URL_CACHE_LIMIT = 4096
_CONNECT_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What happened to one attempt, ready to store on the delivery."""

    #: Any 2xx status.
    ok: bool
    status_code: int | None = None
    duration_ms: float = 0.0
    #: The first ``max_response_bytes`` of the body, UTF-8 with replacement.
    response_body: str | None = None
    #: A human reason when not ok: "HTTP 500", "connection refused", ...
    error: str | None = None
    #: Blocked before connecting (destination guard, bad URL): retrying will not help.
    refused: bool = False
    #: ``integrationUrl`` from a 2xx JSON object reply (Olark shows it to the agent).
    integration_url: str | None = None
    #: Seconds the receiver asked us to wait (``Retry-After``).
    retry_after: float | None = None
    #: 410 Gone: the receiver says this endpoint no longer exists.
    gone: bool = False
    #: The receiver's response headers (the first 50, values cut at 1 KB), for the attempt log.
    response_headers: dict[str, str] | None = None


class Sender:
    """Posts :class:`OutgoingRequest` objects; use as ``async with Sender(...) as sender``.

    ``allowed_networks`` opens the destination guard for those networks (e.g.
    ``127.0.0.0/8`` for a receiver on the same host); ``connect_timeout`` limits
    the TCP connect, ``total_timeout`` the whole attempt including reading the
    reply, of which at most ``max_response_bytes`` are read. ``limit`` caps open
    connections across all endpoints.
    """

    def __init__(
        self,
        *,
        allowed_networks: Sequence[IPNetwork] = (),
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        max_response_bytes: int = 20 * 1024,
        limit: int = 100,
    ) -> None:
        if connect_timeout <= 0 or total_timeout <= 0:
            raise ValueError("connect_timeout and total_timeout must be positive seconds")
        if max_response_bytes < 0:
            raise ValueError(f"max_response_bytes must be >= 0; got {max_response_bytes}")
        if limit < 1:
            raise ValueError(f"limit (open connections) must be >= 1; got {limit}")
        self.guard = DestinationGuard(allowed_networks)
        self.connect_timeout = float(connect_timeout)
        self.total_timeout = float(total_timeout)
        self.max_response_bytes = max_response_bytes
        self.limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._urls: dict[str, tuple[URL, str | None]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        """A sender configured from ``CHATHOOKS_*`` settings."""
        return cls(
            allowed_networks=settings.allowed_networks,
            connect_timeout=settings.connect_timeout,
            total_timeout=settings.total_timeout,
            max_response_bytes=settings.max_response_bytes,
            # Never make the worker's own concurrency wait for a pooled connection.
            limit=max(100, settings.worker_concurrency),
        )

    # -- lifecycle ------------------------------------------------------------------
    async def __aenter__(self) -> Sender:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the session (needs a running event loop); ``async with`` does this."""
        if self._session is not None:
            return
        self._resolver = GuardedResolver(self.guard, DefaultResolver())
        connector = aiohttp.TCPConnector(
            limit=self.limit,
            resolver=self._resolver,
            use_dns_cache=True,
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self.total_timeout, sock_connect=self.connect_timeout
            ),
            # One session serves every customer: keep no cookies between them,
            # and ignore HTTP(S)_PROXY, which would bypass the destination guard.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            # Ask for an uncompressed reply: only a capped prefix is kept anyway.
            skip_auto_headers=("Accept-Encoding",),
        )

    async def close(self) -> None:
        """Close pooled connections; the sender cannot send afterwards."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            await resolver.close()

    # -- sending --------------------------------------------------------------------
    async def send(self, request: OutgoingRequest) -> AttemptResult:
        """POST ``request`` once and report the outcome; network and HTTP trouble never raise."""
        session = self._session
        if session is None:
            raise RuntimeError("Sender is not open; use 'async with Sender(...) as sender'")
        started = time.perf_counter()
        url, refusal = self._checked_url(request.url)
        if refusal is not None:
            return AttemptResult(ok=False, error=refusal, refused=True)
        try:
            async with session.post(
                url, data=request.body, headers=request.headers, allow_redirects=False
            ) as response:
                status = response.status
                body = await self._read_capped(response)
                headers = response.headers
                retry_after_header = headers.get("Retry-After")
                location = headers.get("Location")
        except DestinationRefused as exc:
            return AttemptResult(
                ok=False, duration_ms=_ms_since(started), error=exc.message, refused=True
            )
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return AttemptResult(
                ok=False, duration_ms=_ms_since(started), error=self._describe(exc, url, started)
            )

        ok = 200 <= status < 300
        return AttemptResult(
            ok=ok,
            status_code=status,
            duration_ms=_ms_since(started),
            response_body=body.decode("utf-8", errors="replace"),
            error=None if ok else _status_error(status, location),
            integration_url=integration_url_of(body) if ok else None,
            retry_after=parse_retry_after(retry_after_header) if retry_after_header else None,
            gone=status == _GONE,
            response_headers=_kept_headers(headers),
        )

    def _checked_url(self, text: str) -> tuple[URL, str | None]:
        cached = self._urls.get(text)
        if cached is not None:
            return cached
        try:
            # Keep an already-encoded URL byte for byte: the query string goes out as given.
            url = URL(text, encoded=True) if _is_encoded(text) else URL(text)
        except (ValueError, TypeError) as exc:
            entry: tuple[URL, str | None] = (URL(), f"invalid URL {text!r}: {exc}")
        else:
            entry = (url, self.guard.check_url(url))
        if len(self._urls) >= _URL_CACHE_LIMIT:
            self._urls.clear()
        self._urls[text] = entry
        return entry

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """At most ``max_response_bytes`` of the body; the rest is never downloaded.

        Once the status is in, the outcome is decided; a body that breaks off
        or times out midway only shortens what is kept. An unread remainder
        makes aiohttp close that connection instead of reusing it.
        """
        remaining = self.max_response_bytes
        chunks: list[bytes] = []
        try:
            while remaining > 0:
                chunk = await response.content.read(remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        except (aiohttp.ClientError, OSError):
            pass  # TimeoutError is an OSError too
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _describe(self, exc: BaseException, url: URL, started: float) -> str:
        """A reason a person can act on, for an attempt that got no HTTP status."""
        host = url.host or str(url)
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return f"TLS certificate of {host} not accepted: {exc.certificate_error}"
        if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
            return f"TLS handshake with {host} failed: {exc}"
        if isinstance(exc, aiohttp.ClientConnectorError):
            cause = exc.os_error
            if isinstance(cause, socket.gaierror):
                return f"DNS lookup failed for {host}"
            if isinstance(cause, TimeoutError):
                return self._timeout_message(started)
            known = _CONNECT_ERRORS.get(cause.errno or 0)
            if known is not None:
                return known
            return f"cannot connect to {host}:{url.port}: {cause.strerror or cause}"
        if isinstance(exc, TimeoutError):  # total timeout, or aiohttp's connect timeout
            return self._timeout_message(started)
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "the server closed the connection without a response"
        if isinstance(exc, aiohttp.ClientResponseError):
            return f"invalid HTTP response: {exc.message}"
        if isinstance(exc, aiohttp.InvalidURL):
            return f"invalid URL {str(url)!r}"
        if isinstance(exc, OSError) and exc.strerror:
            return f"network error: {exc.strerror}"
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def _timeout_message(self, started: float) -> str:
        # aiohttp raises the same error when the connect limit or the total
        # limit runs out during connecting; the clock tells them apart.
        if time.perf_counter() - started < self.total_timeout * 0.98:
            return f"connect timed out after {self.connect_timeout}s"
        return f"timed out after {self.total_timeout}s (total)"


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _status_error(status: int, location: str | None) -> str:
    if 300 <= status < 400:
        target = f" to {location}" if location else ""
        return f"HTTP {status} (redirect{target} not followed)"
    return f"HTTP {status}"


def _is_encoded(text: str) -> bool:
    """Whether ``text`` is a URL already in its wire form (ASCII, no spaces or controls)."""
    return text.isascii() and all(33 <= ord(ch) < 127 for ch in text)


_MAX_LOGGED_HEADERS = 50
_MAX_LOGGED_HEADER_VALUE = 1024


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A receiver's response headers as the attempt log keeps them: bounded in size."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        if len(kept) >= _MAX_LOGGED_HEADERS:
            break
        kept[name] = value[:_MAX_LOGGED_HEADER_VALUE]
    return kept

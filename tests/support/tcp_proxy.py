"""A loopback TCP proxy a test can cut, to take a database away from chathooks only.

The shared PostgreSQL server must keep serving every other test, so an
outage is made here instead: chathooks connects through the proxy, and
:meth:`TcpProxy.cut` drops every open connection and refuses new ones until
:meth:`TcpProxy.restore`. To chathooks that is exactly a database that went
away (connections reset, then refused). :meth:`TcpProxy.starting_up` plays a
PostgreSQL server that is starting: every new connection is answered with
the server's own ``57P03 the database system is starting up`` error.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from urllib.parse import urlsplit, urlunsplit

from support.serving import ServingThread


class TcpProxy:
    """Start with ``with TcpProxy(host, port) as proxy:``; connect to ``proxy.port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._cut = False
        self._starting = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serving: ServingThread[asyncio.Server] | None = None

    @classmethod
    def for_url(cls, database_url: str) -> TcpProxy:
        parts = urlsplit(database_url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432)

    def url_through(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by the proxy's."""
        parts = urlsplit(database_url)
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    # -- control -------------------------------------------------------------------
    def cut(self) -> None:
        """Drop every connection through the proxy and refuse new ones."""
        self._call(self._cut_now)

    def restore(self) -> None:
        """Let connections through again."""
        self._cut = False
        self._starting = False

    def starting_up(self) -> None:
        """Drop every connection and answer new ones as a PostgreSQL server that is starting."""
        self._call(self._cut_now)
        self._cut = False
        self._starting = True

    @property
    def is_cut(self) -> bool:
        return self._cut

    def _call(self, function: object) -> None:
        assert self._loop is not None and callable(function)
        done = threading.Event()

        def run() -> None:
            function()
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    def _cut_now(self) -> None:
        self._cut = True
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    # -- piping --------------------------------------------------------------------
    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        if self._starting:
            await _answer_starting_up(reader, writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            self._writers.discard(writer)
            self._writers.discard(upstream_writer)

    def __enter__(self) -> TcpProxy:
        serving = ServingThread("TCP proxy", self._start, self._close)
        self._loop, self._serving = serving.loop, serving
        self.port = serving.run().sockets[0].getsockname()[1]
        return self

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _close(self, server: asyncio.Server) -> None:
        server.close()
        self._cut_now()
        await asyncio.sleep(0)

    def __exit__(self, *exc: object) -> None:
        if self._serving is not None:
            self._serving.stop()


_SSL_REQUEST = 80877103


async def _answer_starting_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What PostgreSQL says to a client while it is starting: a FATAL 57P03, then close."""
    try:
        length, code = struct.unpack("!ii", await reader.readexactly(8))
        if code == _SSL_REQUEST:
            writer.write(b"N")  # no TLS; the client sends its startup message next
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            await reader.readexactly(length - 4)
        else:
            await reader.readexactly(length - 8)
        fields = b"".join(
            kind + text + b"\x00"
            for kind, text in (
                (b"S", b"FATAL"),
                (b"V", b"FATAL"),
                (b"C", b"57P03"),
                (b"M", b"the database system is starting up"),
            )
        )
        writer.write(b"E" + struct.pack("!i", len(fields) + 5) + fields + b"\x00")
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()

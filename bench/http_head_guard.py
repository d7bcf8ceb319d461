"""What capping the request head costs: guarded httptools against uvicorn's h11 limit.

``python -m bench.http_head_guard`` starts a tiny ASGI app under uvicorn three
times, in its own process each time: plain httptools (no limit, the old
default), httptools behind :class:`chathooks.http_limits.head.GuardedHttpToolsProtocol`,
and h11 with ``h11_max_incomplete_event_size`` at the same 64 KiB. For each it
prints keep-alive ``GET /healthz`` requests per second from 32 connections,
and the slowest ``/healthz`` answer while another connection sends a 40 MB
header (and what that connection was answered).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time

import aiohttp

from chathooks.http_limits.head import MAX_HEAD_BYTES

_SERVER = """
import sys, uvicorn
from chathooks.http_limits.head import GuardedHttpToolsProtocol

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status": "ok"}'})

kind, port = sys.argv[1], int(sys.argv[2])
options = {"httptools": {"http": "httptools"},
           "guarded": {"http": GuardedHttpToolsProtocol},
           "h11": {"http": "h11", "h11_max_incomplete_event_size": LIMIT}}[kind]
uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False, **options)
""".replace("LIMIT", str(MAX_HEAD_BYTES))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)


async def _throughput(url: str, seconds: float, connections: int) -> float:
    done = 0
    stop_at = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                async with session.get(url) as response:
                    await response.read()
                done += 1

        await asyncio.gather(*(client() for _ in range(connections)))
    return done / seconds


async def _huge_header(port: int, total: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ")
    piece = b"a" * (256 * 1024)
    sent = 0
    try:
        while sent < total:
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        writer.write(b"\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 120)
    except (OSError, TimeoutError):
        try:
            status = await asyncio.wait_for(reader.readline(), 5)
        except (OSError, TimeoutError):
            status = b""
    finally:
        writer.close()
    return status.decode(errors="replace").strip() or f"connection closed after {sent} bytes"


async def _slowest_during(url: str, port: int, total: int) -> tuple[float, str]:
    slowest = 0.0
    attack = asyncio.create_task(_huge_header(port, total))
    async with aiohttp.ClientSession() as session:
        while not attack.done():
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            slowest = max(slowest, time.perf_counter() - started)
            await asyncio.sleep(0.005)
    return slowest * 1000, attack.result()


async def _measure(kind: str, seconds: float, header_mb: int) -> None:
    port = _free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", _SERVER, kind, str(port))
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        await _wait_up(url)
        rate = await _throughput(url, seconds, 32)
        slowest, answer = await _slowest_during(url, port, header_mb * 1024 * 1024)
    finally:
        server.terminate()
        await server.wait()
    print(
        f"{kind:>10}: {rate:8.0f} req/s   slowest /healthz during a {header_mb} MB header "
        f"{slowest:8.1f} ms   that request got: {answer}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput run per protocol")
    parser.add_argument("--header-mb", type=int, default=40)
    args = parser.parse_args()
    for kind in ("httptools", "guarded", "h11"):
        asyncio.run(_measure(kind, args.seconds, args.header_mb))


if __name__ == "__main__":
    main()

"""What sealed signing secrets cost a delivery: CPU time per delivery, side by side.

Two measures, both in this process's CPU time (``time.process_time``):

* per operation: signing one attempt (HMAC-SHA256 over a 4 KB body, which
  every signed delivery pays anyway) next to opening its sealed secret with
  AES-GCM, uncached and from the keyring's cache;
* per claimed delivery: the worker's real claim (four statements on an SQLite
  file) of batches spread over 50 signed endpoints, with the cache warm
  (the service's case), with a cold cache at every claim (every secret
  decrypted), and with unsigned endpoints (no secret to open at all).

Run ``python -m bench.secrets_cost`` (``--quick`` for a short check).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import deliveries
from chathooks.queue import NewDelivery, claim, enqueue
from chathooks.repository.endpoints import create_endpoint
from chathooks.repository.sites import create_site
from chathooks.sealing import Keyring, bind_keyring, new_key
from chathooks.signing import generate_secret, signature_headers

ENDPOINTS = 50
BATCH = 200
BODY = b"data=" + b"x" * 4096


def per_call_us(work: Callable[[], object], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        work()
    return (time.process_time() - started) * 1e6 / calls


def operations(calls: int) -> list[tuple[str, float]]:
    keyring = Keyring.from_text(new_key())
    secret = generate_secret()
    sealed = keyring.seal(secret)
    keyring.open(sealed)  # into the cache
    uncached = Keyring.from_text(new_key())
    sealed_elsewhere = uncached.seal(secret)
    return [
        (
            "sign one attempt (4 KB body)",
            per_call_us(lambda: signature_headers(secret, "msg_1", BODY), calls),
        ),
        (
            "open a secret, uncached",
            per_call_us(lambda: uncached.open(sealed_elsewhere, cached=False), calls),
        ),
        ("open a secret, cached", per_call_us(lambda: keyring.open(sealed), calls)),
    ]


async def _queue(engine: AsyncEngine, *, signed: bool) -> None:
    async with engine.begin() as connection:
        site = (await create_site(connection, "bench.example")).site.id
        ids = [
            (
                await create_endpoint(
                    connection,
                    site,
                    url=f"https://receiver.example/{n}",
                    secret=generate_secret() if signed else None,
                )
            ).id
            for n in range(ENDPOINTS)
        ]
        await enqueue(
            connection,
            [
                NewDelivery(
                    site_id=site,
                    endpoint_id=ids[n % ENDPOINTS],
                    conversation_id=None,
                    payload_kind="transcript",
                    trigger="api",
                    payload="{}",
                )
                for n in range(BATCH)
            ],
        )


async def _claim_ms(engine: AsyncEngine, key: str, rounds: int, *, cold: bool) -> float:
    """CPU ms per claimed delivery over ``rounds`` claims of the whole queue."""
    keyring = Keyring.from_text(key)
    spent = 0.0
    claimed = 0
    for _ in range(rounds):
        if cold:
            keyring = Keyring.from_text(key)  # an empty cache
        bind_keyring(engine, keyring)
        started = time.process_time()
        async with engine.begin() as connection:
            batch = await claim(
                connection, owner="bench", limit=BATCH, lease_seconds=60, endpoint_concurrency=64
            )
        spent += time.process_time() - started
        claimed += len(batch)
        async with engine.begin() as connection:  # due again, for the next round
            await connection.execute(
                update(deliveries).values(status="pending", next_attempt_at=0, lease_owner=None)
            )
    return spent * 1000 / claimed


async def claims(folder: Path, rounds: int) -> list[tuple[str, float]]:
    """Each case on a database of its own; the whole set twice, the first pass a warm-up
    (the first claims of a process compile its statements)."""
    key = new_key()
    found: list[tuple[str, float]] = []
    for number, (signed, cold, label) in enumerate(
        (
            (False, False, "claim, unsigned endpoints (nothing to open)"),
            (True, False, "claim, signed, cache warm (the service)"),
            (True, True, "claim, signed, cache cold at every claim"),
        )
        * 2
    ):
        url = f"sqlite:///{folder / f'claims-{number}.db'}"
        await upgrade_async(url, Keyring.from_text(key))
        engine = create_engine(url, inline=True)
        bind_keyring(engine, Keyring.from_text(key))
        try:
            await _queue(engine, signed=signed)
            await _claim_ms(engine, key, 2, cold=cold)  # warm up the statements and pages
            found.append((label, await _claim_ms(engine, key, rounds, cold=cold)))
        finally:
            await engine.dispose()
    return found[len(found) // 2 :]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run that checks it works")
    args = parser.parse_args(argv)
    calls, rounds = (2_000, 5) if args.quick else (50_000, 60)
    print(f"{'per operation':<48} {'CPU µs':>9}")
    for label, micro in operations(calls):
        print(f"{label:<48} {micro:>9.2f}")
    with tempfile.TemporaryDirectory() as folder:
        measured = asyncio.run(claims(Path(folder), rounds))
    base = measured[0][1]
    heading = f"per claimed delivery ({BATCH} a claim, {ENDPOINTS} endpoints)"
    print(f"\n{heading:<48} {'CPU ms':>9} {'ratio':>6}")
    for label, ms in measured:
        print(f"{label:<48} {ms:>9.4f} {ms / base:>6.2f}")


if __name__ == "__main__":
    main()

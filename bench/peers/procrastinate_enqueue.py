"""Apply procrastinate's schema to a fresh database and defer every body of a file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from procrastinate.types import JSONDict

from bench.peers import bodies
from bench.peers.procrastinate_app import app, deliver

BATCH = 1000


async def enqueue(path: Path, url: str) -> int:
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        batch: list[JSONDict] = []
        count = 0
        for body in bodies.read(path):
            batch.append({"url": url, "body": body})
            if len(batch) == BATCH:
                await deliver.batch_defer_async(*batch)
                count += len(batch)
                batch = []
        if batch:
            await deliver.batch_defer_async(*batch)
            count += len(batch)
    return count


def main(argv: list[str]) -> int:
    count = asyncio.run(enqueue(Path(argv[0]), argv[1]))
    print(f"enqueued {count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The bodies a peer posts, handed to its processes in a file (one JSON string a line).

The peers' enqueuers run in processes of their own, so that neither Celery nor
procrastinate is imported into the benchmark and their start-up is not mixed
into its figures. Olark form bodies are ASCII (``data=`` and percent-escapes),
so each travels as a plain JSON string through either queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path


def write(path: Path, bodies: Sequence[bytes]) -> None:
    with path.open("w", encoding="ascii") as out:
        for body in bodies:
            out.write(json.dumps(body.decode("ascii")))
            out.write("\n")


def read(path: Path) -> Iterator[str]:
    with path.open(encoding="ascii") as lines:
        for line in lines:
            if line.strip():
                value = json.loads(line)
                if not isinstance(value, str):
                    raise ValueError(f"{path}: expected one JSON string a line")
                yield value

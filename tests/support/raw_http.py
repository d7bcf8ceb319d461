"""Raw HTTP/1.1 over a socket, for requests no well-behaved client sends.

A 300 MB body is generated chunk by chunk (never held in the test's memory)
and a 40 MB header streamed as it is made; the answer is read on a thread of
its own while the request is still being sent, because a server that refuses
early closes the connection, and what it answered must not be lost to the
reset that follows.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class RawAnswer:
    status: int | None
    head: bytes
    body: bytes
    #: Bytes of the request the server took before it answered or closed.
    sent: int
    #: Seconds from the first byte sent to the first byte of the answer.
    answered_after: float | None


def chunks_of(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    """``total`` bytes of ``x``, ``size`` at a time."""
    piece = b"x" * size
    left = total
    while left > 0:
        yield piece[: min(size, left)]
        left -= size


def exchange(
    base_url: str, head: bytes, parts: Iterable[bytes], timeout: float = 60.0
) -> RawAnswer:
    """Send ``head`` then each of ``parts``; stop sending once the server has answered."""
    target = urlsplit(base_url)
    sock = socket.create_connection((target.hostname or "127.0.0.1", target.port or 80), timeout)
    received = bytearray()
    first_byte: list[float] = []
    done = threading.Event()

    def read() -> None:
        try:
            while chunk := sock.recv(65536):
                if not received:
                    first_byte.append(time.monotonic())
                received.extend(chunk)
                if _complete(bytes(received)):
                    break
        except OSError:
            pass
        finally:
            done.set()

    reader = threading.Thread(target=read, daemon=True)
    started = time.monotonic()
    sent = 0
    reader.start()
    try:
        sock.sendall(head)
        sent += len(head)
        for part in parts:
            if done.is_set() or received:
                break
            sock.sendall(part)
            sent += len(part)
    except OSError:
        pass  # refused and closed mid-request: the answer is what counts
    done.wait(timeout)
    sock.close()
    raw = bytes(received)
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1]) if head_bytes.startswith(b"HTTP/") else None
    return RawAnswer(
        status=status,
        head=head_bytes,
        body=body,
        sent=sent,
        answered_after=first_byte[0] - started if first_byte else None,
    )


def _complete(raw: bytes) -> bool:
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False

"""Delivery ids: the ``webhook-id`` a receiver dedupes on, so unique and stable forever."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_delivery_id() -> str:
    """``msg_`` + a 26-character ULID: 48 bits of milliseconds, then 80 random bits.

    Ids made later sort later (to the millisecond), so a log or a receiver's
    table reads in time order; the random part makes collisions between
    processes practically impossible without any coordination.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "msg_" + "".join(reversed(chars))

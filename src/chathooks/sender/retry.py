"""When to try a failed delivery again.

Olark promises "a few retries with back off"; the schedule (seconds before
each retry, ``CHATHOOKS_RETRY_SCHEDULE``) says how many and how far apart.
Delays get ±10% jitter so deliveries that failed together (an endpoint outage)
do not all come back in the same second, and a receiver's ``Retry-After`` is
honoured when it asks for more time than the schedule gives, within reason.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = [
    "DISABLE",
    "FAIL",
    "MAX_RETRY_AFTER_SECONDS",
    "RETRY",
    "SUCCEED",
    "answer_class",
    "parse_retry_after",
    "retry_delay",
]

#: What an attempt's answer means for its delivery (see :func:`answer_class`).
SUCCEED, RETRY, FAIL, DISABLE = "succeed", "retry", "fail", "disable"

#: Answers about the payload itself: the same bytes would be refused again, so no
#: retry can help. 400/422: the receiver cannot read it; 413/414: too large; 415: the
#: body's type. Fixing the receiver and redelivering by hand still sends them.
_FAIL_AT_ONCE = frozenset({400, 413, 414, 415, 422})
_GONE = 410


def answer_class(status_code: int | None) -> str:
    """:data:`SUCCEED`, :data:`RETRY`, :data:`FAIL` or :data:`DISABLE` for an answer.

    ``None`` is no answer at all (connection error, timeout, refused by the
    destination guard): retried. Any 2xx succeeds. 410 Gone disables the
    endpoint. The 4xx in :data:`_FAIL_AT_ONCE` fail at once. Everything else
    is retried: 3xx (never followed: it would re-POST to a URL nobody
    configured), other 4xx (401, 403, 404: configuration its owner can fix;
    408, 425, 429: "later"), and 5xx.
    """
    if status_code is None:
        return RETRY
    if 200 <= status_code < 300:
        return SUCCEED
    if status_code == _GONE:
        return DISABLE
    if status_code in _FAIL_AT_ONCE:
        return FAIL
    return RETRY


#: A receiver's Retry-After is obeyed up to one day; beyond that the schedule decides.
MAX_RETRY_AFTER_SECONDS = 24 * 60 * 60.0

_RNG = random.Random()


def retry_delay(
    attempt_number: int,
    schedule: Sequence[float],
    *,
    retry_after: float | None = None,
    jitter: float = 0.1,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted.

    ``attempt_number`` counts the attempts made so far (1 after the first
    failure), so ``schedule[0]`` is the wait before the second attempt and a
    schedule of N entries allows N retries. The schedule delay is varied by up
    to ``jitter`` (a fraction) either way; a ``retry_after`` from the receiver
    wins when it is longer, capped at :data:`MAX_RETRY_AFTER_SECONDS`.
    """
    if attempt_number < 1:
        raise ValueError(
            f"attempt_number counts attempts made, so it starts at 1; got {attempt_number}"
        )
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter is a fraction between 0 and 1; got {jitter}")
    if attempt_number > len(schedule):
        return None
    delay = max(0.0, float(schedule[attempt_number - 1]))
    if jitter and delay:
        delay *= 1.0 + (rng or _RNG).uniform(-jitter, jitter)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_SECONDS))
    return delay


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    None when absent or unreadable (a bad header must not break a delivery);
    a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        # More than 12 digits is no real delay (over 30,000 years); treat it as unreadable.
        return float(int(text)) if len(text) <= 12 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    current = time.time() if now is None else now
    # A date without a zone is GMT by HTTP's definition; parsedate gives it naive.
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - current)

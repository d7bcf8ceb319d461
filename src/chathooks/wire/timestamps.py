"""Olark timestamps: strings of epoch seconds with a fraction.

Olark writes ``"1473774819.263083"`` (six digits, trailing zeros kept) and
consumers such as Snowplow reject any other shape, so timestamps stay strings
end to end; these helpers convert at the edges only.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

_WIRE_SHAPE = re.compile(r"[0-9]+(\.[0-9]+)?")
#: Later than any real chat (year 5138); keeps datetime arithmetic in range.
_LATEST = 10**11


def format_timestamp(moment: datetime | float | int | None = None) -> str:
    """The wire form of ``moment`` (now when omitted): epoch seconds, six decimals."""
    if moment is None:
        seconds = time.time()
    elif isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("a naive datetime is ambiguous; give it a time zone")
        seconds = moment.timestamp()
    else:
        seconds = float(moment)
    if not 0 <= seconds < _LATEST:  # also refuses NaN
        raise ValueError(f"{seconds!r} is not a time Olark's format can carry")
    return f"{seconds:.6f}"


def parse_timestamp(value: str) -> datetime:
    """An aware UTC datetime from a wire timestamp such as ``"1307116657.1"``."""
    if not is_wire_timestamp(value):
        raise ValueError(f"not an Olark timestamp (epoch seconds as a string): {value!r}")
    try:
        exact = Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError(f"not an Olark timestamp: {value!r}") from exc
    whole = int(exact)
    if whole >= _LATEST:
        raise ValueError(f"Olark timestamp out of range: {value!r}")
    micros = int(((exact - whole) * 1_000_000).to_integral_value())
    return datetime.fromtimestamp(whole, tz=UTC) + timedelta(microseconds=micros)


def is_wire_timestamp(value: object) -> bool:
    """Whether ``value`` has the shape strict consumers accept."""
    return isinstance(value, str) and _WIRE_SHAPE.fullmatch(value) is not None


def readable_timestamp(value: object) -> datetime | None:
    """The moment of a wire timestamp, or None when it has another shape or is out of range.

    For showing and sorting what was received: a sender may send a time after
    year 5138 (``"100000000000.5"``) and the payload is still kept as it came.
    """
    if not is_wire_timestamp(value):
        return None
    try:
        return parse_timestamp(str(value))
    except (ValueError, OverflowError):
        return None

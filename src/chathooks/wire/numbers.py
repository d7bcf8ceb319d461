"""Numbers in a payload that JSON cannot carry on: refused, naming the key, when read.

Python's ``json`` reads more than JSON: ``NaN`` and ``Infinity`` (which it
would then write back out, so a receiver got non-standard JSON, and a
receiver storing it could not answer it again), floats so long they become
infinite, and integers it can read but never write (more than 4,300 digits:
``int`` refuses to turn them back into text). Each used to answer 500 from
chathooks or from the receiver. They are refused instead, with the dotted
path of the key, so the sender of the payload knows what to fix.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from chathooks.wire.errors import InvalidPayload

__all__ = ["MAX_INTEGER_DIGITS", "loads_checked"]

#: The longest integer carried (Python's own limit for turning one into text).
MAX_INTEGER_DIGITS = sys.get_int_max_str_digits() or 4300


class _Refused:
    """Stands where a number was that cannot be carried; found afterwards to name its key."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _integer(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        return _Refused(f"an integer of {digits} digits (at most {MAX_INTEGER_DIGITS} are carried)")
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    if math.isinf(value):
        return _Refused(f"a number too large for JSON ({text[:20]}...)")
    return value


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number")


class _Unsafe(Exception):
    """Raised by the quick reading at a number it cannot carry: read again to name its key."""


def _quick_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Unsafe
    return value


def _quick_constant(_name: str) -> Any:
    raise _Unsafe


#: The quick reading: built once, and no Python call per integer. An integer longer than
#: Python turns into text already fails it (``ValueError``), so it has no callback.
_QUICK = json.JSONDecoder(parse_float=_quick_float, parse_constant=_quick_constant)


def loads_checked(text: str) -> Any:
    """``json.loads``, refusing (:class:`InvalidPayload`) numbers no JSON reader accepts.

    Nearly every document has no such number, so it is read once without
    noting where numbers are; only a document the quick reading stops at is
    read again, noting each refused number to name the first one's key.
    """
    # json.loads's own refusal of a byte order mark is left to it, as is a changed digit limit.
    if sys.get_int_max_str_digits() == MAX_INTEGER_DIGITS and not text.startswith("\ufeff"):
        try:
            return _QUICK.decode(text)
        except json.JSONDecodeError:
            raise
        except (_Unsafe, ValueError):
            pass
    return _loads_noting(text)


def _loads_noting(text: str) -> Any:
    refused: list[_Refused] = []

    def integer(value: str) -> Any:
        result = _integer(value)
        if isinstance(result, _Refused):
            refused.append(result)
        return result

    def floating(value: str) -> Any:
        result = _float(value)
        if isinstance(result, _Refused):
            refused.append(result)
        return result

    def constant(value: str) -> Any:
        refused.append(_constant(value))
        return refused[-1]

    document = json.loads(text, parse_int=integer, parse_float=floating, parse_constant=constant)
    if refused:
        path, found = _first_refused(document)
        raise InvalidPayload(f"{path}: {found.reason}", field=path)
    return document


def _first_refused(document: Any) -> tuple[str, _Refused]:
    """The dotted path (``items.3.timestamp``) of the first refused number."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _Refused):
            return path or "data", value
        if isinstance(value, dict):
            children = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        else:
            continue
        for key, child in reversed(children):
            stack.append((f"{path}.{key}" if path else str(key), child))
    raise AssertionError("a refused number was parsed but not found")  # pragma: no cover

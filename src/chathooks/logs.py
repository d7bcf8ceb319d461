"""One logging setup for ``serve``, ``worker`` and ``receive``: time, level, logger, message.

Text for people (``2026-12-01T11:00:00.123Z WARNING chathooks.worker: ...``)
or JSON, one object per line, for log collectors. Whatever a line says, it
is redacted first: signing secrets (``whsec_...``), API
keys (``chsk_...``, ``chadm_...``) and ``Authorization`` values never reach
a log, even when an exception message happens to carry one.

Fields passed in ``extra=`` (``delivery_id``, ``endpoint_id``, ``site_id``,
``reason``...) become keys of the JSON object; the text format shows them
through the message itself.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "redact",
]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

#: What a log line must never show. Keys and secrets are recognised by their prefixes.
_SECRET_PATTERNS = re.compile(
    r"(?P<secret>whsec_[A-Za-z0-9+/=_-]+)"
    r"|(?P<key>\bch(?:sk|adm)_[A-Za-z0-9_-]+)"
    r"|(?P<bearer>(?i:bearer)\s+[^\s\"',;]+)"
)
REDACTED = "[redacted]"

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def redact(text: str) -> str:
    """``text`` with every secret, API key and bearer token replaced by ``[redacted]``."""
    return _SECRET_PATTERNS.sub(REDACTED, text)


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(record).items()
        if name not in _STANDARD_ATTRIBUTES and not name.startswith("_") and name != "color_message"
    }


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: MESSAGE`` (UTC), then the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, then extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in _extra_fields(record).items():
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


#: The loggers whose lines a service shows: its own, and uvicorn's (start-up, errors, access).
_SERVICE_LOGGERS: tuple[str, ...] = ("chathooks", "uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(
    log_format: str = "text",
    level: str = "info",
    *,
    stream: TextIO | None = None,
    loggers: Iterable[str] = _SERVICE_LOGGERS,
) -> logging.Handler:
    """Send every log line of this process to ``stream`` (standard error) in ``log_format``.

    Replaces the handlers of the root logger and of uvicorn's loggers (which
    then propagate to the root), so each line is written once and in one
    shape. Raises :class:`ValueError` for an unknown format or level.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"the log format must be one of {', '.join(LOG_FORMATS)}")
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"the log level must be one of {', '.join(LOG_LEVELS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in loggers:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    return handler

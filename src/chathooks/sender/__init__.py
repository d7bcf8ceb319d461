"""The HTTP side of a delivery: build the exact request, post it once, judge the outcome.

* :func:`build_request` - body and headers of one attempt (Olark's form or JSON,
  Standard Webhooks signature headers);
* :class:`Sender` - posts it over a shared aiohttp session, behind the
  destination guard, and reports an :class:`AttemptResult` (it never raises for
  network or HTTP trouble);
* :func:`retry_delay` - when to try again (whether is the worker's ``decide``).

The queue and the worker decide what to send and record what happened; this
package knows nothing about the database.
"""

from chathooks.sender.client import AttemptResult, Sender
from chathooks.sender.guard import (
    ALLOWED_DESTINATIONS_SETTING,
    DestinationGuard,
    DestinationRefused,
    GuardedResolver,
    Refusal,
)
from chathooks.sender.requests import (
    FORMATS,
    USER_AGENT,
    OutgoingRequest,
    build_request,
    check_extra_headers,
    logged_headers,
)
from chathooks.sender.retry import (
    DISABLE,
    FAIL,
    MAX_RETRY_AFTER_SECONDS,
    RETRY,
    SUCCEED,
    answer_class,
    parse_retry_after,
    retry_delay,
)

__all__ = [
    "ALLOWED_DESTINATIONS_SETTING",
    "DISABLE",
    "FAIL",
    "FORMATS",
    "MAX_RETRY_AFTER_SECONDS",
    "RETRY",
    "SUCCEED",
    "USER_AGENT",
    "AttemptResult",
    "DestinationGuard",
    "DestinationRefused",
    "GuardedResolver",
    "OutgoingRequest",
    "Refusal",
    "Sender",
    "answer_class",
    "build_request",
    "check_extra_headers",
    "logged_headers",
    "parse_retry_after",
    "retry_delay",
]

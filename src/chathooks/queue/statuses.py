"""The life of a delivery, as the ``status`` column spells it.

``pending`` (never tried, or redelivered) → ``delivering`` (claimed by a
worker, under a lease) → ``succeeded`` | ``retrying`` (waiting for its next
attempt) | ``failed`` (gave up, 410 Gone, or its endpoint is disabled).
"""

from __future__ import annotations

from chathooks.db.tables import UNFINISHED_STATUSES

PENDING = "pending"
RETRYING = "retrying"
DELIVERING = "delivering"
SUCCEEDED = "succeeded"
FAILED = "failed"

STATUSES = (PENDING, DELIVERING, RETRYING, SUCCEEDED, FAILED)
#: Still to be sent: these hold back later deliveries of the same conversation.
UNFINISHED = UNFINISHED_STATUSES
FINISHED = (SUCCEEDED, FAILED)

#: ``last_error`` of a delivery dropped because its endpoint was switched off.
ENDPOINT_DISABLED = "endpoint disabled"

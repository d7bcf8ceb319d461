"""The life of a delivery, as the ``status`` column spells it.

``pending`` (never tried, or redelivered) → ``delivering`` (claimed by a
worker, under a lease) → ``succeeded`` | ``retrying`` (waiting for its next
attempt) | ``failed`` (gave up: its retries are used up, or no retry can help).

Two more ways to stop short of being sent: ``held`` (its endpoint is
disabled; enabling it sends what was held, in order) and ``superseded`` (a
newer delivery of the same conversation already succeeded at that endpoint,
so this older state of the chat is not sent; redeliver sends it by hand).
"""

from __future__ import annotations

from chathooks.db.tables import DELIVERY_STATUSES, UNFINISHED_STATUSES
from chathooks.db.tables import DeliveryStatus as DeliveryStatus

#: Every status, in the order of a delivery's life (the column's values, from the schema).
STATUSES = DELIVERY_STATUSES
PENDING, DELIVERING, RETRYING, SUCCEEDED, FAILED, HELD, SUPERSEDED = STATUSES
#: Still to be sent: these hold back later deliveries of the same conversation.
UNFINISHED = UNFINISHED_STATUSES
#: Not finished: still to be sent, or held until their endpoint is enabled (queue gauges).
WAITING = (*UNFINISHED_STATUSES, HELD)
#: Done with: nothing more happens to these unless redelivered by hand.
FINISHED = (SUCCEEDED, FAILED, SUPERSEDED)

#: ``last_error`` of a delivery held because its endpoint is disabled.
ENDPOINT_DISABLED = "endpoint disabled"
#: ``last_error`` of a delivery superseded by a newer one of its conversation.
SUPERSEDED_REASON = "superseded: a newer delivery of this conversation succeeded"

#: An endpoint's circuit breaker: closed (``healthy``) or open (``failing``: one probe at a time).
HEALTHY = "healthy"
FAILING = "failing"

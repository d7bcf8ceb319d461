"""The delivery queue: every SQL statement that puts, takes, settles or shows a delivery.

The API and the conversation rules :func:`enqueue` (inside their own
transaction); a :class:`chathooks.worker.Worker` :func:`claim`\\ s due
deliveries, posts them and :func:`record_outcomes`; the API reads them back
with :func:`get_delivery` and :func:`list_deliveries` and sends them again
with :func:`redeliver` and :func:`recover`. On PostgreSQL, whatever makes
deliveries due announces it (:func:`announce_due`) to workers :func:`listening` in
other processes.
"""

from chathooks.queue.alerts import ALERT_KIND, queue_alerts
from chathooks.queue.claim import (
    ClaimedDelivery,
    Destination,
    claim,
    due_deliveries,
    open_endpoints,
    release,
)
from chathooks.queue.enqueue import DeliveryRef, NewDelivery, deliveries_to, enqueue
from chathooks.queue.health import (
    HealthPolicy,
    Transition,
    disable_endpoint,
    health_of,
    learn_from,
    release_held,
)
from chathooks.queue.ids import new_delivery_id
from chathooks.queue.notify import announce_due, listening, when_due_here
from chathooks.queue.reads import (
    COUNTED_STATUSES,
    MAX_PAGE_SIZE,
    InvalidQueueQuery,
    count_deliveries,
    get_delivery,
    list_alert_deliveries,
    list_deliveries,
    queue_stats,
    site_of_delivery,
)
from chathooks.queue.record import Outcome, record_outcomes, unstorable
from chathooks.queue.redeliver import recover, redeliver
from chathooks.queue.statuses import (
    DELIVERING,
    ENDPOINT_DISABLED,
    FAILED,
    FINISHED,
    HELD,
    PENDING,
    RETRYING,
    STATUSES,
    SUCCEEDED,
    SUPERSEDED,
    UNFINISHED,
    WAITING,
)
from chathooks.queue.writer import write_gate, write_transaction

__all__ = [
    "ALERT_KIND",
    "COUNTED_STATUSES",
    "DELIVERING",
    "ENDPOINT_DISABLED",
    "FAILED",
    "FINISHED",
    "HELD",
    "MAX_PAGE_SIZE",
    "PENDING",
    "RETRYING",
    "STATUSES",
    "SUCCEEDED",
    "SUPERSEDED",
    "UNFINISHED",
    "WAITING",
    "ClaimedDelivery",
    "DeliveryRef",
    "Destination",
    "HealthPolicy",
    "InvalidQueueQuery",
    "NewDelivery",
    "Outcome",
    "Transition",
    "announce_due",
    "claim",
    "count_deliveries",
    "deliveries_to",
    "disable_endpoint",
    "due_deliveries",
    "enqueue",
    "get_delivery",
    "health_of",
    "learn_from",
    "list_alert_deliveries",
    "list_deliveries",
    "listening",
    "new_delivery_id",
    "open_endpoints",
    "queue_alerts",
    "queue_stats",
    "record_outcomes",
    "recover",
    "redeliver",
    "release",
    "release_held",
    "site_of_delivery",
    "unstorable",
    "when_due_here",
    "write_gate",
    "write_transaction",
]

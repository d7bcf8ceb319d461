"""Request and response bodies of the API, as typed models (they make /openapi.json).

Times are ISO-8601 in UTC. Request models refuse unknown keys, so a typo such
as ``"autosend"`` is an error naming the key instead of being silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chathooks.queue.claim import MAX_IN_FLIGHT
from chathooks.queue.statuses import DeliveryStatus
from chathooks.repository.endpoints import Endpoint
from chathooks.repository.sites import Site
from chathooks.repository.validation import (
    EndpointFormat,
    check_headers,
    check_site_name,
    check_url,
)
from chathooks.signing import generate_secret, secret_key
from chathooks.wire import FORM_CONTENT_TYPE, TestPayloadKind
from chathooks.wire.quoting import form_quote

__all__ = [
    "AttemptOut",
    "DeliveryDetail",
    "DeliveryOut",
    "DeliveryRef",
    "DeliveryStatus",
    "EndpointCreate",
    "EndpointOut",
    "EndpointSecret",
    "EndpointUpdate",
    "EndpointWithSecret",
    "IngestAccepted",
    "Meta",
    "Page",
    "RecoverRequest",
    "RotateSecretRequest",
    "SiteCreate",
    "SiteCreated",
    "SiteOut",
    "TestResult",
    "utc",
]

T = TypeVar("T")

MAX_DESCRIPTION = 1000
#: The range of an endpoint's own cap on requests in flight.
MIN_IN_FLIGHT = 1


def utc(epoch_seconds: float | None) -> datetime | None:
    """An epoch-seconds time from the database as an aware UTC datetime."""
    return None if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, UTC)


#: :func:`utc` rounds to the microsecond; half of one back makes a lower bound copied from
#: a shown time include the very row it was copied from (and an upper bound exclude it).
_HALF_MICROSECOND = 0.5e-6


def bound(moment: datetime) -> float:
    """A time a client sent as a bound, in epoch seconds; without an offset it is UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.timestamp() - _HALF_MICROSECOND


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """Every list in the API: pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = None


class SiteCreate(_Request):
    name: str = Field(description="A label for the site, e.g. its domain.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_site_name(value)


class SiteOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    alert_url: str | None = Field(
        None, description="Where operational alerts about its endpoints are posted."
    )

    @classmethod
    def of(cls, site: Site, alert_url: str | None = None) -> SiteOut:
        return cls(id=site.id, name=site.name, created_at=utc(site.created_at), alert_url=alert_url)


class SiteCreated(SiteOut):
    api_key: str = Field(description="The site's API key. Shown only now; store it.")


class SiteUpdate(_Request):
    """Only the keys sent are changed."""

    alert_url: str | None = Field(
        None,
        description="http(s) URL for signed operational alerts (endpoint.failing, "
        "endpoint.disabled, endpoint.recovered, delivery.exhausted); null stops them.",
    )

    @field_validator("alert_url")
    @classmethod
    def _alert_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)


class SiteUpdated(SiteOut):
    alert_secret: str | None = Field(
        None,
        description="The secret alerts are signed with (Standard Webhooks). Shown only when "
        "alert_url is set; every new alert_url gets a new one.",
    )


class _EndpointChecks(_Request):
    """The rules of endpoint settings, for creating and for changing an endpoint."""

    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("headers", check_fields=False)
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else check_headers(value)

    @field_validator("secret", check_fields=False)
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None:
            secret_key(value)  # raises ValueError with advice for a malformed secret
        return value


class EndpointCreate(_EndpointChecks):
    url: str = Field(description="Where payloads are posted (http or https); query kept as given.")
    enabled: bool = True
    auto_send: bool = Field(True, description="Olark's 'Send all transcripts automatically'.")
    send_offline: bool = Field(True, description="Olark's 'Send offline messages'.")
    send_events: bool = Field(False, description="Olark's 'Send all events' (start events).")
    secret: str | None = Field(
        default_factory=generate_secret,
        description="Standard Webhooks secret (whsec_...); generated when omitted, "
        "null for an unsigned endpoint.",
    )
    format: EndpointFormat = Field("form", description="'form' (Olark's data=... body) or 'json'.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers, e.g. a receiver's token."
    )
    description: str = Field("", max_length=MAX_DESCRIPTION)
    max_in_flight: int | None = Field(
        None,
        ge=MIN_IN_FLIGHT,
        le=MAX_IN_FLIGHT,
        description="Requests in flight at once to this endpoint, across all workers "
        "(1-64); null: the service's CHATHOOKS_ENDPOINT_CONCURRENCY.",
    )


class EndpointUpdate(_EndpointChecks):
    """Only the keys sent are changed; ``"secret": null`` makes the endpoint unsigned."""

    url: str | None = None
    enabled: bool | None = None
    auto_send: bool | None = None
    send_offline: bool | None = None
    send_events: bool | None = None
    secret: str | None = None
    format: EndpointFormat | None = None
    headers: dict[str, str] | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    #: null goes back to the service default.
    max_in_flight: int | None = Field(None, ge=MIN_IN_FLIGHT, le=MAX_IN_FLIGHT)

    @field_validator(
        "url",
        "enabled",
        "auto_send",
        "send_offline",
        "send_events",
        "format",
        "headers",
        "description",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their validated values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class EndpointHealth(BaseModel):
    """How the endpoint has been answering; kept up to date by the workers."""

    state: Literal["healthy", "failing", "disabled"] = Field(
        description="failing: its circuit breaker is open and one probe at a time tests it; "
        "disabled: switched off (by hand, 410 Gone, or failing for too long), deliveries held."
    )
    consecutive_failures: int = Field(description="Failed attempts since the last success.")
    failing_since: datetime | None = Field(description="When the current run of failures began.")
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_failure_reason: str | None
    next_probe_at: datetime | None = Field(description="While failing: the next probe.")
    attempts_24h: int = Field(description="Attempts made in the last 24 hours.")
    success_rate_24h: float | None = Field(
        description="Share of those attempts that succeeded (0-1); null when there were none."
    )

    @classmethod
    def of(cls, health: Mapping[str, Any]) -> EndpointHealth:
        return cls(
            state=health["state"],
            consecutive_failures=health["consecutive_failures"],
            failing_since=utc(health["failing_since"]),
            last_success_at=utc(health["last_success_at"]),
            last_failure_at=utc(health["last_failure_at"]),
            last_failure_reason=health["last_failure_reason"],
            next_probe_at=utc(health["next_probe_at"]),
            attempts_24h=health["attempts_24h"],
            success_rate_24h=health["success_rate_24h"],
        )


class EndpointOut(BaseModel):
    id: str
    site_id: str
    url: str
    description: str
    enabled: bool
    auto_send: bool
    send_offline: bool
    send_events: bool
    signed: bool = Field(description="Whether requests carry a webhook-signature.")
    format: EndpointFormat
    headers: dict[str, str]
    disabled_reason: str | None = Field(
        description="Why chathooks switched the endpoint off, e.g. it answered 410 Gone."
    )
    max_in_flight: int | None = Field(
        description="Its own cap on requests in flight; null: the service default."
    )
    health: EndpointHealth | None = Field(
        None, description="How it has been answering (the API always includes it)."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: Endpoint, health: Mapping[str, Any] | None = None) -> EndpointOut:
        return cls(**_endpoint_fields(endpoint, health))


class EndpointWithSecret(EndpointOut):
    secret: str | None = Field(description="The signing secret; null for an unsigned endpoint.")

    @classmethod
    def of(cls, endpoint: Endpoint, health: Mapping[str, Any] | None = None) -> EndpointWithSecret:
        return cls(**_endpoint_fields(endpoint, health), secret=endpoint.secret)


#: The longest grace a secret rotation allows: 30 days.
MAX_GRACE_SECONDS = 30 * 86400
#: How long the replaced secret signs too, unless the rotation says otherwise.
DEFAULT_GRACE_SECONDS = 86400


class RotateSecretRequest(_Request):
    grace_seconds: int = Field(
        DEFAULT_GRACE_SECONDS,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long the replaced secret still signs every attempt, next to the new "
        "one (0 to 30 days, in seconds); 0 drops it at once.",
    )


class EndpointSecret(BaseModel):
    """An endpoint's signing secret(s): what a receiver must accept."""

    endpoint_id: str
    secret: str | None = Field(description="The signing secret; null for an unsigned endpoint.")
    previous_secret: str | None = Field(
        description="The secret a rotation replaced, while it still signs too; null otherwise."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="When the previous secret stops signing; every attempt until then carries "
        "two v1 signatures, one per secret."
    )

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointSecret:
        return cls(
            endpoint_id=endpoint.id,
            secret=endpoint.secret,
            previous_secret=endpoint.previous_secret,
            previous_secret_expires_at=utc(endpoint.previous_secret_until),
        )


def _endpoint_fields(endpoint: Endpoint, health: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "health": None if health is None else EndpointHealth.of(health),
        "id": endpoint.id,
        "site_id": endpoint.site_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "auto_send": endpoint.auto_send,
        "send_offline": endpoint.send_offline,
        "send_events": endpoint.send_events,
        "signed": endpoint.secret is not None,
        "format": endpoint.format,
        "headers": endpoint.headers,
        "disabled_reason": endpoint.disabled_reason,
        "max_in_flight": endpoint.max_in_flight,
        "created_at": utc(endpoint.created_at),
        "updated_at": utc(endpoint.updated_at),
    }


_TEST_KIND = "What to post: transcript (Olark's test), offline_message or start_event."


class TestRequest(_EndpointChecks):
    """Send test of a saved endpoint, optionally with edits not saved yet.

    ``url``, ``format`` and ``headers`` replace the stored ones for this test
    only; nothing is stored. The stored secret signs it.
    """

    __test__ = False  # not a pytest test class

    kind: TestPayloadKind = Field("transcript", description=_TEST_KIND)
    url: str | None = None
    format: EndpointFormat | None = None
    headers: dict[str, str] | None = None


class UnsavedTestRequest(_EndpointChecks):
    """Send test of settings that are not an endpoint yet (a new one, before Save)."""

    __test__ = False  # not a pytest test class

    kind: TestPayloadKind = Field("transcript", description=_TEST_KIND)
    url: str = Field(description="Where to post the test (http or https).")
    format: EndpointFormat = "form"
    headers: dict[str, str] = Field(default_factory=dict)
    secret: str | None = Field(None, description="Signs the test when given.")


class TestResult(BaseModel):
    """What Olark's Send test shows: did the endpoint take the test payload?"""

    __test__ = False  # not a pytest test class

    kind: TestPayloadKind = "transcript"
    url: str = Field(description="Where the test was posted.")
    saved_settings: bool = Field(
        description="true: the endpoint as stored was tested; false: settings not saved."
    )
    ok: bool
    status_code: int | None
    duration_ms: float
    integration_url: str | None
    response_body: str | None
    error: str | None


class DeliveryRef(BaseModel):
    id: str
    endpoint_id: str


class IngestAccepted(BaseModel):
    """The deliveries queued for one payload; empty when no endpoint wants it."""

    deliveries: list[DeliveryRef]


class Meta(BaseModel):
    version: str
    egress_cidrs: list[str] = Field(
        description="The ranges deliveries come from, for receivers' allow-lists."
    )


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: str
    conversation_id: str | None
    payload_kind: str = Field(description="transcript, offline_message, event or test.")
    trigger: str = Field(description="What made it: api, command, completion, start, redeliver...")
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None = Field(description="When it is tried next; null if not.")
    last_status_code: int | None
    last_error: str | None
    integration_url: str | None = Field(description="integrationUrl from the receiver's reply.")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, delivery: Mapping[str, Any]) -> DeliveryOut:
        return cls.model_validate(_with_times(delivery, _DELIVERY_TIMES))


class DeliveryCounts(BaseModel):
    counts: dict[str, int] = Field(
        description="Deliveries per status but succeeded and superseded, zeros included."
    )


class AttemptOut(BaseModel):
    number: int
    started_at: datetime
    duration_ms: float
    outcome: str = Field(description="succeeded, failed, or refused (destination not allowed).")
    status_code: int | None
    response_body: str | None
    error: str | None
    integration_url: str | None
    request_headers: dict[str, str] | None = Field(
        None, description="Headers sent, the signature and endpoint headers masked."
    )
    request_body: str | None = Field(
        None, description="The body exactly as sent (built from the payload and Content-Type)."
    )
    response_headers: dict[str, str] | None = Field(
        None, description="Headers of the receiver's answer."
    )


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any] = Field(description="The JSON document as it is posted.")
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, delivery: Mapping[str, Any]) -> DeliveryDetail:
        fields = _with_times(delivery, _DELIVERY_TIMES)
        fields["payload"] = json.loads(delivery["payload"])
        fields["attempts"] = [
            {**_with_times(a, ("started_at",)), "request_body": _sent_body(delivery["payload"], a)}
            for a in delivery["attempts"]
        ]
        return cls.model_validate(fields)


def _sent_body(payload: str, attempt: Mapping[str, Any]) -> str | None:
    """The body an attempt sent: the stored payload in the format its Content-Type names.

    Attempts logged before request headers were kept have no Content-Type: None.
    """
    headers = attempt.get("request_headers") or {}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if content_type is None:
        return None
    if content_type.startswith(FORM_CONTENT_TYPE):
        return "data=" + form_quote(payload)
    return payload


class RecoverRequest(_Request):
    since: datetime = Field(
        description="ISO-8601; failed deliveries made since then are sent again. "
        "Without a UTC offset the time is read as UTC."
    )

    def since_epoch(self) -> float:
        return bound(self.since)


_DELIVERY_TIMES = ("next_attempt_at", "created_at", "updated_at", "finished_at")


def _with_times(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    fields = dict(row)
    for name in names:
        fields[name] = utc(fields.get(name))
    return fields

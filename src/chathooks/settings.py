"""Service settings, read from flags or ``CHATHOOKS_*`` environment variables."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chathooks.queue.claim import MAX_IN_FLIGHT
from chathooks.receiver.ipcheck import IPNetwork, parse_networks
from chathooks.sealing import SECRET_KEY_SETTING, Keyring, SecretKeyError, keyring_for

DEFAULT_DATABASE_URL = "sqlite:///./chathooks.db"
#: Olark documents "a few retries with back off"; ours: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the sender service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="CHATHOOKS_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    #: Creates sites. Generated and printed on first start when unset.
    admin_key: str | None = None
    #: Seals the signing secrets in the database: base64 of 32 bytes, or several keys
    #: comma-separated (the first seals, all open). Unset on SQLite: a key file beside
    #: the database (see chathooks.sealing); PostgreSQL needs it.
    secret_key: str | None = Field(default=None, repr=False)
    #: CIDRs that outgoing deliveries may reach although they are private or loopback.
    allowed_destinations: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: The sender's public egress ranges, published at /api/v1/meta for receivers to allow-list.
    egress_cidrs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Seconds to wait before each retry; the number of entries is the number of retries.
    retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [float(s) for s in DEFAULT_RETRY_SCHEDULE]
    )
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    #: How much of a response body is kept on the attempt (and read at all).
    max_response_bytes: int = 20 * 1024
    #: A conversation with no message for this long completes (seconds).
    idle_timeout: float = 1800.0
    #: Deliveries in flight at once in one worker process.
    worker_concurrency: int = 64
    #: Requests in flight at once to one endpoint, across all workers (an endpoint's
    #: ``max_in_flight`` overrides it): one slow receiver cannot take every slot.
    endpoint_concurrency: int = Field(8, ge=1, le=MAX_IN_FLIGHT)
    #: Consecutive failed attempts after which an endpoint's circuit breaker opens.
    breaker_threshold: int = Field(5, ge=1)
    #: Seconds between probes of a failing endpoint at first; doubled per failed probe.
    breaker_probe_seconds: float = Field(5.0, gt=0)
    #: The longest wait between two probes of a failing endpoint.
    breaker_probe_max_seconds: float = Field(300.0, gt=0)
    #: An endpoint failing continuously this long (seconds)...
    disable_after: float = Field(432000.0, gt=0)
    #: ...with at least this many failed attempts is disabled; its deliveries are held.
    disable_min_failures: int = Field(10, ge=1)
    #: Each type of operational alert about one endpoint goes out at most this often (seconds).
    alert_interval: float = Field(900.0, ge=0)
    #: Deliveries claimed per query.
    claim_batch_size: int = 200
    #: A claim not finished within this many seconds returns to the queue.
    lease_seconds: float = 120.0
    #: How often an idle worker polls for due work (seconds).
    poll_interval: float = 0.5
    #: How often each worker writes its heartbeat (seconds).
    heartbeat_interval: float = Field(default=5.0, gt=0)
    #: A worker not heard from for this long is dead: another worker releases its claims.
    worker_timeout: float = Field(default=20.0, gt=0)
    #: Finished deliveries (with payloads and attempts) and closed conversations older than
    #: this many days are deleted; fractions allowed.
    retention_days: float = Field(default=30.0, gt=0)
    #: How often each worker runs the retention job (seconds).
    retention_interval: float = Field(default=30.0, gt=0)
    #: Rows deleted per transaction by the retention job.
    retention_batch_size: int = Field(default=500, ge=1)
    #: Largest request body the API accepts.
    max_body_bytes: int = 5 * 1024 * 1024
    #: When set, ``GET /metrics`` answers only ``Authorization: Bearer <metrics_key>``.
    metrics_key: str | None = None
    #: SQLite's ``synchronous``: ``normal`` survives a crash of the process, ``full`` a power cut.
    sqlite_synchronous: Literal["normal", "full"] = "normal"

    @field_validator("allowed_destinations", "egress_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object, info: ValidationInfo) -> object:
        value = _comma_list(value)
        if isinstance(value, list):
            # Bad input is refused at start-up.
            parse_networks([str(v) for v in value], setting=str(info.field_name))
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            try:
                Keyring.from_text(value)
            except SecretKeyError as exc:  # a malformed key stops the start, naming the setting
                raise ValueError(str(exc).removeprefix(f"{SECRET_KEY_SETTING} ")) from exc
        return value

    def keyring(self) -> Keyring:
        """The keys the signing secrets are sealed with (see :func:`keyring_for`)."""
        return keyring_for(self.database_url, self.secret_key)

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        value = _comma_list(value)
        if isinstance(value, list):
            try:
                seconds = [float(v) for v in value]
            except ValueError as exc:
                raise ValueError("retry_schedule must be comma-separated seconds") from exc
            if any(s < 0 for s in seconds):
                raise ValueError("retry_schedule entries must not be negative")
            return seconds
        return value

    @cached_property
    def allowed_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.allowed_destinations, setting="allowed_destinations")

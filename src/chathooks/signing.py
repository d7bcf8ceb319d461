"""Standard Webhooks signatures (https://www.standardwebhooks.com), for both ends.

Olark itself signs nothing; chathooks adds the Standard Webhooks scheme so a
receiver can tell our POSTs from anyone else's without changing the body
(extra top-level keys would break strict consumers). Everything travels in
three headers:

* ``webhook-id``: the delivery id, stable across retries (so receivers can dedupe);
* ``webhook-timestamp``: integer Unix seconds when the attempt was signed;
* ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` entries over
  ``f"{id}.{timestamp}."`` followed by the raw body bytes.

Several entries let a sender sign with an old and a new secret during a key
rotation; a :class:`Verifier` with several secrets lets a receiver accept both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _random
import time
from collections.abc import Mapping, Sequence

from chathooks.errors import FieldError

__all__ = [
    "SECRET_PREFIX",
    "SIGNATURE_VERSION",
    "MalformedSignatureHeader",
    "MissingSignatureHeaders",
    "SignatureError",
    "SignatureMismatch",
    "TimestampOutOfTolerance",
    "Verifier",
    "generate_secret",
    "sign",
    "signature_headers",
]

#: Prefix of a Standard Webhooks secret; what follows it is base64.
SECRET_PREFIX = "whsec_"
#: The only scheme chathooks signs and checks (symmetric HMAC-SHA256).
SIGNATURE_VERSION = "v1"
#: Default accepted clock difference, as the Standard Webhooks spec recommends.
DEFAULT_TOLERANCE_SECONDS = 300

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

_SECRET_BYTES = 24
# Integer seconds only: the signed string is the header text, so "1.0" and "1"
# would sign differently; refusing fractions keeps both ends unambiguous.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")


class SignatureError(FieldError):
    """A request whose Standard Webhooks signature cannot be accepted."""

    code: str = "invalid_signature"
    status_code = 401
    #: The header at fault, so an HTTP layer can point at it.
    field: str = SIGNATURE_HEADER


class MissingSignatureHeaders(SignatureError):
    """One or more of the three ``webhook-*`` headers is absent or empty."""

    code = "missing_signature_headers"

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = tuple(missing)
        names = ", ".join(self.missing)
        super().__init__(
            f"the request is missing the header(s) {names}; this endpoint only accepts "
            "requests signed with a Standard Webhooks secret (webhook-id, webhook-timestamp "
            "and webhook-signature)",
            field=self.missing[0],
        )


class MalformedSignatureHeader(SignatureError):
    """A ``webhook-*`` header is present but not in the shape the standard defines."""

    code = "malformed_signature_header"


class TimestampOutOfTolerance(SignatureError):
    """``webhook-timestamp`` is too far from the receiver's clock: a replay or a clock skew."""

    code = "timestamp_out_of_tolerance"
    field = TIMESTAMP_HEADER

    def __init__(self, timestamp: int, now: float, tolerance_seconds: int) -> None:
        self.timestamp = timestamp
        self.skew_seconds = int(now) - timestamp
        self.tolerance_seconds = tolerance_seconds
        direction = "in the past" if self.skew_seconds > 0 else "in the future"
        super().__init__(
            f"webhook-timestamp {timestamp} is {abs(self.skew_seconds)} seconds {direction}; "
            f"at most {tolerance_seconds} seconds are accepted. If the request is fresh, sync "
            "the sender's and receiver's clocks (NTP); otherwise it is a replay"
        )


class SignatureMismatch(SignatureError):
    """No ``v1`` signature in the header matches the body under any configured secret."""

    code = "signature_mismatch"


def generate_secret() -> str:
    """A new random secret in the standard's form: ``whsec_`` + base64 of 24 bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(_SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key bytes of a secret given with or without the ``whsec_`` prefix.

    Raises :class:`ValueError` for a secret that is not base64: a typo in
    configuration should fail at start-up, not as 401s on every request.
    """
    encoded = secret.strip()
    if encoded.startswith(SECRET_PREFIX):
        encoded = encoded[len(SECRET_PREFIX) :]
    # The reference libraries accept unpadded secrets; restore padding before decoding.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            "the webhook secret is not valid base64 after its 'whsec_' prefix; "
            "copy it again exactly, or make a new one with generate_secret()"
        ) from exc
    if not key:
        raise ValueError("the webhook secret is empty; make one with generate_secret()")
    return key


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one delivery attempt of ``body``."""
    digest = _signature(secret_key(secret), msg_id, str(int(timestamp)), body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_headers(
    secret: str | Sequence[str] | None, msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The headers a sender adds to a POST; without a secret, only the id and timestamp.

    The id and timestamp are useful on their own (dedupe, latency), so an
    endpoint without a secret still gets them. Several secrets (a new one and
    the one it replaces, during a rotation) give one ``v1,`` entry each, in
    their order, space-separated: a receiver holding either secret verifies.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    headers = {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(ts)}
    keys = _secret_list(secret)
    if keys:
        headers[SIGNATURE_HEADER] = " ".join(sign(key, msg_id, ts, body) for key in keys)
    return headers


def _secret_list(secrets: str | Sequence[str] | None) -> list[str]:
    """One secret or several (a rotation's new and old), as a list."""
    return [secrets] if isinstance(secrets, str) else list(secrets or ())


def _lookup(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on plain dicts."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                value = candidate
                break
    if value is None or not value.strip():
        return None
    return value.strip()


class Verifier:
    """Checks Standard Webhooks signatures against one or more secrets.

    Pass several secrets while rotating keys: a request signed with any of them
    passes, so the sender and the receiver need not switch at the same instant.
    """

    def __init__(
        self,
        secrets: str | Sequence[str],
        *,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        secret_list = _secret_list(secrets)
        if not secret_list:
            raise ValueError("Verifier needs at least one secret")
        if tolerance_seconds < 0:
            raise ValueError(f"tolerance_seconds must be >= 0, got {tolerance_seconds}")
        self._keys = tuple(secret_key(s) for s in secret_list)
        self.tolerance_seconds = tolerance_seconds

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
        """Check the request's signature and return its ``webhook-id``.

        ``body`` must be the raw bytes as received: re-encoding a form body
        changes its bytes and breaks the signature. Raises a
        :class:`SignatureError` subclass saying what is wrong.
        """
        msg_id = _lookup(headers, ID_HEADER)
        timestamp_text = _lookup(headers, TIMESTAMP_HEADER)
        signature_text = _lookup(headers, SIGNATURE_HEADER)
        missing = [
            name
            for name, value in (
                (ID_HEADER, msg_id),
                (TIMESTAMP_HEADER, timestamp_text),
                (SIGNATURE_HEADER, signature_text),
            )
            if value is None
        ]
        if msg_id is None or timestamp_text is None or signature_text is None:
            raise MissingSignatureHeaders(missing)

        self._check_timestamp(timestamp_text, now)
        candidates = _v1_signatures(signature_text)
        for key in self._keys:
            expected = _signature(key, msg_id, timestamp_text, body)
            # Check every candidate so timing does not reveal which entry matched.
            matched = False
            for candidate in candidates:
                matched |= hmac.compare_digest(expected, candidate)
            if matched:
                return msg_id
        raise SignatureMismatch(
            f"none of the {len(candidates)} v1 signature(s) in webhook-signature matches the "
            f"body with the {len(self._keys)} configured secret(s); check that the sender uses "
            "the same secret and that nothing between them rewrites the body"
        )

    def _check_timestamp(self, text: str, now: float | None) -> int:
        if not _TIMESTAMP_RE.fullmatch(text):
            raise MalformedSignatureHeader(
                f"webhook-timestamp must be whole Unix seconds (e.g. 1700000000), got {text!r}",
                field=TIMESTAMP_HEADER,
            )
        timestamp = int(text)
        current = time.time() if now is None else now
        if abs(current - timestamp) > self.tolerance_seconds:
            raise TimestampOutOfTolerance(timestamp, current, self.tolerance_seconds)
        return timestamp


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` entries of a signature header; other versions are skipped."""
    found: list[bytes] = []
    versions: list[str] = []
    for entry in header.split():
        version, sep, value = entry.partition(",")
        if not sep or not version or not value:
            raise MalformedSignatureHeader(
                "webhook-signature must hold space-separated 'v1,<base64>' entries, "
                f"found {_shorten(entry)!r}"
            )
        versions.append(version)
        if version != SIGNATURE_VERSION:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise MalformedSignatureHeader(
                f"the v1 entry in webhook-signature is not base64: {_shorten(value)!r}"
            ) from exc
    if not found:
        raise SignatureMismatch(
            "webhook-signature has no v1 entry (found versions: "
            f"{', '.join(sorted(set(versions)))}); this endpoint checks v1 HMAC-SHA256 "
            "signatures only"
        )
    return found


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."

"""Standard Webhooks signing and verification, cross-checked against the reference library."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from chathooks.signing import (
    SECRET_PREFIX,
    MalformedSignatureHeader,
    MissingSignatureHeaders,
    SignatureError,
    SignatureMismatch,
    TimestampOutOfTolerance,
    Verifier,
    generate_secret,
    sign,
    signature_headers,
)
from support.fixtures import OLARK_FIXTURES

FIXTURES = OLARK_FIXTURES
BODY = (FIXTURES / "snowplow-spark-olark-test-transcript-raw.body.txt").read_bytes()
NOW = 1_700_000_000
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def headers_for(
    secret: str, body: bytes = BODY, msg_id: str = "msg_1", ts: int = NOW
) -> dict[str, str]:
    return signature_headers(secret, msg_id, body, timestamp=ts)


# --- secrets and signing -------------------------------------------------------------


def test_generate_secret_is_prefixed_base64_of_24_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)) == 24
    assert generate_secret() != secret


def test_sign_matches_the_standard_webhooks_published_example() -> None:
    # The example from the Standard Webhooks specification / reference test suites.
    signature = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_sign_accepts_the_secret_without_its_prefix() -> None:
    bare = SECRET.removeprefix(SECRET_PREFIX)
    assert sign(bare, "msg_1", NOW, BODY) == sign(SECRET, "msg_1", NOW, BODY)


@pytest.mark.parametrize("bad", ["whsec_not base64!", "whsec_", ""])
def test_unusable_secret_fails_loudly_at_configuration_time(bad: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        Verifier(bad)


def test_verifier_needs_a_secret_and_a_sane_tolerance() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        Verifier([])
    with pytest.raises(ValueError, match="tolerance_seconds"):
        Verifier(SECRET, tolerance_seconds=-1)


def test_signature_headers_with_and_without_a_secret() -> None:
    signed = headers_for(SECRET)
    assert signed == {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": sign(SECRET, "msg_1", NOW, BODY),
    }
    unsigned = signature_headers(None, "msg_2", BODY)
    assert set(unsigned) == {"webhook-id", "webhook-timestamp"}
    assert abs(int(unsigned["webhook-timestamp"]) - time.time()) < 5


# --- verification --------------------------------------------------------------------


def test_valid_signature_returns_the_webhook_id() -> None:
    assert Verifier(SECRET).verify(headers_for(SECRET), BODY, now=NOW) == "msg_1"


def test_header_names_are_case_insensitive() -> None:
    headers = {k.upper(): v for k, v in headers_for(SECRET).items()}
    assert Verifier(SECRET).verify(headers, BODY, now=NOW) == "msg_1"


def test_tampered_body_fails() -> None:
    tampered = BODY.replace(b"Olark", b"Olarc")
    assert tampered != BODY
    with pytest.raises(SignatureMismatch) as info:
        Verifier(SECRET).verify(headers_for(SECRET), tampered, now=NOW)
    assert info.value.code == "signature_mismatch"
    assert "same secret" in info.value.message


@pytest.mark.parametrize(
    ("header", "value"), [("webhook-id", "msg_other"), ("webhook-timestamp", str(NOW + 1))]
)
def test_changing_a_signed_header_fails(header: str, value: str) -> None:
    headers = headers_for(SECRET) | {header: value}
    with pytest.raises(SignatureMismatch):
        Verifier(SECRET).verify(headers, BODY, now=NOW)


def test_wrong_secret_fails() -> None:
    with pytest.raises(SignatureMismatch):
        Verifier(generate_secret()).verify(headers_for(SECRET), BODY, now=NOW)


def test_old_timestamp_fails_and_says_by_how_much() -> None:
    with pytest.raises(TimestampOutOfTolerance) as info:
        Verifier(SECRET).verify(headers_for(SECRET), BODY, now=NOW + 301)
    error = info.value
    assert error.field == "webhook-timestamp"
    assert error.skew_seconds == 301
    assert "301 seconds in the past" in error.message
    assert "300" in error.message


def test_future_timestamp_fails() -> None:
    with pytest.raises(TimestampOutOfTolerance, match="in the future"):
        Verifier(SECRET).verify(headers_for(SECRET), BODY, now=NOW - 301)


def test_timestamp_at_the_tolerance_edge_passes_and_tolerance_is_configurable() -> None:
    assert Verifier(SECRET).verify(headers_for(SECRET), BODY, now=NOW + 300) == "msg_1"
    strict = Verifier(SECRET, tolerance_seconds=10)
    assert strict.verify(headers_for(SECRET), BODY, now=NOW + 10) == "msg_1"
    with pytest.raises(TimestampOutOfTolerance):
        strict.verify(headers_for(SECRET), BODY, now=NOW + 11)


def test_default_now_is_the_real_clock() -> None:
    headers = signature_headers(SECRET, "msg_1", BODY)
    assert Verifier(SECRET).verify(headers, BODY) == "msg_1"
    with pytest.raises(TimestampOutOfTolerance):
        Verifier(SECRET).verify(headers_for(SECRET, ts=NOW), BODY)


@pytest.mark.parametrize("drop", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_named(drop: str) -> None:
    headers = headers_for(SECRET)
    del headers[drop]
    with pytest.raises(MissingSignatureHeaders) as info:
        Verifier(SECRET).verify(headers, BODY, now=NOW)
    assert info.value.missing == (drop,)
    assert info.value.field == drop
    assert drop in info.value.message


def test_blank_headers_count_as_missing_and_all_are_listed() -> None:
    with pytest.raises(MissingSignatureHeaders) as info:
        Verifier(SECRET).verify({"webhook-id": "  "}, BODY, now=NOW)
    assert info.value.missing == ("webhook-id", "webhook-timestamp", "webhook-signature")


@pytest.mark.parametrize(
    ("header", "value", "field"),
    [
        ("webhook-timestamp", "abc", "webhook-timestamp"),
        ("webhook-timestamp", "1700000000.5", "webhook-timestamp"),
        ("webhook-timestamp", "-1700000000", "webhook-timestamp"),
        ("webhook-signature", "garbage", "webhook-signature"),
        ("webhook-signature", "v1,", "webhook-signature"),
        ("webhook-signature", ",abc", "webhook-signature"),
        ("webhook-signature", "v1,not*base64*", "webhook-signature"),
    ],
)
def test_malformed_headers_raise_one_typed_error(header: str, value: str, field: str) -> None:
    headers = headers_for(SECRET) | {header: value}
    with pytest.raises(MalformedSignatureHeader) as info:
        Verifier(SECRET).verify(headers, BODY, now=NOW)
    assert info.value.code == "malformed_signature_header"
    assert info.value.field == field
    assert value.strip(",") in info.value.message or "base64" in info.value.message


def test_any_matching_entry_passes_and_unknown_versions_are_ignored() -> None:
    good = sign(SECRET, "msg_1", NOW, BODY)
    other = sign(generate_secret(), "msg_1", NOW, BODY)
    headers = headers_for(SECRET) | {"webhook-signature": f"v1a,AAAA {other}  {good}"}
    assert Verifier(SECRET).verify(headers, BODY, now=NOW) == "msg_1"


def test_only_unknown_versions_is_a_mismatch_that_says_so() -> None:
    headers = headers_for(SECRET) | {"webhook-signature": "v1a,AAAA v2,BBBB"}
    with pytest.raises(SignatureMismatch, match="no v1 entry"):
        Verifier(SECRET).verify(headers, BODY, now=NOW)


def test_key_rotation_accepts_old_and_new_secret() -> None:
    old, new = generate_secret(), generate_secret()
    rotating = Verifier([old, new])
    assert rotating.verify(headers_for(old), BODY, now=NOW) == "msg_1"
    assert rotating.verify(headers_for(new), BODY, now=NOW) == "msg_1"
    with pytest.raises(SignatureMismatch, match="2 configured secret"):
        rotating.verify(headers_for(generate_secret()), BODY, now=NOW)
    # After the rotation the old secret no longer passes.
    with pytest.raises(SignatureMismatch):
        Verifier(new).verify(headers_for(old), BODY, now=NOW)


def test_sender_signing_with_both_secrets_passes_either_receiver() -> None:
    old, new = generate_secret(), generate_secret()
    both = f"{sign(old, 'msg_1', NOW, BODY)} {sign(new, 'msg_1', NOW, BODY)}"
    headers = headers_for(old) | {"webhook-signature": both}
    assert Verifier(old).verify(headers, BODY, now=NOW) == "msg_1"
    assert Verifier(new).verify(headers, BODY, now=NOW) == "msg_1"


def test_errors_share_a_base_and_serialise() -> None:
    errors = [MissingSignatureHeaders, MalformedSignatureHeader, TimestampOutOfTolerance]
    assert all(issubclass(cls, SignatureError) for cls in [*errors, SignatureMismatch])
    error = SignatureMismatch("nope")
    assert error.to_dict() == {
        "error": "signature_mismatch",
        "field": "webhook-signature",
        "message": "nope",
    }


# --- cross-check with the reference implementation (standardwebhooks) ----------------


def test_reference_signatures_verify_with_ours() -> None:
    secret = generate_secret()
    ts = int(time.time())
    theirs = standardwebhooks.Webhook(secret).sign(
        "msg_ref", datetime.fromtimestamp(ts, tz=UTC), BODY.decode()
    )
    headers = {"webhook-id": "msg_ref", "webhook-timestamp": str(ts), "webhook-signature": theirs}
    assert Verifier(secret).verify(headers, BODY) == "msg_ref"
    with pytest.raises(SignatureMismatch):
        Verifier(secret).verify(headers, BODY + b"x")


def test_our_signatures_verify_with_the_reference() -> None:
    secret = generate_secret()
    headers = signature_headers(secret, "msg_ours", BODY)
    reference = standardwebhooks.Webhook(secret)
    assert reference.verify(BODY, headers, json_parse=False) is None
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        reference.verify(BODY + b"x", headers, json_parse=False)
    rotated = headers | {"webhook-signature": f"v1a,AAAA {headers['webhook-signature']}"}
    assert reference.verify(BODY, rotated, json_parse=False) is None


@settings(max_examples=50, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=64),
    msg_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    body=st.text(max_size=300),
    ts=st.integers(min_value=0, max_value=4_000_000_000),
)
def test_signature_agrees_with_the_reference_for_any_input(
    key: bytes, msg_id: str, body: str, ts: int
) -> None:
    secret = SECRET_PREFIX + base64.b64encode(key).decode()
    theirs = standardwebhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body)
    assert sign(secret, msg_id, ts, body.encode()) == theirs

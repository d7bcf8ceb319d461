"""The log formats and their redaction of secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from chathooks.attempt_log import log_failed_attempts
from chathooks.logs import configure_logging, redact
from chathooks.queue import Outcome


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_redact_hides_secrets_keys_and_bearer_tokens() -> None:
    text = (
        "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw key chsk_abc-DEF_123 "
        "admin chadm_Zz9 header Authorization: Bearer token.value.1"
    )
    shown = redact(text)
    for hidden in ("MfKQ9r8GKYqr", "chsk_abc", "chadm_Zz9", "token.value.1"):
        assert hidden not in shown
    assert shown.count("[redacted]") == 4


def test_json_format_is_one_object_per_line_with_extras(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    logging.getLogger("chathooks.test").info("hello %s", "world", extra={"site_id": "site_1"})
    try:
        raise RuntimeError("failed with key chsk_leaked")
    except RuntimeError:
        logging.getLogger("chathooks.test").exception("it broke")
    logging.getLogger("chathooks.test").debug("not shown at info")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "chathooks.test"
    assert first["message"] == "hello world" and first["site_id"] == "site_1"
    assert first["time"].endswith("Z")
    assert "RuntimeError" in second["exception"] and "chsk_leaked" not in stream.getvalue()


def test_text_format_shows_time_level_logger_and_message(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("text", "warning", stream=stream)
    logging.getLogger("chathooks.worker").info("quiet")
    logging.getLogger("chathooks.worker").warning("loud whsec_abc")
    [line] = stream.getvalue().splitlines()
    stamp, level, rest = line.split(" ", 2)
    assert stamp.endswith("Z") and level == "WARNING"
    assert rest == "chathooks.worker: loud [redacted]"


def test_unknown_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        configure_logging("xml")
    with pytest.raises(ValueError, match="level"):
        configure_logging("text", "loud")


def _outcome(**fields: object) -> Outcome:
    values: dict[str, object] = {
        "delivery_seq": 1,
        "delivery_id": "msg_1",
        "site_id": "site_1",
        "endpoint_id": "ep_1",
        "conversation_id": "c1",
        "status": "retrying",
        "attempt_count": 1,
        "round_attempts": 1,
        "next_attempt_at": 10.0,
        "attempt_outcome": "failed",
        "started_at": 1.0,
        "status_code": 503,
        "response_body": "the body VISIBLE-BODY",
    }
    values.update(fields)
    return Outcome(**values)  # type: ignore[arg-type]


def test_failed_attempts_are_warnings_with_ids_and_reason_never_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="chathooks.deliveries")
    log_failed_attempts(
        [
            _outcome(),
            _outcome(delivery_id="msg_2", attempt_outcome="succeeded", status="succeeded"),
            _outcome(delivery_id="msg_3", status_code=None, error="timed out", status="failed"),
        ]
    )
    first, third = caplog.records
    assert first.levelno == logging.WARNING
    assert (first.delivery_id, first.endpoint_id, first.site_id) == ("msg_1", "ep_1", "site_1")  # type: ignore[attr-defined]
    assert first.reason == "HTTP 503"  # type: ignore[attr-defined]
    assert third.reason == "timed out" and "gave up" in third.getMessage()  # type: ignore[attr-defined]
    assert "VISIBLE-BODY" not in caplog.text

"""Reading and writing request bodies in Olark's exact wire form.

On the wire a payload is ``application/x-www-form-urlencoded`` with a single
``data`` field whose value is the JSON document. Receivers in the wild also
see raw JSON bodies (a common sender mistake), so :func:`decode_body` reads
both; :func:`encode_form` only ever writes the form Olark writes.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from chathooks.wire.errors import (
    BodyTooLarge,
    InvalidJSON,
    InvalidPayload,
    MissingDataField,
    NotAnObject,
    UnsupportedContentType,
)
from chathooks.wire.models import Payload, WireModel, payload_from_dict
from chathooks.wire.numbers import loads_checked
from chathooks.wire.quoting import form_quote_bytes

#: The content type Olark sends, exactly: strict consumers compare the whole string.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
#: Largest body read by default (5 MiB); transcripts are a few KB.
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024

_JSON_NAMES = {"null": "null", "bool": "a boolean", "int": "a number", "float": "a number"}


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header, lower-cased, parameters dropped."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def decode_document(
    body: bytes | str,
    content_type: str | None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> dict[str, Any]:
    """The JSON object carried by a request body, without interpreting it.

    Accepts Olark's form body (``+`` and ``%20`` both read as spaces) and a raw
    JSON body. Raises a :class:`~chathooks.wire.errors.WireError` subclass that
    says what is wrong.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > max_body_bytes:
        raise BodyTooLarge(len(raw), max_body_bytes)
    kind = media_type(content_type)
    if kind == FORM_CONTENT_TYPE:
        text = _form_data_field(raw)
    elif kind == JSON_CONTENT_TYPE or kind.endswith("+json"):
        text = _utf8(raw)
    else:
        raise UnsupportedContentType(content_type)
    return _parse_object(text)


def decode_body(
    body: bytes | str,
    content_type: str | None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Payload:
    """The typed payload of a request body; see :func:`decode_document`."""
    return validate_document(decode_document(body, content_type, max_body_bytes=max_body_bytes))


def validate_document(document: dict[str, Any]) -> Payload:
    """The typed payload for a JSON object, or :class:`InvalidPayload` naming the key."""
    try:
        return payload_from_dict(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"]) or "data"
        raise InvalidPayload(f"{path}: {first['msg']}", field=path) from exc


def integration_url_of(reply: bytes | str) -> str | None:
    """The ``integrationUrl`` of an endpoint's JSON object answer; only a string counts.

    Anything else (not JSON, not an object, nested too deeply to read) has none.
    """
    if reply.lstrip()[:1] not in (b"{", "{"):
        return None
    try:
        document = json.loads(reply)
    except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
        return None
    value = document.get("integrationUrl") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


#: ``json.dumps``'s defaults, built once, without its check for a list or object that holds
#: itself: a document is read from JSON or dumped from a model, so it never does.
_ENCODER = json.JSONEncoder(check_circular=False)


def dumps(document: dict[str, Any]) -> str:
    """JSON text as Olark's sender wrote it (``", "`` and ``": "`` separators, ASCII)."""
    return _ENCODER.encode(document)


def encode_form(payload: WireModel | dict[str, Any]) -> bytes:
    """The exact wire body: ``data=<urlencoded JSON>`` (send with :data:`FORM_CONTENT_TYPE`)."""
    document = payload.to_wire() if isinstance(payload, WireModel) else payload
    return b"data=" + form_quote_bytes(dumps(document))


def encode_json(payload: WireModel | dict[str, Any]) -> bytes:
    """A raw JSON body, for endpoints configured to take JSON instead of a form."""
    document = payload.to_wire() if isinstance(payload, WireModel) else payload
    return dumps(document).encode("utf-8")


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSON(
            "the body is not UTF-8", position=exc.start, line=1, column=exc.start + 1
        ) from exc


def _form_data_field(raw: bytes) -> str:
    text = _utf8(raw)
    try:
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MissingDataField(f"the form body cannot be decoded ({exc})") from exc
    values = fields.get("data")
    if not values:
        looks_like_json = text.lstrip().startswith(("{", "%7B", "%7b"))
        hint = "the body looks like bare JSON; prefix it with 'data='" if looks_like_json else ""
        raise MissingDataField(hint)
    return values[0]


def _parse_object(text: str) -> dict[str, Any]:
    try:
        document = loads_checked(text)
    except json.JSONDecodeError as exc:
        raise InvalidJSON(exc.msg, position=exc.pos, line=exc.lineno, column=exc.colno) from exc
    except RecursionError as exc:  # nesting deeper than any real payload
        raise InvalidJSON("nested too deeply", position=0, line=1, column=1) from exc
    if not isinstance(document, dict):
        found = "an array" if isinstance(document, list) else "a string"
        found = _JSON_NAMES.get(type(document).__name__ if document is not None else "null", found)
        raise NotAnObject(found)
    return document

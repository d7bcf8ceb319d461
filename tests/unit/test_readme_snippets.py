"""The README's code works when pasted: its verification snippet, run on a real signed POST."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import WebhookVerificationError

from chathooks.sender.requests import build_request
from chathooks.signing import generate_secret
from chathooks.wire import dumps, send_test_transcript

README = Path(__file__).resolve().parents[2] / "README.md"


def snippet(defining: str) -> dict[str, Any]:
    """Run the README's Python block that defines ``defining``; its names."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (code,) = [block for block in blocks if f"def {defining}(" in block]
    names: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), names)
    return names


@pytest.mark.parametrize("fmt", ["form", "json"])
def test_the_standard_webhooks_snippet_verifies_a_real_delivery(fmt: str) -> None:
    verified_payload = snippet("verified_payload")["verified_payload"]
    secret, document = generate_secret(), send_test_transcript().to_wire()
    request = build_request(
        delivery_id="msg_2Q0Zb3o2B9ZzY8wQh1xTt0mUuHk",
        url="http://x/",
        document_json=dumps(document),
        fmt=fmt,
        secret=secret,
    )
    headers = {name.lower(): value for name, value in request.headers.items()}

    assert verified_payload(secret, request.body, headers) == document
    with pytest.raises(WebhookVerificationError):
        verified_payload(generate_secret(), request.body, headers)

"""The ``chathooks`` command of a toolkit-only install, and ``send-test``'s one implementation.

``pip install chathooks`` brings the receiver toolkit and pydantic, nothing
else, so this module uses the standard library only (``argparse``, no Typer).
It runs ``send-test`` and ``--version``; any command of the service says which
extra it needs and exits 2, instead of a traceback about a missing module.
With the server extra installed, the Typer app's ``send-test`` calls the same
functions here, so the two commands cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from chathooks import __version__
from chathooks.receiver.sendtest import (
    DEFAULT_TIMEOUT_SECONDS,
    OutgoingPost,
    PayloadFileError,
    SendTestResult,
    load_payload_file,
    send_test,
    test_transcript_post,
)
from chathooks.signing import secret_key
from chathooks.urls import check_url

__all__ = ["SERVER_COMMANDS", "BadArgument", "main", "prepare_send_test", "run_send_test"]

#: Commands that need ``pip install 'chathooks[server]'``.
SERVER_COMMANDS = (
    "serve",
    "worker",
    "migrate",
    "site",
    "endpoint",
    "deliveries",
    "receive",
    "simulate",
)
SERVER_EXTRA = "pip install 'chathooks[server]'"


class BadArgument(ValueError):
    """An argument refused before anything is sent; ``param`` names it as the user typed it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def prepare_send_test(url: str, file: Path | None, secret: str | None) -> OutgoingPost:
    """The POST to send, once the URL, the secret and the file are known to be usable."""
    try:
        check_url(url)
    except ValueError as exc:
        raise BadArgument("URL", str(exc)) from exc
    if secret is not None:
        try:
            secret_key(secret)
        except ValueError as exc:
            raise BadArgument("--secret", str(exc)) from exc
    try:
        return load_payload_file(file) if file is not None else test_transcript_post()
    except PayloadFileError as exc:
        raise BadArgument("--file", str(exc)) from exc


def run_send_test(
    url: str,
    post: OutgoingPost,
    *,
    what: str,
    secret: str | None,
    as_json: bool,
    timeout: float,
) -> int:
    """Send, print the outcome (text or ``--json``), and return the exit status (1: failed)."""
    if not as_json:
        print(f"POST {url}  ({what}, {len(post.body)} bytes{', signed' if secret else ''})")
    result = send_test(url, post, secret=secret, timeout_seconds=timeout)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_result(result)
    return 0 if result.ok else 1


def _print_result(result: SendTestResult) -> None:
    elapsed = f"{result.elapsed_seconds * 1000:.0f} ms"
    if result.status is None:
        print(f"failed after {elapsed}: {result.reason}", file=sys.stderr)
        return
    print(f"status: {result.status_text}")
    print(f"time: {elapsed}")
    body = result.response_body.strip()
    print(f"response: {body if body else '(empty)'}")
    if result.integration_url:
        print(f"integrationUrl: {result.integration_url}")
    if result.ok:
        print("ok: the endpoint accepted the POST")
    else:
        print(f"failed: {result.reason}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chathooks",
        description="The chathooks receiver toolkit. The service's commands ("
        + ", ".join(SERVER_COMMANDS)
        + f") need the server extra: {SERVER_EXTRA}",
    )
    parser.add_argument("--version", action="version", version=f"chathooks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    send = commands.add_parser(
        "send-test", help="POST Olark's test transcript (or --file) to URL, like Send test."
    )
    send.add_argument("url", metavar="URL", help="e.g. http://127.0.0.1:8701/webhook")
    send.add_argument("--file", "-f", type=Path, help="a .json payload or a .body.txt wire body")
    send.add_argument("--secret", help="sign with this Standard Webhooks secret (whsec_...)")
    send.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    send.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The toolkit-only command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SERVER_COMMANDS:
        print(
            f"error: 'chathooks {args[0]}' is part of the service, which is not installed; "
            f"install it with: {SERVER_EXTRA}",
            file=sys.stderr,
        )
        return 2
    parser = _parser()
    options = parser.parse_args(args)
    if options.command is None:
        parser.print_help()
        return 0
    secret = options.secret or os.environ.get("CHATHOOKS_SEND_TEST_SECRET")
    try:
        post = prepare_send_test(options.url, options.file, secret)
    except BadArgument as exc:
        parser.exit(2, f"error: {exc.param}: {exc}\n")
    what = str(options.file) if options.file is not None else "Olark's test transcript"
    return run_send_test(
        options.url,
        post,
        what=what,
        secret=secret,
        as_json=options.as_json,
        timeout=options.timeout,
    )

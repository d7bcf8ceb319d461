"""``chathooks simulate``: realistic synthetic chats driven through the conversation API.

For demos and load: visitors with plausible details start chats, operators
and visitors exchange lines, some operators type ``!lead``, chats close, and
some visitors leave offline messages, all over HTTP exactly as a chat
platform would call chathooks. Every request is bounded: the command makes a
known number of conversations and stops.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chathooks.urls import check_url

__all__ = ["SimulationSummary", "register", "simulate"]

#: Requests per conversation never exceed this, so a run's size is known up front.
MAX_LINES = 10
REQUEST_TIMEOUT_SECONDS = 30.0

_FIRST = ["Paul", "Maria", "Wei", "Aisha", "Lucas", "Sofia", "Kenji", "Amara", "Noah", "Elena"]
_LAST = ["Garcia", "Smith", "Chen", "Okafor", "Müller", "Rossi", "Tanaka", "Silva", "Novak"]
_PLACES = [
    ("San Francisco", "CA", "United States", "US"),
    ("Buffalo Grove", "IL", "United States", "US"),
    ("Toronto", "ON", "Canada", "CA"),
    ("Berlin", "BE", "Germany", "DE"),
    ("Lyon", "ARA", "France", "FR"),
    ("São Paulo", "SP", "Brazil", "BR"),
    ("Osaka", "27", "Japan", "JP"),
    ("Lagos", "LA", "Nigeria", "NG"),
]
_BROWSERS = ["Chrome 124.0.6367.91", "Firefox 125.0", "Safari 17.4.1", "Edge 124.0.2478.67"]
_SYSTEMS = ["Windows", "Macintosh", "Linux", "iOS", "Android"]
_PAGES = ["/", "/pricing", "/docs/getting-started", "/checkout", "/contact"]
_REFERRERS = ["https://www.google.com/", "https://news.example/", "", "https://partner.example/"]
_ORGS = ["Example Corp", "Acme Retail", "Comcast Business", "Globex", ""]
_GROUPS = [{"id": "g-sales", "name": "Sales"}, {"id": "g-support", "name": "Support"}]
_OPERATORS = [
    {
        "id": "1029431",
        "username": "paul-ops",
        "nickname": "Paul",
        "emailAddress": "paul@example.com",
    },
    {
        "id": "1029432",
        "username": "dana-ops",
        "nickname": "Dana",
        "emailAddress": "dana@example.com",
    },
    {"id": "1029433", "username": "li-ops", "nickname": "Li", "emailAddress": "li@example.com"},
]
_VISITOR_LINES = [
    "Hi, I have a question about your pricing.",
    "Do you ship to Canada?",
    "My order hasn't arrived yet.",
    "Can I upgrade my plan mid-month?",
    "Is there a discount for nonprofits?",
    "Thanks, that helps!",
    "What are your support hours?",
]
_OPERATOR_LINES = [
    "Hi there! Happy to help.",
    "Let me check that for you.",
    "Yes, we do. It takes 3-5 business days.",
    "I've sent you an e-mail with the details.",
    "Is there anything else I can do for you?",
]
_COMMANDS = ["!lead", "!lead interested in the pro plan", "!case follow up by phone", "!webhook"]


@dataclass
class SimulationSummary:
    """What a run did; ``errors`` counts failed requests (their first messages are kept)."""

    conversations: int = 0
    closed: int = 0
    offline_messages: int = 0
    messages: int = 0
    commands: int = 0
    deliveries: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def failed(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(message)


class RequestFailed(Exception):
    """The API answered with an error, or could not be reached."""


class _Api:
    """The conversation API of one site, over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, base: str, site: str) -> None:
        self._session = session
        self._prefix = f"{base.rstrip('/')}/api/v1/sites/{site}"

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            async with self._session.request(method, self._prefix + path, json=body) as response:
                text = await response.text()
                if response.status >= 400:
                    raise RequestFailed(f"{method} {path}: HTTP {response.status}: {_reason(text)}")
                return json.loads(text) if text else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RequestFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc


def _reason(text: str) -> str:
    try:
        return str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        return text[:200]


class _Chats:
    """Makes up visitors and conversations from a seeded random source."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def visitor(self) -> dict[str, Any]:
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, region, country, code = rng.choice(_PLACES)
        named = rng.random() < 0.7
        visitor: dict[str, Any] = {
            "id": "".join(
                rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", k=32)
            ),
            "city": city,
            "region": region,
            "country": country,
            "countryCode": code,
            # Documentation ranges (RFC 5737): realistic, and never anyone's address.
            "ip": f"{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rng.randint(1, 254)}",
            "browser": rng.choice(_BROWSERS),
            "operatingSystem": rng.choice(_SYSTEMS),
            "conversationBeginPage": "https://shop.example" + rng.choice(_PAGES),
            "referrer": rng.choice(_REFERRERS),
            "organization": rng.choice(_ORGS),
            "customFields": {
                "plan": rng.choice(["free", "pro", "team"]),
                "cart_items": rng.randint(0, 5),
            },
        }
        if named:
            visitor["fullName"] = f"{first} {last}"
            visitor["emailAddress"] = f"{first}.{last}@example.com".lower().replace("ü", "u")
        return visitor

    def start(self) -> dict[str, Any]:
        body: dict[str, Any] = {"visitor": self.visitor()}
        if self.rng.random() < 0.5:
            body["groups"] = [self.rng.choice(_GROUPS)]
        if self.rng.random() < 0.3:
            body["tags"] = [self.rng.choice(["returning", "vip", "mobile"])]
        return body

    def line(self, operator: dict[str, Any] | None) -> dict[str, Any]:
        if operator is None:
            return {"from": "visitor", "body": self.rng.choice(_VISITOR_LINES)}
        return {"from": "operator", "body": self.rng.choice(_OPERATOR_LINES), "operator": operator}

    def offline(self) -> dict[str, Any]:
        visitor = self.visitor()
        name = visitor.get("fullName", "Visitor")
        email = visitor.get("emailAddress", "")
        message = self.rng.choice(_VISITOR_LINES)
        body = f"name: {name}\nemail: {email}\nMessage: {message}"
        return {"visitor": visitor, "body": body}


async def _conversation(
    api: _Api, chats: _Chats, summary: SimulationSummary, command: bool
) -> None:
    """One chat from start to close; a failed request ends this chat and is counted.

    With ``command`` the operator types a command after a random number of
    lines: mostly mid-chat (so the chat goes on and is posted again when it
    completes), sometimes as the last thing before closing.
    """
    rng = chats.rng
    try:
        created = await api.call("POST", "/conversations", chats.start())
        summary.conversations += 1
        summary.deliveries += len(created.get("deliveries", []))
        path = f"/conversations/{created['id']}"
        operator = rng.choice(_OPERATORS)
        lines = rng.randint(2, MAX_LINES - 2)
        command_after = rng.randint(1, lines) if command else None
        for number in range(lines):
            speaker = operator if number % 2 else None
            await api.call("POST", path + "/messages", chats.line(speaker))
            summary.messages += 1
            if number + 1 == command_after:
                body = {"from": "operator", "body": rng.choice(_COMMANDS), "operator": operator}
                result = await api.call("POST", path + "/messages", body)
                summary.commands += 1
                summary.deliveries += sum(
                    1 for d in result.get("deliveries", []) if not d.get("reused")
                )
        if rng.random() < 0.4:
            await api.call("PATCH", path, {"chat_feedback": {"overall_chat": rng.randint(3, 5)}})
        closed = await api.call("POST", path + "/close")
        summary.closed += 1
        summary.deliveries += len(closed.get("deliveries", []))
    except RequestFailed as exc:
        summary.failed(str(exc))


async def _offline(api: _Api, chats: _Chats, summary: SimulationSummary) -> None:
    try:
        accepted = await api.call("POST", "/offline-messages", chats.offline())
        summary.offline_messages += 1
        summary.deliveries += len(accepted.get("deliveries", []))
    except RequestFailed as exc:
        summary.failed(str(exc))


async def simulate(
    api_url: str,
    site: str,
    key: str,
    *,
    conversations: int,
    commands: bool = False,
    rate: float = 0.0,
    offline_share: float = 0.1,
    concurrency: int = 20,
    seed: int | None = None,
    progress: Progress | None = None,
) -> SimulationSummary:
    """Run ``conversations`` chats (``offline_share`` of them offline messages) against the API.

    ``rate`` chats start per second (0: as fast as ``concurrency`` allows).
    With ``commands`` every chat's operator types one command (``!lead``...)
    somewhere in it. Raises :class:`RequestFailed` when the API cannot be
    used at all (unreachable, wrong key, unknown site).
    """
    rng = random.Random(seed)
    chats = _Chats(rng)
    summary = SimulationSummary()
    offline_count = round(conversations * offline_share)
    plan = [True] * offline_count + [False] * (conversations - offline_count)
    rng.shuffle(plan)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    headers = {"authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        headers=headers, timeout=timeout, connector=connector
    ) as session:
        api = _Api(session, api_url, site)
        await api.call("GET", "/conversations?limit=1")  # wrong key or site: stop before starting
        gate = asyncio.Semaphore(concurrency)
        task_id = progress.add_task("chats", total=conversations) if progress else None
        started = time.monotonic()

        async def one(index: int, offline: bool) -> None:
            if rate > 0:
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            async with gate:
                if offline:
                    await _offline(api, chats, summary)
                else:
                    await _conversation(api, chats, summary, commands)
            if progress is not None and task_id is not None:
                progress.advance(task_id)

        await asyncio.gather(*(one(index, offline) for index, offline in enumerate(plan)))
    return summary


def simulate_command(
    api_url: str = typer.Option(
        ..., "--api-url", help="The chathooks service, e.g. http://127.0.0.1:8700."
    ),
    site: str = typer.Option(..., "--site", help="The site id (site_...)."),
    key: str = typer.Option(
        ..., "--key", envvar="CHATHOOKS_SITE_KEY", help="The site's API key.", show_default=False
    ),
    conversations: int = typer.Option(
        10, "--conversations", "-n", help="How many chats (including offline messages)."
    ),
    commands: bool = typer.Option(
        False, "--commands", help="Operators type a command (!lead, !case...) in every chat."
    ),
    rate: float = typer.Option(
        0.0, "--rate", help="Chats started per second; 0 starts them as fast as allowed."
    ),
    offline_share: float = typer.Option(
        0.1, "--offline-share", help="Share of chats that are offline messages (0 to 1)."
    ),
    concurrency: int = typer.Option(20, "--concurrency", help="Chats in progress at once."),
    seed: int | None = typer.Option(None, "--seed", help="Repeat the same made-up chats."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Drive realistic synthetic chats through the conversation API (for demos and load)."""
    problems = _check_options(api_url, conversations, rate, offline_share, concurrency)
    if problems:
        for problem in problems:
            typer.echo(f"chathooks simulate: {problem}", err=True)
        raise typer.Exit(2)
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=as_json) as progress:
            summary = asyncio.run(
                simulate(
                    api_url,
                    site,
                    key,
                    conversations=conversations,
                    commands=commands,
                    rate=rate,
                    offline_share=offline_share,
                    concurrency=concurrency,
                    seed=seed,
                    progress=progress,
                )
            )
    except RequestFailed as exc:
        typer.echo(f"chathooks simulate: cannot use the API at {api_url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(asdict(summary)))
    else:
        _print_summary(summary)
    if summary.errors:
        raise typer.Exit(1)


def _check_options(
    api_url: str, conversations: int, rate: float, offline_share: float, concurrency: int
) -> list[str]:
    problems = []
    try:
        check_url(api_url, example="http://127.0.0.1:8700")
    except ValueError as exc:
        problems.append(f"--api-url must be an http(s) URL: {exc}")
    if conversations < 1:
        problems.append("--conversations must be at least 1")
    if rate < 0:
        problems.append("--rate must not be negative (0 means as fast as allowed)")
    if not 0 <= offline_share <= 1:
        problems.append("--offline-share must be between 0 and 1, e.g. 0.1 for one in ten")
    if concurrency < 1:
        problems.append("--concurrency must be at least 1")
    return problems


def _print_summary(summary: SimulationSummary) -> None:
    rows = [
        ("conversations", summary.conversations),
        ("  closed", summary.closed),
        ("offline messages", summary.offline_messages),
        ("messages", summary.messages),
        ("commands", summary.commands),
        ("deliveries created", summary.deliveries),
        ("errors", summary.errors),
    ]
    for label, value in rows:
        typer.echo(f"{label:<20}{value:>8}")
    for sample in summary.error_samples:
        typer.echo(f"  error: {sample}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to ``app``."""
    app.command("simulate")(simulate_command)

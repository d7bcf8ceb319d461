"""Secrets at rest: endpoint signing secrets (and what else must not lie in plain text)
are stored sealed with the service key, AES-256-GCM.

A sealed value describes itself, ``chs1.<key id>.<base64url(nonce | ciphertext | tag)>``:
``chs1`` is the format, the key id the first 8 hex digits of the SHA-256 of
the key that sealed it. So a value names the key it needs, and a key can be
replaced: ``CHATHOOKS_SECRET_KEY`` holds one or more keys, comma-separated,
each the base64 of 32 random bytes; the first seals, all of them open.

Without ``CHATHOOKS_SECRET_KEY`` an SQLite database gets a key of its own,
generated once into a file beside it (``chathooks.db.key``, mode 0600). On
PostgreSQL there is no such place, so the service refuses to start until the
setting is given. A value that the configured keys cannot open is a
:class:`SecretKeyError` naming the setting, never a silently wrong signature.

Opening costs a few microseconds, and the worker opens the secret of every
delivery it claims, so opened values are cached in the process, keyed by the
sealed text (which changes whenever the secret does), at most
:data:`CACHE_SIZE` of them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import logging
import os
import secrets as _random
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.db.engine import is_sqlite, sqlite_file
from chathooks.db.tables import endpoints

__all__ = [
    "CACHE_SIZE",
    "KEY_FILE_SUFFIX",
    "SECRET_KEY_SETTING",
    "Keyring",
    "SecretKeyError",
    "bind_keyring",
    "check_keyring",
    "configured_keyring",
    "is_sealed",
    "key_file_for",
    "keyring_for",
    "keyring_of",
    "new_key",
    "still_signs",
]

#: The environment variable (``Settings.secret_key``) holding the service key(s).
SECRET_KEY_SETTING = "CHATHOOKS_SECRET_KEY"
#: What is appended to the SQLite file's name for its generated key file.
KEY_FILE_SUFFIX = ".key"
#: Opened values kept in memory, per keyring.
CACHE_SIZE = 4096

log = logging.getLogger(__name__)

_FORMAT = "chs1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
#: Bound into every seal: a value sealed by something else with the same key does not open.
_CONTEXT = b"chathooks secret v1"


class SecretKeyError(ValueError):
    """The service key is missing, malformed, or does not open what the database holds."""


def new_key() -> str:
    """A fresh service key in the form ``CHATHOOKS_SECRET_KEY`` takes."""
    return base64.b64encode(_random.token_bytes(_KEY_BYTES)).decode("ascii")


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def _parse_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES:
        raise SecretKeyError(
            f"{source} must be the base64 of {_KEY_BYTES} random bytes (several keys "
            "comma-separated, the first one sealing); make one with "
            "python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'"
        )
    return key


def is_sealed(value: str) -> bool:
    """Whether ``value`` is in the sealed format (a plain ``whsec_`` secret never is)."""
    return value.startswith(_FORMAT + ".")


class Keyring:
    """The service keys: the first seals, every one opens what it sealed."""

    def __init__(self, keys: Sequence[bytes], *, source: str) -> None:
        if not keys:
            raise SecretKeyError(f"{source} holds no key")
        self._ciphers = {_key_id(key): AESGCM(key) for key in keys}
        self._sealing_id = _key_id(keys[0])
        #: Where the keys came from, for messages (never the keys themselves).
        self.source = source
        self._open_cached = functools.lru_cache(maxsize=CACHE_SIZE)(self._open)

    @classmethod
    def from_text(cls, text: str, *, source: str = SECRET_KEY_SETTING) -> Keyring:
        parts = [part for part in text.split(",") if part.strip()]
        if not parts:
            raise SecretKeyError(f"{source} is empty; give the base64 of 32 random bytes")
        return cls([_parse_key(part, source) for part in parts], source=source)

    def seal(self, plaintext: str) -> str:
        nonce = _random.token_bytes(_NONCE_BYTES)
        sealed = self._ciphers[self._sealing_id].encrypt(nonce, plaintext.encode(), _CONTEXT)
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{_FORMAT}.{self._sealing_id}.{body}"

    def open(self, sealed: str, *, cached: bool = True) -> str:
        """The plaintext of a value :meth:`seal` made; :class:`SecretKeyError` otherwise.

        ``cached=False`` for large, rarely read values, which the cache should not keep.
        """
        return self._open_cached(sealed) if cached else self._open(sealed)

    def seal_optional(self, plaintext: str | None) -> str | None:
        return None if plaintext is None else self.seal(plaintext)

    def open_optional(self, sealed: str | None) -> str | None:
        return None if sealed is None else self.open(sealed)

    def seal_values(self, values: Mapping[str, str]) -> dict[str, str]:
        """``values`` with each value sealed; the names stay readable, they are not secret.

        For an endpoint's own request headers, whose values are often a receiver's token.
        """
        return {name: self.seal(value) for name, value in values.items()}

    def open_values(self, values: Mapping[str, str]) -> dict[str, str]:
        """What :meth:`seal_values` sealed."""
        return {name: self.open(value) for name, value in values.items()}

    def _open(self, sealed: str) -> str:
        form, _, rest = sealed.partition(".")
        key_id, _, body = rest.partition(".")
        if form != _FORMAT or not body:
            raise SecretKeyError(
                "the database holds a secret that is not sealed; run 'chathooks migrate', "
                "which seals the secrets an older version stored in plain text"
            )
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SecretKeyError(
                f"the database holds secrets sealed with key {key_id}, which {self.source} "
                f"does not hold (it has {', '.join(sorted(self._ciphers))}); set "
                f"{SECRET_KEY_SETTING} to the key the database was used with (a new key "
                "goes first, the old ones after it)"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _CONTEXT).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise SecretKeyError(
                f"a secret sealed with key {key_id} does not open with {self.source}: "
                "the stored value is damaged"
            ) from exc


def still_signs(until: float | None, now: float) -> bool:
    """Whether a previous secret kept ``until`` then still signs at ``now``."""
    return until is not None and now < until


def key_file_for(database: Path) -> Path:
    """The key file of an SQLite database file: ``chathooks.db`` → ``chathooks.db.key``."""
    return database.with_name(database.name + KEY_FILE_SUFFIX)


def _key_from_file(path: Path) -> Keyring:
    """The key in ``path``, made first if there is none; every process agrees on one key.

    The key is written to a private temporary file and then hard-linked into
    place, which fails if the file exists: of processes starting together,
    one creates it and the others read that one, never a half-written file.
    """
    source = f"the key file {path}"
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{_random.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(new_key() + "\n")
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(temporary, path)
                log.warning(
                    "made the service key %s (mode 0600) for the signing secrets of this "
                    "database; back it up with the database: without it they cannot be read",
                    path,
                )
        finally:
            temporary.unlink(missing_ok=True)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SecretKeyError(f"cannot read {source}: {exc}") from exc
    return Keyring.from_text(text, source=source)


def keyring_for(database_url: str, secret_key: str | None) -> Keyring:
    """The keys of the service on ``database_url``: ``secret_key`` (the setting) when given,
    else the SQLite file's key file; PostgreSQL needs the setting."""
    if secret_key is not None and secret_key.strip():
        return Keyring.from_text(secret_key)
    database = sqlite_file(database_url)
    if database is not None:
        return _key_from_file(key_file_for(database))
    if is_sqlite(database_url):
        # An in-memory database lives as long as the process: so may its key.
        return Keyring([_random.token_bytes(_KEY_BYTES)], source="a key for this process")
    raise SecretKeyError(
        f"{SECRET_KEY_SETTING} is not set; on PostgreSQL the signing secrets are sealed "
        "with a key the service is given, not one kept beside the data. Set it to the "
        "base64 of 32 random bytes, the same for every chathooks process of this database"
    )


def configured_keyring(database_url: str) -> Keyring:
    """:func:`keyring_for` with ``CHATHOOKS_SECRET_KEY`` as the environment has it."""
    return keyring_for(database_url, os.environ.get(SECRET_KEY_SETTING))


async def check_keyring(connection: AsyncConnection) -> None:
    """Open one stored secret: a wrong key stops the start with a :class:`SecretKeyError`."""
    sealed = (
        await connection.execute(
            select(endpoints.c.secret).where(endpoints.c.secret.is_not(None)).limit(1)
        )
    ).scalar()
    if sealed is not None:
        keyring_of(connection).open(sealed)


_bound: weakref.WeakKeyDictionary[Engine, Keyring] = weakref.WeakKeyDictionary()


def bind_keyring(engine: AsyncEngine, keyring: Keyring) -> None:
    """Make ``keyring`` the one every connection of ``engine`` seals and opens with."""
    _bound[engine.sync_engine] = keyring


def keyring_of(connection: AsyncConnection) -> Keyring:
    """The keyring of ``connection``'s engine.

    An engine nothing was bound to (a CLI command's, a test's) gets the keys
    its database URL and ``CHATHOOKS_SECRET_KEY`` name, once.
    """
    engine = connection.engine.sync_engine
    found = _bound.get(engine)
    if found is None:
        found = configured_keyring(engine.url.render_as_string(hide_password=False))
        _bound[engine] = found
    return found

"""Secrets at rest: the sealed format, the service keys, and the SQLite key file."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from chathooks.sealing import (
    Keyring,
    SecretKeyError,
    is_sealed,
    key_file_for,
    keyring_for,
    new_key,
)
from chathooks.settings import Settings
from chathooks.signing import generate_secret


def test_a_sealed_secret_opens_to_itself_and_does_not_contain_it() -> None:
    keyring = Keyring.from_text(new_key())
    secret = generate_secret()

    sealed = keyring.seal(secret)

    assert is_sealed(sealed) and not is_sealed(secret)
    assert secret not in sealed and secret.removeprefix("whsec_") not in sealed
    assert keyring.open(sealed) == secret
    assert keyring.seal(secret) != sealed  # a fresh nonce every time


def test_the_first_key_seals_and_the_others_still_open() -> None:
    old, new = new_key(), new_key()
    sealed_before = Keyring.from_text(old).seal("whsec_b2xk")

    both = Keyring.from_text(f"{new}, {old}")

    assert both.open(sealed_before) == "whsec_b2xk"
    assert Keyring.from_text(new).open(both.seal("whsec_bmV3")) == "whsec_bmV3"


def test_a_key_that_did_not_seal_it_says_so_naming_the_setting() -> None:
    sealed = Keyring.from_text(new_key()).seal("whsec_c2VjcmV0")
    other = Keyring.from_text(new_key())

    with pytest.raises(SecretKeyError, match="CHATHOOKS_SECRET_KEY"):
        other.open(sealed)


def test_a_damaged_value_is_an_error_not_a_wrong_secret() -> None:
    keyring = Keyring.from_text(new_key())
    sealed = keyring.seal("whsec_c2VjcmV0")
    damaged = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]

    with pytest.raises(SecretKeyError, match="damaged"):
        keyring.open(damaged)
    with pytest.raises(SecretKeyError, match="not sealed"):
        keyring.open("whsec_c2VjcmV0")


@pytest.mark.parametrize("text", ["", "not base64!", "c2hvcnQ=", new_key() + ",short"])
def test_a_malformed_key_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(SecretKeyError, match="CHATHOOKS_SECRET_KEY"):
        Keyring.from_text(text)


def test_settings_refuse_a_malformed_key_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="base64 of 32 random bytes"):
        Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key="abc")


def test_without_a_key_sqlite_gets_a_private_key_file_made_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chathooks.db'}"

    first = keyring_for(url, None)
    path = key_file_for(tmp_path / "chathooks.db")

    assert path == tmp_path / "chathooks.db.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyring_for(url, None).open(first.seal("whsec_a2V5")) == "whsec_a2V5"
    assert [p.name for p in tmp_path.iterdir()] == ["chathooks.db.key"]  # no temporary left


def _seal_with_key_file(url: str) -> str:
    return keyring_for(url, None).seal("whsec_c2FtZQ")


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chathooks.db'}"
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        sealed = pool.map(_seal_with_key_file, [url] * 8)

    keyring = keyring_for(url, None)
    assert {keyring.open(value) for value in sealed} == {"whsec_c2FtZQ"}


def test_the_setting_wins_over_the_key_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chathooks.db'}"
    key = new_key()

    sealed = keyring_for(url, key).seal("whsec_c2V0")

    assert not key_file_for(tmp_path / "chathooks.db").exists()
    assert Keyring.from_text(key).open(sealed) == "whsec_c2V0"


def test_postgresql_without_the_setting_is_refused_naming_it() -> None:
    with pytest.raises(SecretKeyError, match="CHATHOOKS_SECRET_KEY is not set"):
        keyring_for("postgresql://postgres@127.0.0.1/chathooks", None)

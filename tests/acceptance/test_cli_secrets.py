"""Signing secrets from the command line: show, rotate, and the service key's errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from chathooks.sealing import new_key
from support.processes import run


def run_json(*args: str, cwd: Path, **env: str) -> Any:
    result = run(*args, "--json", cwd=cwd, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def site_and_endpoint(tmp_path: Path, **env: str) -> tuple[str, dict[str, Any]]:
    migrated = run("migrate", cwd=tmp_path, **env)
    assert migrated.returncode == 0, migrated.stderr
    made = f"made the service key {tmp_path / 'chathooks.db.key'} (mode 0600)"
    assert (made in migrated.stderr) == ("CHATHOOKS_SECRET_KEY" not in env)
    again = run("migrate", cwd=tmp_path, **env)
    assert again.returncode == 0 and "service key" not in again.stderr
    site = run_json("site", "create", "example.com", cwd=tmp_path, **env)["id"]
    endpoint = run_json("endpoint", "add", site, "http://127.0.0.1:9/hook", cwd=tmp_path, **env)
    return site, endpoint


def test_show_and_rotate_a_secret(tmp_path: Path) -> None:
    site, endpoint = site_and_endpoint(tmp_path)
    key_file = tmp_path / "chathooks.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    shown = run("endpoint", "secret", site, endpoint["id"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"signing secret: {endpoint['secret']}"

    rotated = run_json(
        "endpoint", "rotate-secret", site, endpoint["id"], "--grace-seconds", "600", cwd=tmp_path
    )
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret"] == endpoint["secret"]

    shown = run("endpoint", "secret", site, endpoint["id"], cwd=tmp_path)
    lines = shown.stdout.splitlines()
    assert lines[0] == f"signing secret: {rotated['secret']}"
    assert lines[1].startswith("previous secret (also signs until 20")
    assert lines[1].endswith(endpoint["secret"])


def test_bad_input_is_refused_with_a_message_and_exit_1(tmp_path: Path) -> None:
    site, endpoint = site_and_endpoint(tmp_path)

    bad_grace = run(
        "endpoint", "rotate-secret", site, endpoint["id"], "--grace-seconds", "-1", cwd=tmp_path
    )
    assert bad_grace.returncode == 1 and "grace_seconds" in bad_grace.stderr
    missing = run("endpoint", "secret", site, "ep_none", cwd=tmp_path)
    assert missing.returncode == 1 and "ep_none" in missing.stderr

    malformed = run("migrate", cwd=tmp_path, CHATHOOKS_SECRET_KEY="abc")
    assert malformed.returncode == 1
    assert "CHATHOOKS_SECRET_KEY" in malformed.stderr and "32 random bytes" in malformed.stderr


def test_a_wrong_key_stops_the_service_and_the_commands_naming_the_setting(
    tmp_path: Path,
) -> None:
    site, endpoint = site_and_endpoint(tmp_path)
    wrong = new_key()

    for command in (
        ("migrate",),
        ("serve", "--port", "0"),
        ("worker",),
        ("endpoint", "secret", site, endpoint["id"]),
    ):
        result = run(*command, cwd=tmp_path, CHATHOOKS_SECRET_KEY=wrong)
        assert result.returncode == 1, (command, result.stderr)
        assert "CHATHOOKS_SECRET_KEY" in result.stderr, command
        assert "does not hold" in result.stderr, command
        assert endpoint["secret"] not in result.stderr + result.stdout


def test_the_key_can_move_from_the_key_file_to_the_setting(tmp_path: Path) -> None:
    site, endpoint = site_and_endpoint(tmp_path)
    key = (tmp_path / "chathooks.db.key").read_text().strip()
    (tmp_path / "chathooks.db.key").unlink()

    shown = run_json(
        "endpoint", "secret", site, endpoint["id"], cwd=tmp_path, CHATHOOKS_SECRET_KEY=key
    )
    assert shown["secret"] == endpoint["secret"]
    # A new key first, the old one after it: old secrets open, new ones are sealed anew.
    both = f"{new_key()},{key}"
    rotated = run_json(
        "endpoint", "rotate-secret", site, endpoint["id"], cwd=tmp_path, CHATHOOKS_SECRET_KEY=both
    )
    assert rotated["previous_secret"] == endpoint["secret"]


def test_postgresql_without_the_key_is_refused_naming_the_setting(
    tmp_path: Path, postgres_url: str
) -> None:
    result = run("migrate", "--database-url", postgres_url, cwd=tmp_path, CHATHOOKS_SECRET_KEY="")
    assert result.returncode == 1
    assert "CHATHOOKS_SECRET_KEY is not set" in result.stderr
    assert run("migrate", "--database-url", postgres_url, cwd=tmp_path).returncode == 0

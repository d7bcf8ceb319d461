"""The receiver toolkit imports nothing of the server.

``pip install chathooks`` has pydantic and nothing else; these tests import
every toolkit module in a fresh interpreter where the server's packages (and
the web frameworks, which endpoint owners bring themselves) cannot be
imported, as on such an install.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: What the [server] extra (and the dev extra's frameworks) would bring.
BLOCKED = (
    "aiohttp",
    "aiosqlite",
    "alembic",
    "asyncpg",
    "click",
    "cryptography",
    "django",
    "fastapi",
    "flask",
    "httpx",
    "jinja2",
    "prometheus_client",
    "pydantic_settings",
    "rich",
    "sqlalchemy",
    "starlette",
    "typer",
    "uvicorn",
    "uvloop",
    "werkzeug",
)
TOOLKIT = (
    "chathooks",
    "chathooks.errors",
    "chathooks.urls",
    "chathooks.paging",
    "chathooks.wire",
    "chathooks.signing",
    "chathooks.receiver",
    "chathooks.receiver.core",
    "chathooks.receiver.dedupe",
    "chathooks.receiver.ipcheck",
    "chathooks.receiver.sendtest",
    "chathooks.receiver.adapters.flask",
    "chathooks.receiver.adapters.django",
    "chathooks.commands.toolkit",
    "chathooks.cli",
)


def run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    prelude = textwrap.dedent(
        f"""
        import importlib.abc, sys
        BLOCKED = {BLOCKED!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None
        sys.meta_path.insert(0, Block())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_toolkit_module_imports_without_the_server() -> None:
    result = run_blocked(
        f"""
        import importlib
        for name in {TOOLKIT!r}:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_blocker_does_block_the_server() -> None:
    """The test above would pass vacuously if the blocker let server modules through."""
    result = run_blocked("import chathooks.commands.root")
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr


def test_without_the_server_a_service_command_names_the_extra() -> None:
    result = run_blocked(
        """
        sys.argv = ["chathooks", "serve"]
        from chathooks.cli import main
        main()
        """
    )
    assert result.returncode == 2
    assert "pip install 'chathooks[server]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_server_send_test_still_runs() -> None:
    result = run_blocked(
        """
        sys.argv = ["chathooks", "send-test", "ftp://example.org/x"]
        from chathooks.cli import main
        main()
        """
    )
    assert result.returncode == 2
    assert "http://" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_worker_command_line_loads_no_web_stack() -> None:
    """``chathooks worker`` gets its worker from the composition root, not from the app."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, chathooks.commands.root, chathooks.runtime\n"
            "web = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'starlette', 'uvicorn', 'jinja2'))\n"
            "assert not web, web\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


#: The receiver (``chathooks receive`` and its store) is built on the toolkit and the shared
#: database plumbing (packages and their submodules); the sender's service (queue,
#: conversations, API, erasure...) is not its to load.
RECEIVER = (
    "chathooks.receiver.app",
    "chathooks.receiver.export",
    "chathooks.receiver.retention",
    "chathooks.receiver.store",
    "chathooks.commands.receiver",
)
RECEIVER_MAY_LOAD = (
    "chathooks.commands",
    "chathooks.commands.erase_options",
    "chathooks.commands.log_options",
    "chathooks.commands.receiver",
    "chathooks.commands.toolkit",
    "chathooks.db",
    "chathooks.errors",
    "chathooks.http_limits",
    "chathooks.logs",
    "chathooks.paging",
    "chathooks.receiver",
    "chathooks.signing",
    "chathooks.urls",
    "chathooks.wire",
)


def test_the_receiver_loads_nothing_of_the_sender_service() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import importlib, sys
                for name in {RECEIVER!r}:
                    importlib.import_module(name)
                allowed = {RECEIVER_MAY_LOAD!r}
                foreign = sorted(
                    m for m in sys.modules
                    if m.startswith("chathooks.")
                    and not any(m == a or m.startswith(a + ".") for a in allowed)
                )
                assert not foreign, foreign
                print("ok")
                """
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

"""Where the real Olark payloads live: in the repository, beside the tests that read them."""

from __future__ import annotations

from pathlib import Path

OLARK_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "olark"

"""schemathesis against ``/openapi.json`` of a real service, with a site key and the admin key.

Every operation is called with generated input (and schemathesis' edge
cases: NULs, huge numbers, odd Unicode) over loopback HTTP, on SQLite and
PostgreSQL. Each answer must not be a 5xx and must match what the schema
documents: its status code, content type, headers and body. The example
count is bounded and the seed fixed, so a run fits in CI's time and fails
the same way twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.service import ADMIN_KEY, running_service

ST = str(Path(sys.executable).with_name("st"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
#: Generated cases per operation; 25 operations, two keys, two backends.
EXAMPLES = 10
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("key", ["site", "admin"])
def test_no_operation_answers_5xx_or_off_its_schema(
    database_url: str, key: str, tmp_path: Path
) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site("fuzz.example")
        service.create_endpoint(site, auth, "https://example.com/hook")
        header = auth["Authorization"] if key == "site" else f"Bearer {ADMIN_KEY}"
        run = subprocess.run(
            [
                ST,
                "--config-file",
                str(CONFIG),
                "run",
                f"{service.url}/openapi.json",
                "--header",
                f"Authorization: {header}",
                "--checks",
                CHECKS,
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "20261201",
                "--workers",
                "1",
                "--no-color",
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "CHATHOOKS_FUZZ_SITE": site},
            check=False,
        )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]

"""Property-based test of the running API against its own OpenAPI document (schemathesis).

Bounded and reproducible: a fixed seed, a few seconds, one worker, no example database. The run
is authenticated as an agency (so the generated requests reach the operations, not only the
authentication) against the real broker and intake; it must find no 5xx and no response the
document does not describe (status code, content type, headers, body schema).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub.trust.keystore import Keystore
from tests.integration.api.conftest import SYSTEMS, Api
from tests.integration.pipeline.harness import FINANCE, PROVINCE, signed_envelope

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")


def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(
    make_api: Any, keystore: Keystore, tmp_path: Path
) -> None:
    # Waits shortened: the generated 'wait' values would hold requests for up to a minute
    api: Api = make_api(verdict_wait_s=0.0, max_wait_s=0.05)
    # Something to find: a document waiting for Finance
    envelope = signed_envelope(keystore, PROVINCE, (FINANCE,), number="1831")
    sent = api.client(PROVINCE).post("/api/v1/edocs", content=envelope)
    assert sent.status_code == 202, sent.text
    api.hub.wait_acked(1)
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe is not None, "schemathesis is a test dependency (pyproject [test])"
    done = subprocess.run(
        [exe, "run", f"{api.api.base_url}/openapi.json", "--checks", CHECKS,
         "--max-time", "10", "--seed", "1", "--workers", "1", "--generation-database", "none",
         "--request-timeout", "30",
         "-H", f"X-System-Id: {SYSTEMS[FINANCE]}", "-H", f"X-System-Secret: {api.secrets[FINANCE]}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    report = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, report
    assert "Traceback" not in done.stdout

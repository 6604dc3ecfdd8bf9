"""Running ``examples/node`` from the tests: node, its installed packages, xmlsec1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "node"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_node() -> str:
    """The node binary; skip (fail in CI) without node, the example's packages or xmlsec1."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (EXAMPLE / "node_modules" / "amqplib").is_dir():
        problem = "examples/node packages are not installed (bin/setup runs npm ci there)"
    elif shutil.which("xmlsec1") is None:
        problem = "xmlsec1 is not installed"
    if problem is not None:
        if IN_CI:
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    assert node is not None
    return node


def run_node(node: str, args: list[str], env: dict[str, str], cwd: Path,
             timeout: float = 60) -> list[dict[str, Any]]:
    """Run ``node -e SCRIPT`` or ``node agency.js …``; returns its JSON output lines."""
    result = subprocess.run([node, *args], cwd=cwd, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"node {args[:2]} failed:\n{result.stdout}\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

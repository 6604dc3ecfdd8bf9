"""The pure core imports neither pika nor sqlalchemy; pika lives in one adapter (STYLE §5, §10)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parents[2] / "hub"
PURE = ["edxml", "validators", "routing.py", "topology.py", "receipts.py", "settlement.py", "messages.py",
        "reasons.py", "directory.py", "pipeline.py"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _files(entry: str) -> list[Path]:
    p = HUB / entry
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


@pytest.mark.parametrize("entry", PURE)
def test_the_pure_core_imports_neither_pika_nor_sqlalchemy(entry: str) -> None:
    for file in _files(entry):
        assert not _imports(file) & {"pika", "sqlalchemy"}, file


def test_only_the_broker_adapter_imports_pika() -> None:
    users = {f.relative_to(HUB).as_posix() for f in HUB.rglob("*.py") if "pika" in _imports(f)}
    assert users == {"broker.py"}


def test_only_the_broker_adapter_acknowledges_deliveries() -> None:
    users = {f.relative_to(HUB).as_posix() for f in HUB.rglob("*.py")
             if ".basic_ack(" in f.read_text(encoding="utf-8")
             or ".basic_nack(" in f.read_text(encoding="utf-8")}
    assert users == {"broker.py"}


def test_the_pipeline_loads_without_pika_or_sqlalchemy() -> None:
    import subprocess
    import sys

    code = ("import sys, hub.pipeline, hub.validators, hub.routing, hub.receipts; "
            "bad = {'pika', 'sqlalchemy'} & set(sys.modules); print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

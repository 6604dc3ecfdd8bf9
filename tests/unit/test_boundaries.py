"""The folder tree is the architecture (docs/ARCHITECTURE.md): these tests keep it true.

- every ``hub`` module belongs to one layer; a layer imports only layers below it or its own
  unit, and the graph between units has no cycle;
- no import cycle between modules anywhere in ``hub``;
- pika only in ``hub/broker.py``; SQLAlchemy only in ``hub/ledger/``; acks only in the broker
  adapter; the pure core loads without either;
- at most 14 top-level modules;
- no function on the envelope path above cyclomatic complexity 15 (ruff's C901, run without
  pyproject.toml's per-file ignores).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parents[2] / "hub"

LAYERS: dict[str, int] = {
    # 0: the shared vocabulary
    "reasons": 0, "errors": 0, "messages": 0, "logs": 0, "config": 0,
    # 1: the EDXML model and the province's shape
    "edxml": 1, "directory": 1, "topology": 1, "routing": 1,
    # 2: pure verdicts, keys and receipts, storage and the broker adapter
    "validators": 2, "trust": 2, "receipts": 2, "ledger": 2, "broker": 2,
    # 3: the envelope path
    "consumers": 3,
    # 4: wiring and the agency client
    "app": 4, "client": 4,
    # 5: the surfaces and the test tooling
    "ops": 5, "testing": 5, "__main__": 5, "axis": 5, "console": 5, "api": 5,
}
PURE = ["edxml", "validators", "routing.py", "topology.py", "receipts", "consumers/settlement.py",
        "consumers/plan.py", "messages.py", "reasons.py", "directory.py"]


def _module_name(path: Path) -> str:
    rel = path.relative_to(HUB.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in HUB.rglob("*.py") if "migrations" not in p.parts}


def _imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (top-level and function-level imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import sub`` depends on the submodule; ``from pkg import name`` on pkg.
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


def _hub_imports(path: Path) -> set[str]:
    return {m for m in _imports(path) if m in MODULES}


def _unit(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _roots(path: Path) -> set[str]:
    return {m.split(".")[0] for m in _imports(path)}


def test_every_hub_module_belongs_to_a_layer() -> None:
    units = {_unit(m) for m in MODULES if m != "hub"}
    assert units <= set(LAYERS), sorted(units - set(LAYERS))


def test_no_layer_imports_a_layer_above_it() -> None:
    upward = sorted(
        f"{m} -> {dep}" for m, path in MODULES.items() if m != "hub"
        for dep in _hub_imports(path)
        if dep != "hub" and LAYERS[_unit(dep)] > LAYERS[_unit(m)])
    assert upward == []


def test_there_is_no_import_cycle_between_modules() -> None:
    graph = {m: _hub_imports(p) - {m, "hub"} for m, p in MODULES.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_there_is_no_import_cycle_between_units() -> None:
    graph: dict[str, set[str]] = {}
    for m, p in MODULES.items():
        if m == "hub":
            continue
        deps = {_unit(d) for d in _hub_imports(p) if d != "hub"} - {_unit(m)}
        graph.setdefault(_unit(m), set()).update(deps)
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"cycle between units: {' -> '.join(exc.args[1])}")


def test_the_cycle_check_finds_a_cycle_when_there_is_one() -> None:
    with pytest.raises(CycleError):
        tuple(TopologicalSorter({"a": {"b"}, "b": {"c"}, "c": {"a"}}).static_order())


def test_hub_has_at_most_fourteen_top_level_modules() -> None:
    top = sorted(p.name for p in HUB.glob("*.py"))
    assert len(top) <= 14, top


@pytest.mark.parametrize("entry", PURE)
def test_the_pure_core_imports_neither_pika_nor_sqlalchemy(entry: str) -> None:
    p = HUB / entry
    for file in (sorted(p.rglob("*.py")) if p.is_dir() else [p]):
        assert not _roots(file) & {"pika", "sqlalchemy"}, file


def test_only_the_broker_adapter_imports_pika() -> None:
    users = {f.relative_to(HUB).as_posix() for f in HUB.rglob("*.py") if "pika" in _roots(f)}
    assert users == {"broker.py"}


def test_only_the_ledger_package_imports_sqlalchemy_or_alembic() -> None:
    users = {f.relative_to(HUB).as_posix() for f in HUB.rglob("*.py")
             if _roots(f) & {"sqlalchemy", "alembic"}}
    assert users
    assert all(u.startswith("ledger/") for u in users), sorted(users)


def test_only_the_broker_adapter_acknowledges_deliveries() -> None:
    users = {f.relative_to(HUB).as_posix() for f in HUB.rglob("*.py")
             if ".basic_ack(" in f.read_text(encoding="utf-8")
             or ".basic_nack(" in f.read_text(encoding="utf-8")}
    assert users == {"broker.py"}


def test_the_pipeline_loads_without_pika_or_sqlalchemy() -> None:
    code = ("import sys, hub.consumers.plan, hub.validators, hub.routing, hub.receipts; "
            "bad = {'pika', 'sqlalchemy'} & set(sys.modules); print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- complexity on the envelope path (issue 14: no function above 15) ---------------------------

MAX_COMPLEXITY = 15
ENVELOPE_PATH = [
    "broker.py", "consumers", "logs.py", "edxml", "trust", "validators", "directory.py",
    "routing.py", "topology.py", "receipts", "messages.py",
    # the ledger as the path uses it (the duplicate check, the batch's commit, refused bytes);
    # the auditor commands (evidence, verify, report, chart, backup, migrate) are off the path
    "ledger/__init__.py", "ledger/store.py", "ledger/records.py", "ledger/chain.py",
    "ledger/models.py", "ledger/blobs.py",
]
"""The units of docs/ARCHITECTURE.md's envelope path, as files and folders under ``hub/``."""


def _too_complex(*paths: Path) -> list[str]:
    """Functions above :data:`MAX_COMPLEXITY` (ruff's C901, mccabe), one line each. Run in
    isolation from pyproject.toml, so no per-file ignore can hide one."""
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "C901",
         "--config", f"lint.mccabe.max-complexity={MAX_COMPLEXITY}",
         "--output-format", "concise", *map(str, paths)],
        capture_output=True, text=True, check=False)
    assert out.returncode in (0, 1), out.stderr  # 2: ruff itself failed
    return [line for line in out.stdout.splitlines() if "C901" in line]


def test_no_function_on_the_envelope_path_is_above_complexity_15() -> None:
    paths = [HUB / entry for entry in ENVELOPE_PATH]
    assert all(p.exists() for p in paths), [str(p) for p in paths if not p.exists()]
    assert _too_complex(*paths) == []


def test_the_complexity_check_finds_a_function_above_15(tmp_path: Path) -> None:
    # Given a function with 15 decisions (complexity 16)
    branches = "".join(f"    if x == {n}:\n        return {n}\n" for n in range(15))
    (tmp_path / "tangled.py").write_text(f"def tangled(x: int) -> int:\n{branches}    return -1\n")
    # Then the check names it
    found = _too_complex(tmp_path / "tangled.py")
    assert len(found) == 1
    assert "`tangled` is too complex (16 > 15)" in found[0]

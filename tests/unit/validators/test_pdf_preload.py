"""``hub run`` imports what the PDF check needs at start-up (``hub.validators.pdf.preload``),
not inside the first batch that holds a PDF; other commands keep pyHanko out of their start."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

from cryptography.utils import CryptographyDeprecationWarning

from hub.validators import pdf

ROOT = Path(__file__).resolve().parents[3]
LAZY_IMPORTERS = (ROOT / "hub" / "validators" / "pdf.py", ROOT / "hub" / "validators" / "_pdfcms.py")


def _imported_inside_functions(path: Path) -> set[str]:
    """Modules a file imports inside its functions (what runs on first use)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                    # "from asn1crypto import x509": the submodule, where the name is one
                    package = importlib.util.find_spec(inner.module)
                    for alias in inner.names:
                        sub = f"{inner.module}.{alias.name}"
                        is_module = (package is not None and package.submodule_search_locations
                                     is not None and importlib.util.find_spec(sub) is not None)
                        found.add(sub if is_module else inner.module)
                elif isinstance(inner, ast.Import):
                    found.update(alias.name for alias in inner.names)
    return found


def test_every_module_the_pdf_check_imports_on_first_use_is_preloaded() -> None:
    with warnings.catch_warnings():  # finding pyHanko's submodules imports its packages
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        lazy = set().union(*(_imported_inside_functions(p) for p in LAZY_IMPORTERS))
    third_party = {m for m in lazy if m.split(".")[0] in {"pyhanko", "asn1crypto"}}
    assert third_party, "the PDF check imports nothing lazily any more: drop the preload"
    assert third_party <= set(pdf.PRELOADED), sorted(third_party - set(pdf.PRELOADED))


def test_the_hub_s_commands_start_without_pyhanko_and_the_preload_brings_it_silently() -> None:
    code = (
        "import sys\n"
        "import hub.ops.cli\n"
        "print('before', 'pyhanko.sign' in sys.modules)\n"
        "from hub.validators import pdf\n"
        "pdf.preload()\n"
        "print('after', all(m in sys.modules for m in pdf.PRELOADED))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.split("\n")[:2] == ["before False", "after True"]
    assert "Warning" not in done.stderr, done.stderr[-500:]

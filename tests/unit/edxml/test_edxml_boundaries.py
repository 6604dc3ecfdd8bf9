"""Architecture rules for the EDXML package: one hardened XML entry point (as signxml's
``processor.py``), and a pure core without pika or SQLAlchemy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import hub.edxml

HUB = Path(__file__).resolve().parents[3] / "hub"
PARSER_CALL = re.compile(
    r"fromstring\(|XMLParser\(|etree\.parse\(|etree\.XML\(|iterparse\(|XMLPullParser|"
    r"xml\.etree|xml\.dom|xml\.sax|minidom"
)


def test_only_the_hardened_module_calls_an_xml_parser() -> None:
    offenders = [
        f"{path.relative_to(HUB.parent)}:{n}"
        for path in HUB.rglob("*.py")
        if path.name != "_xml.py" or path.parent.name != "edxml"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if PARSER_CALL.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_the_edxml_package_and_directory_import_neither_pika_nor_sqlalchemy() -> None:
    code = (
        "import sys, hub.edxml, hub.directory; "
        "bad = [m for m in sys.modules if m.split('.')[0] in {'pika', 'sqlalchemy'}]; "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_the_facade_exports_what_it_declares() -> None:
    for name in hub.edxml.__all__:
        assert hasattr(hub.edxml, name), name

"""Keep the README true: the configuration and reason tables are rendered from the code.

``python -m hub.testing.readme`` rewrites the marked sections of README.md; a unit test fails when the
README is out of date.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path

from hub import config
from hub.reasons import render_markdown


def _field_docs() -> dict[tuple[str, str], str]:
    tree = ast.parse(inspect.getsource(config))
    docs: dict[tuple[str, str], str] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for i, st in enumerate(node.body[:-1]):
            nxt = node.body[i + 1]
            if (isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)):
                docs[(node.name, st.target.id)] = " ".join(str(nxt.value.value).split())
    return docs


def render_config() -> str:
    docs = _field_docs()
    settings = config.Settings()
    out: list[str] = []
    for name in type(settings).model_fields:
        if name == "base_dir":
            continue
        section = getattr(settings, name)
        out += [f"**[{name}]**", "", "| key | default | meaning |", "|---|---|---|"]
        for key in type(section).model_fields:
            value = getattr(section, key)
            meaning = docs.get((type(section).__name__, key), "").replace("|", "\\|")
            out.append(f"| `{key}` | `{value!r}` | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip()


SECTIONS = {"config": render_config, "reasons": render_markdown}


def sync(text: str) -> str:
    for name, render in SECTIONS.items():
        # The section may be empty (``BEGIN`` then ``END`` on the next line): it is filled.
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        text = pattern.sub(lambda m, r=render: m.group(1) + r() + "\n" + m.group(2), text)  # type: ignore[misc]
    return text


def main() -> int:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = sync(text)
    if new != text:
        readme.write_text(new, encoding="utf-8")
        print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

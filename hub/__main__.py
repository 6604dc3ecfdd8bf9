"""``python -m hub``: the same command line as ``hub`` / ``edxml-hub``, whose console scripts
start here too (:func:`launch`)."""

from __future__ import annotations

EXIT_INTERRUPTED = 130
"""Ctrl-C: :data:`hub.ops.cli.EXIT_INTERRUPTED` (not imported: the import is what it covers)."""


def launch() -> int:
    """Run the command line; Ctrl-C while it loads (pydantic, cryptography, lxml: its first
    half second) or while it parses the arguments ends it silently, as later on."""
    try:
        from hub.ops.cli import main

        return main()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(launch())

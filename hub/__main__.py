"""``python -m hub``: the same command line as ``hub`` / ``edxml-hub``."""

from hub.ops.cli import main

raise SystemExit(main())

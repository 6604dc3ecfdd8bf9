#!/usr/bin/env bash
# Build the ledger's PostgreSQL image from Debian's postgresql-15 (the entry point,
# deploy/postgres/entrypoint.sh, is bind-mounted by deploy/compose.yaml).
# No registry: see deploy/images.sh. deploy/up calls the same function.
#
# Usage: deploy/postgres/build-image.sh        Needs: root, docker (a running dockerd), debootstrap.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=deploy/images.sh
. "$REPO/deploy/images.sh"
build_postgres_image

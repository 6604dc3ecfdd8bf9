#!/usr/bin/env bash
# Build the hub's image: a bookworm root with python3 and a venv holding the hub's
# dependencies (edxml-hub/hub-base:<hash>, rebuilt when pyproject's dependencies change), then
# this checkout installed into that venv (edxml-hub/hub:latest, rebuilt when the sources change).
# No registry: see deploy/images.sh. deploy/up calls the same function.
#
# Usage: deploy/hub/build-image.sh        Needs: root, docker (a running dockerd), debootstrap.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=deploy/images.sh
. "$REPO/deploy/images.sh"
build_hub_image

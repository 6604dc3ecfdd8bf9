#!/usr/bin/env bash
# Build the Prometheus image from Debian's prometheus package (2.42, with promtool).
# No registry: see deploy/images.sh. deploy/up calls the same function.
#
# Usage: deploy/prometheus/build-image.sh        Needs: root, docker (a running dockerd), debootstrap.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=deploy/images.sh
. "$REPO/deploy/images.sh"
build_prometheus_image

#!/usr/bin/env bash
# Build the hub's container image from Debian packages (no registry needed), like the RabbitMQ
# image: debootstrap a minimal bookworm root with python3, install this checkout into a venv
# inside it, and `docker import` the tree.
#
# Usage: deploy/hub/build-image.sh [TAG]        (default TAG: edxml-hub/hub:latest)
# Needs: root, docker (a running dockerd), debootstrap.
set -euo pipefail
TAG="${1:-edxml-hub/hub:latest}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"

WORK="$(mktemp -d /var/tmp/hub-image-rootfs.XXXXXX)"
ROOTFS="$WORK/rootfs"
cleanup() { umount "$ROOTFS/proc" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

echo "debootstrap bookworm into $ROOTFS"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
mount -t proc proc "$ROOTFS/proc"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true

echo "installing edxml-hub from $SRC"
mkdir -p "$ROOTFS/opt/edxml-hub/src"
tar -C "$SRC" --exclude=.venv --exclude=.git --exclude=.hub-demo -c . | tar -C "$ROOTFS/opt/edxml-hub/src" -x
chroot "$ROOTFS" /bin/sh -c 'python3 -m venv /opt/edxml-hub/venv &&
    /opt/edxml-hub/venv/bin/pip install -q "/opt/edxml-hub/src[postgres]" &&
    useradd --system --home /var/lib/edxml-hub --create-home edxml-hub'
umount "$ROOTFS/proc"

tar -C "$ROOTFS" -c . | docker import \
    --change 'ENTRYPOINT ["/opt/edxml-hub/venv/bin/hub"]' \
    --change 'CMD ["--config", "/etc/edxml-hub/hub.toml", "run"]' \
    --change 'USER edxml-hub' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'WORKDIR /var/lib/edxml-hub' \
    - "$TAG" >/dev/null
echo "built $TAG"

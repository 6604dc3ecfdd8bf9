#!/usr/bin/env bash
# Build a PostgreSQL 15 image from Debian packages (no registry needed) for the ledger.
# Usage: deploy/postgres/build-image.sh [TAG]      (default TAG: edxml-hub/postgres:15-bookworm)
set -euo pipefail
TAG="${1:-edxml-hub/postgres:15-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d /var/tmp/hub-pg-rootfs.XXXXXX)"
ROOTFS="$WORK/rootfs"
cleanup() { umount "$ROOTFS/proc" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$WORK/log" 2>&1 || { tail -20 "$WORK/log"; exit 1; }
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"; chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOTFS/proc"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
chroot "$ROOTFS" /bin/sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null && apt-get clean'
umount "$ROOTFS/proc"; rm -f "$ROOTFS/usr/sbin/policy-rc.d"
install -m 0755 "$HERE/entrypoint.sh" "$ROOTFS/usr/local/bin/entrypoint.sh"
tar -C "$ROOTFS" -c . | docker import --change 'ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]' \
    --change 'USER postgres' --change 'ENV PGDATA=/var/lib/postgresql/data' - "$TAG" >/dev/null
echo "built $TAG"

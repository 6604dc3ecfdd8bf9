#!/usr/bin/env bash
# Build the local RabbitMQ image the tests, the demo and the cluster deployment use.
#
# No container registry is reachable from the province's build hosts, so the image is made
# from Debian packages: debootstrap a minimal bookworm root, install rabbitmq-server in it,
# and `docker import` the tree. The result is reused when an image with the tag exists.
#
# Usage: deploy/rabbitmq/build-image.sh [TAG]      (default TAG: edxml-hub/rabbitmq:3.10-bookworm)
# Needs: root, docker (a running dockerd), debootstrap.
set -euo pipefail

TAG="${1:-${HUB_RABBITMQ_IMAGE:-edxml-hub/rabbitmq:3.10-bookworm}}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "image $TAG already present"
    exit 0
fi

WORK="$(mktemp -d /var/tmp/hub-rabbitmq-rootfs.XXXXXX)"
ROOTFS="$WORK/rootfs"
cleanup() {
    umount "$ROOTFS/proc" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "debootstrap bookworm into $ROOTFS (about 30 s)"
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log"; exit 1; }

# Block service start-up inside the chroot: the package would otherwise try to boot a node.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOTFS/proc"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
echo "installing rabbitmq-server in the chroot"
chroot "$ROOTFS" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends rabbitmq-server hostname >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*'
umount "$ROOTFS/proc"
rm -f "$ROOTFS/usr/sbin/policy-rc.d"

# docker-proxy connects from the bridge, not loopback: let guest in from there (tests only;
# production definitions create per-agency users and delete guest).
mkdir -p "$ROOTFS/etc/rabbitmq"
cat >"$ROOTFS/etc/rabbitmq/rabbitmq.conf" <<'CONF'
loopback_users.guest = false
listeners.tcp.default = 5672
management.tcp.port = 15672
CONF
echo '[rabbitmq_management].' >"$ROOTFS/etc/rabbitmq/enabled_plugins"
chroot "$ROOTFS" /bin/sh -c 'chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq' || true

echo "importing as $TAG"
tar -C "$ROOTFS" -c . | docker import \
    --change 'CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]' \
    --change 'ENV HOME=/var/lib/rabbitmq' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'USER rabbitmq' \
    --change 'EXPOSE 5672 15672 25672 4369' \
    - "$TAG" >/dev/null
echo "built $TAG"

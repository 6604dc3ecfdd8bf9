# shellcheck shell=bash
# Container images from Debian packages, no registry (sourced by deploy/up and the
# deploy/*/build-image.sh scripts).
#
# No container registry is reachable from the province's hosts, so every image is a Debian
# bookworm root file system made here, as hub/testing/devbroker.py makes the RabbitMQ image for
# the tests (docs/OPERATIONS.md, shared/TESTING.md): debootstrap a minimal root (cached as a
# tarball), `apt-get install` the service's Debian packages in a chroot (service start blocked
# by a policy-rc.d), and `docker import` the tree. Each image carries the hash of its recipe in
# the label org.edxml-hub.recipe; it is rebuilt only when the recipe changed.
#
#   edxml-hub/rabbitmq:3.10-bookworm   rabbitmq-server (deploy/rabbitmq/build-image.sh, shared
#                                      with the tests)
#   edxml-hub/postgres:15-bookworm     postgresql-15
#   edxml-hub/prometheus:bookworm      prometheus (2.42, with promtool)
#   edxml-hub/hub-base:<deps hash>     python3 + a venv with the hub's dependencies from PyPI
#   edxml-hub/hub:latest               hub-base + this checkout installed into the venv
#
# Needs root, debootstrap and a running dockerd. DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR and
# EDXML_CACHE (default /var/cache/edxml-hub) can be set.

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
IMAGE_CACHE="${EDXML_CACHE:-/var/cache/edxml-hub}"
IMAGES_REV=1    # bump to rebuild every image made here

POSTGRES_IMAGE="${EDXML_POSTGRES_IMAGE:-edxml-hub/postgres:15-bookworm}"
PROMETHEUS_IMAGE="${EDXML_PROMETHEUS_IMAGE:-edxml-hub/prometheus:bookworm}"
HUB_IMAGE="${EDXML_HUB_IMAGE:-edxml-hub/hub:latest}"
RABBITMQ_IMAGE="${HUB_RABBITMQ_IMAGE:-edxml-hub/rabbitmq:3.10-bookworm}"

_img_log() { if declare -F say >/dev/null; then say "$@"; else echo "$@"; fi; }

image_label() { docker image inspect -f '{{index .Config.Labels "org.edxml-hub.recipe"}}' "$1" 2>/dev/null || true; }

# A minimal bookworm root in DIR: the cached debootstrap tarball unpacked (made once, ~30 s).
_minbase() {
    local dir="$1" base="$IMAGE_CACHE/bookworm-minbase.tar" tmp
    if [ ! -s "$base" ]; then
        command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; return 2; }
        mkdir -p "$IMAGE_CACHE"
        tmp="$(mktemp -d /var/tmp/edxml-minbase.XXXXXX)"
        _img_log "debootstrap --variant=minbase bookworm (once; cached in $base)"
        if ! debootstrap --variant=minbase bookworm "$tmp/root" "$MIRROR" >"$tmp/log" 2>&1; then
            tail -5 "$tmp/log" >&2; rm -rf "$tmp"; return 1
        fi
        tar -C "$tmp/root" -cf "$base.part" . && mv "$base.part" "$base"
        rm -rf "$tmp"
    fi
    mkdir -p "$dir"
    tar -C "$dir" -xf "$base"
}

# debian_image TAG RECIPE_HASH PACKAGES CUSTOMIZE -- IMPORT_CHANGE...
#   PACKAGES: space-separated apt packages; CUSTOMIZE: a shell snippet run in the chroot after
#   the install (may be empty); IMPORT_CHANGE: `docker import --change` instructions.
debian_image() {
    local tag="$1" recipe="$2" packages="$3" customize="$4"; shift 5
    local changes=() c
    for c in "$@"; do changes+=(--change "$c"); done
    if [ "$(image_label "$tag")" = "$recipe" ]; then
        _img_log "image $tag is up to date"
        return 0
    fi
    _img_log "building $tag from Debian packages: $packages"
    local work rootfs rc=0
    work="$(mktemp -d /var/tmp/edxml-image.XXXXXX)"
    rootfs="$work/rootfs"
    _minbase "$rootfs" || { rm -rf "$work"; return 1; }
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod +x "$rootfs/usr/sbin/policy-rc.d"
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
    # The host's CA bundle, for pip behind a TLS-inspecting proxy; removed after the build.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/tmp/host-ca.crt" 2>/dev/null || true
    mount -t proc proc "$rootfs/proc"
    # A clean environment: only the proxy and package-index settings of the host pass.
    local keep=() v
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
        [ -z "${!v:-}" ] || keep+=("$v=${!v}")
    done
    [ ! -s "$rootfs/tmp/host-ca.crt" ] || keep+=(PIP_CERT=/tmp/host-ca.crt)
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "${keep[@]}" \
        chroot "$rootfs" /bin/sh -c "
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages >/dev/null &&
        $customize
        apt-get clean && rm -rf /var/lib/apt/lists/*" >"$work/chroot.log" 2>&1 || rc=$?
    umount "$rootfs/proc" 2>/dev/null || true
    rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/tmp/host-ca.crt"
    if [ "$rc" -ne 0 ]; then
        tail -8 "$work/chroot.log" >&2
        rm -rf "$work"
        echo "building $tag failed in the chroot (exit $rc)" >&2
        return 1
    fi
    : >"$rootfs/etc/resolv.conf"
    tar -C "$rootfs" -c . | docker import "${changes[@]}" \
        --change "LABEL org.edxml-hub.recipe=$recipe" --change 'ENV LANG=C.UTF-8' - "$tag" >/dev/null \
        || rc=$?
    rm -rf "$work"
    [ "$rc" -eq 0 ] || { echo "docker import of $tag failed" >&2; return 1; }
    _img_log "built $tag"
}

_hash() { sha256sum | cut -c1-16; }

build_postgres_image() {
    local recipe
    recipe="$(echo "postgres $IMAGES_REV postgresql-15" | _hash)"
    # The data directory exists in the image, owned by postgres: a new named volume takes it over.
    debian_image "$POSTGRES_IMAGE" "$recipe" "postgresql-15" \
        "install -d -m 0700 -o postgres -g postgres /var/lib/postgresql/data &&" -- \
        'ENV PGDATA=/var/lib/postgresql/data' 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
}

build_prometheus_image() {
    local recipe
    recipe="$(echo "prometheus $IMAGES_REV prometheus" | _hash)"
    debian_image "$PROMETHEUS_IMAGE" "$recipe" "prometheus" \
        "install -d -o prometheus -g prometheus /prometheus &&" -- \
        'USER prometheus' 'WORKDIR /prometheus' 'ENTRYPOINT ["/usr/bin/prometheus"]'
}

build_rabbitmq_image() {
    # Shared with the tests (hub/testing/devbroker.py): built by its own script, reused as is.
    bash "$REPO/deploy/rabbitmq/build-image.sh" "$RABBITMQ_IMAGE" | sed 's/^/    /'
    return "${PIPESTATUS[0]}"
}

# The hub's dependencies as pip requirement lines, read from pyproject.toml: the build system's
# (the checkout is installed offline, without build isolation), the runtime's and the
# [postgres] extra; by the host's python3 (bookworm: 3.11, tomllib).
_hub_requirements() {
    python3 - "$REPO/pyproject.toml" <<'PY'
import sys, tomllib
data = tomllib.load(open(sys.argv[1], "rb"))
project = data["project"]
for req in [*data["build-system"]["requires"], *project["dependencies"],
            *project.get("optional-dependencies", {}).get("postgres", [])]:
    print(req)
PY
}

build_hub_base_image() {
    local reqs recipe
    reqs="$(_hub_requirements)" || return 1
    recipe="$(printf '%s\nhub-base %s\n' "$reqs" "$IMAGES_REV" | _hash)"
    HUB_BASE_IMAGE="edxml-hub/hub-base:$recipe"
    local req_lines
    req_lines="$(printf '%s\n' "$reqs" | sed "s/'/'\\\\''/g; s/.*/'&'/" | tr '\n' ' ')"
    # A fixed uid/gid (990) so an operator can grant file access on the host if wanted.
    # Base images of earlier dependency sets are dropped (unless a container still uses one).
    local old
    for old in $(docker images edxml-hub/hub-base --format '{{.Tag}}'); do
        [ "$old" = "$recipe" ] || docker rmi "edxml-hub/hub-base:$old" >/dev/null 2>&1 || true
    done
    debian_image "$HUB_BASE_IMAGE" "$recipe" "python3 python3-venv ca-certificates" \
        "groupadd --system --gid 990 edxml-hub &&
         useradd --system --uid 990 --gid 990 --home-dir /var/lib/edxml-hub --create-home edxml-hub &&
         install -d -o edxml-hub -g edxml-hub /var/lib/edxml-hub/blobs &&
         python3 -m venv /opt/edxml-hub/venv &&
         /opt/edxml-hub/venv/bin/pip install -q --no-cache-dir --disable-pip-version-check \
             $req_lines &&" --
}

# The hub's sources that go into the image (what `pip install .` needs), and their hash.
_hub_sources_tar() {
    (cd "$REPO" && tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner \
        --exclude='__pycache__' --exclude='*.pyc' \
        -c pyproject.toml README.md LICENSE hub deploy/hub/entrypoint.py)
}

build_hub_image() {
    build_hub_base_image || return 1
    local recipe
    recipe="$( { _hub_sources_tar; echo "$HUB_BASE_IMAGE"; } | _hash)"
    if [ "$(image_label "$HUB_IMAGE")" = "$recipe" ]; then
        _img_log "image $HUB_IMAGE is up to date"
        return 0
    fi
    _img_log "installing this checkout into $HUB_IMAGE (on $HUB_BASE_IMAGE)"
    local work name rc=0
    work="$(mktemp -d /var/tmp/edxml-hub-src.XXXXXX)"
    _hub_sources_tar | tar -C "$work" -x
    name="edxml-hub-image-build-$$"
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run --name "$name" --network none -v "$work:/src:ro" "$HUB_BASE_IMAGE" /bin/sh -c '
        set -e
        cp -a /src /tmp/src
        /opt/edxml-hub/venv/bin/pip install -q --no-deps --no-build-isolation --no-index \
            --no-cache-dir --disable-pip-version-check /tmp/src
        install -m 0755 /tmp/src/deploy/hub/entrypoint.py /opt/edxml-hub/entrypoint.py
        rm -rf /tmp/src
        /opt/edxml-hub/venv/bin/hub --version' >"$work.log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        docker commit \
            --change 'ENTRYPOINT ["/opt/edxml-hub/venv/bin/python", "/opt/edxml-hub/entrypoint.py"]' \
            --change 'CMD ["run"]' \
            --change 'ENV HUB_CONFIG=/etc/edxml-hub/hub.toml' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'WORKDIR /var/lib/edxml-hub' \
            --change 'EXPOSE 9464' \
            --change "LABEL org.edxml-hub.recipe=$recipe" \
            "$name" "$HUB_IMAGE" >/dev/null || rc=$?
    else
        tail -8 "$work.log" >&2
    fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work" "$work.log"
    [ "$rc" -eq 0 ] || { echo "building $HUB_IMAGE failed" >&2; return 1; }
    _img_log "built $HUB_IMAGE ($(docker run --rm --entrypoint /opt/edxml-hub/venv/bin/hub "$HUB_IMAGE" --version))"
}

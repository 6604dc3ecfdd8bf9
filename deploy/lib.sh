# shellcheck shell=bash disable=SC2034
# Shared by deploy/up, deploy/smoke and deploy/down (sourced, not run).
#
# One compose project ("edxml-hub"), one compose file (deploy/compose.yaml), one state directory
# (deploy/state by default; --state DIR or EDXML_STATE, e.g. /etc/edxml-hub). Compose is
# Debian's docker-compose 1.29 (apt install docker-compose); `docker compose` (v2) is used when
# that is what the host has.

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$DEPLOY/.." && pwd)"
PROJECT="${EDXML_PROJECT:-edxml-hub}"
ALL_PROFILES="tools,api,console,axis"
T0=$(date +%s.%N)
TIMINGS=()

say() { printf '[%6.1fs] %s\n' "$(elapsed)" "$*"; }
die() { local code="${2:-1}"; echo "${SCRIPT_NAME:-deploy}: $1" >&2; exit "$code"; }
elapsed() { awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{printf "%.1f", a-b}'; }

# step NAME CMD...: run CMD, record how long it took under NAME.
step() {
    local name="$1"; shift
    local start end
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    TIMINGS+=("$(awk -v n="$name" -v a="$end" -v b="$start" 'BEGIN{printf "%-58s %7.1f s", n, a-b}')")
}

print_timings() {
    echo "== timings (${SCRIPT_NAME:-deploy})"
    local t
    for t in "${TIMINGS[@]}"; do echo "  $t"; done
    printf '  %-58s %7.1f s\n' "total" "$(elapsed)"
}

# The state directory: --state DIR, else $EDXML_STATE, else deploy/state.
resolve_state() {
    local dir="${1:-${EDXML_STATE:-$DEPLOY/state}}"
    mkdir -p "$(dirname "$dir")" 2>/dev/null || true
    STATE="$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")"
    export EDXML_STATE="$STATE"
}

# deploy.env of the state directory: non-secret choices (profiles, published ports). Optional
# for `down`; read by `up` and `smoke`.
load_deploy_env() {
    if [ -f "$STATE/deploy.env" ]; then
        set -a
        # shellcheck disable=SC1091
        . "$STATE/deploy.env"
        set +a
    fi
    export EDXML_PROFILES="${EDXML_PROFILES:-}"
}

pick_compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        COMPOSE=(docker-compose)
    elif docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    else
        die "no compose implementation: apt-get install docker-compose (Debian's 1.29)" 2
    fi
}

# dc ARGS...: compose on this project. Profiles: the enabled ones (plus "tools" for `run`).
dc() {
    COMPOSE_PROFILES="${DC_PROFILES:-tools${EDXML_PROFILES:+,${EDXML_PROFILES// /,}}}" \
        "${COMPOSE[@]}" -p "$PROJECT" -f "$DEPLOY/compose.yaml" "$@"
}

container() { echo "$PROJECT-$1"; }

docker_ready() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

# Start Debian's dockerd when nothing answers (root only), like hub/testing/devbroker.py.
ensure_docker() {
    docker_ready && return 0
    command -v dockerd >/dev/null 2>&1 || die "no Docker engine: apt-get install docker.io" 2
    [ "$(id -u)" -eq 0 ] || die "no Docker engine answers and only root can start dockerd" 2
    say "starting dockerd (log: /var/log/edxml-hub-dockerd.log)"
    setsid dockerd >>/var/log/edxml-hub-dockerd.log 2>&1 < /dev/null &
    local i
    for _ in $(seq 1 150); do docker_ready && return 0; sleep 0.2; done
    die "dockerd did not become ready within 30 s" 4
}

health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null || echo missing; }

# wait_healthy TIMEOUT CONTAINER...: until each is "healthy"; an exited container fails at once.
wait_healthy() {
    local timeout="$1"; shift
    local deadline=$(( $(date +%s) + timeout )) c st
    for c in "$@"; do
        while :; do
            st=$(health "$c")
            [ "$st" = healthy ] && break
            if [ "$st" = exited ] || [ "$st" = dead ] || [ "$st" = missing ]; then
                docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /' >&2
                die "$c: $st (its last log lines are above)" 4
            fi
            if [ "$(date +%s)" -ge "$deadline" ]; then
                docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /' >&2
                die "$c: not healthy after ${timeout} s (status: $st)" 4
            fi
            sleep 1
        done
    done
}

# The nodes a node sees running in its cluster (Erlang names, one line each).
running_nodes() {
    docker exec "$(container "$1")" rabbitmqctl -q cluster_status --formatter json 2>/dev/null \
        | grep -o '"running_nodes":\[[^]]*\]' | grep -o 'rabbit@[a-z0-9]*' | sort -u
}

# wait_cluster TIMEOUT NODE: until NODE sees all three nodes running.
wait_cluster() {
    local timeout="$1" via="$2" deadline n
    deadline=$(( $(date +%s) + timeout ))
    while :; do
        n=$(running_nodes "$via" | wc -l)
        [ "$n" -eq 3 ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && die "the RabbitMQ cluster has $n of 3 nodes running after ${timeout} s" 4
        sleep 1
    done
}

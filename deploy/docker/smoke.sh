#!/usr/bin/env bash
# Build the image, start deploy/docker-compose.yml (master, shuffle service, two
# workers), run a job from the host against it, scale the workers to 3 and to
# 1 (a job after each), stop everything.  tests/test_deploy_docker.py runs this.
#
#   sudo env PYTHON="$(command -v python3)" deploy/docker/smoke.sh
#
# Needs: root, Debian's docker.io and docker-compose (or the `docker compose`
# plugin), and, unless AIOSPARK_BASE_IMAGE names an image the daemon has or can
# pull, debootstrap (to make a Debian bookworm base image without a registry).
# Everything listens on 127.0.0.1 (host networking): no container address is
# ever used.
#
# Settings (environment):
#   PYTHON                    the driver's Python, with aiospark installed [python3]
#   AIOSPARK_BASE_IMAGE       base image to build on; unset: aiospark-base:bookworm,
#                             made with debootstrap when the daemon lacks it
#   AIOSPARK_DOCKER_CACHE     folder keeping the debootstrap tarball between runs
#                             [unset: debootstrap every run]
#   AIOSPARK_DOCKER_DATA_ROOT data root of the dockerd this script starts
#                             [unset: a temporary one, removed at the end]
#   AIOSPARK_SMOKE_KEEP=1     leave the cluster (and dockerd) running at the end
#
# A Docker daemon that already answers (`docker info`, DOCKER_HOST) is used and
# left running; otherwise the script starts its own dockerd (--bridge=none
# --iptables=false, its own socket, exec root and data root) and stops it on
# exit.  Every wait is bounded; the exit trap removes whatever was started,
# also after a failure.  Steps print "smoke: <step> <seconds> s".  Exit status:
# 0 passed, 77 this machine cannot run it (no root, docker or debootstrap, or
# dockerd does not start), anything else failed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-python3}
BASE_IMAGE=${AIOSPARK_BASE_IMAGE:-aiospark-base:bookworm}
IMAGE=aiospark:latest
PROJECT=aiospark-smoke-$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aiospark-docker-smoke.XXXXXX")
DOCKERD_PID=
COMPOSE_UP=

say() { echo "smoke: $*"; }
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }
# exit 77 (the automake convention): this machine cannot run the check at all
skip() { echo "smoke: SKIPPED: $*" >&2; exit 77; }
step_start() { STEP=$1; T0=$(date +%s.%N); }
step_end() { say "$STEP $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"; }
# Run a command with a time limit, in the background so that a signal to this
# script runs the exit trap at once (the trap stops the command).
CHILD=
bounded() {
    local secs=$1 rc=0
    shift
    timeout "$secs" "$@" &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=
    return "$rc"
}

# docker and compose of Debian's docker.io when present (the CLI plugins of a
# newer client may be missing); the legacy builder needs no buildx plugin.
DOCKER=docker
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

compose() {
    if "$DOCKER" compose version >/dev/null 2>&1; then
        bounded 300 "$DOCKER" compose -p "$PROJECT" -f "$REPO/deploy/docker-compose.yml" "$@"
    else
        bounded 300 docker-compose -p "$PROJECT" -f "$REPO/deploy/docker-compose.yml" "$@"
    fi
}

unmount_under() {  # every mount below $1, deepest first
    local dir=$1 m
    for m in $(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$?
    set +e
    trap '' INT TERM
    step_start "cleanup"
    if [ -n "$CHILD" ]; then
        kill -TERM "$CHILD" 2>/dev/null
        for _ in $(seq 40); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.5; done
        CHILD=
    fi
    if [ "${AIOSPARK_SMOKE_KEEP:-0}" = 1 ] && [ "$rc" = 0 ]; then
        say "kept: DOCKER_HOST=${DOCKER_HOST:-default} project $PROJECT, work dir $WORK"
        exit 0
    fi
    if [ -n "$COMPOSE_UP" ]; then
        if [ "$rc" != 0 ]; then
            say "logs of the cluster:"
            compose logs --no-color --tail 40 2>&1 | sed 's/^/    /'
        fi
        compose down -v --timeout 20 >/dev/null 2>&1 || say "compose down failed"
    fi
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        local t=$SECONDS
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            say "dockerd $DOCKERD_PID did not stop in 30 s: killing it"
            kill -KILL "$DOCKERD_PID"
        fi
        say "dockerd stopped ($((SECONDS - t)) s)"
    fi
    # containerd and shims of our dockerd have our exec root in their command
    # line; dockerd stops them, this only catches what a killed dockerd left
    for pid in $(pgrep -f -- "$WORK/exec" || true); do
        [ "$pid" != $$ ] && say "stopping leftover $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60)" \
            && kill -TERM "$pid" 2>/dev/null
    done
    unmount_under "$WORK"
    if awk -v d="$WORK/" 'index($2, d) == 1 {found=1} END {exit !found}' /proc/self/mounts; then
        say "left $WORK: something is still mounted below it"
    else
        local t=$SECONDS
        du -sh "$WORK" 2>/dev/null | awk '{printf "smoke: removing %s ", $1}'
        rm -rf "$WORK"
        echo "($((SECONDS - t)) s)"
    fi
    step_end
    say "total $SECONDS s"
    case $rc in 0) say "PASSED";; 77) say "SKIPPED";; *) say "FAILED (exit $rc)";; esac
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || skip "must run as root (it starts dockerd)"
command -v docker >/dev/null || skip "no docker binary (apt-get install docker.io)"
"$DOCKER" compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null \
    || skip "neither 'docker compose' nor docker-compose (apt-get install docker-compose)"

# -- 1. a Docker daemon ------------------------------------------------------------------
step_start "dockerd start"
if timeout 20 "$DOCKER" info >/dev/null 2>&1; then
    say "using the running Docker daemon (${DOCKER_HOST:-default socket})"
else
    command -v dockerd >/dev/null || skip "no dockerd binary (apt-get install docker.io)"
    DATA_ROOT=${AIOSPARK_DOCKER_DATA_ROOT:-$WORK/data}
    mkdir -p "$DATA_ROOT" "$WORK/exec"
    export DOCKER_HOST=unix://$WORK/docker.sock
    # its own session: a signal to this script's process group leaves it to the trap
    setsid dockerd --bridge=none --iptables=false --ip6tables=false \
        --host "$DOCKER_HOST" --data-root "$DATA_ROOT" --exec-root "$WORK/exec" \
        --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 120); do
        timeout 5 "$DOCKER" info >/dev/null 2>&1 && break
        kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$WORK/dockerd.log" >&2; skip "dockerd cannot start (its log is above)"; }
        sleep 0.5
    done
    timeout 5 "$DOCKER" info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log" >&2; skip "dockerd did not answer in 60 s (its log is above)"; }
    say "started dockerd $DOCKERD_PID at $DOCKER_HOST"
fi
step_end

# -- 2. the base image -------------------------------------------------------------------
step_start "base image"
if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base image $BASE_IMAGE is there"
elif [ -n "${AIOSPARK_BASE_IMAGE:-}" ]; then
    bounded 600 "$DOCKER" pull "$BASE_IMAGE" || fail "cannot pull $BASE_IMAGE"
else
    TARBALL=${AIOSPARK_DOCKER_CACHE:+$AIOSPARK_DOCKER_CACHE/aiospark-base-bookworm.tar}
    if [ -z "$TARBALL" ] || [ ! -s "$TARBALL" ]; then
        command -v debootstrap >/dev/null || skip "no debootstrap (apt-get install debootstrap), and no AIOSPARK_BASE_IMAGE"
        say "debootstrap bookworm (python3, python3-venv, python3-pip)"
        bounded 900 debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
            bookworm "$WORK/rootfs" >"$WORK/debootstrap.log" 2>&1 \
            || { unmount_under "$WORK/rootfs"; tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap failed"; }
        unmount_under "$WORK/rootfs"
        rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
        if [ -n "$TARBALL" ]; then
            mkdir -p "$AIOSPARK_DOCKER_CACHE"
            tar -C "$WORK/rootfs" -cf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL"
        else
            TARBALL=$WORK/rootfs.tar
            tar -C "$WORK/rootfs" -cf "$TARBALL" .
        fi
        rm -rf "$WORK/rootfs"
    fi
    bounded 300 "$DOCKER" import "$TARBALL" "$BASE_IMAGE" >/dev/null
    [ "$TARBALL" = "$WORK/rootfs.tar" ] && rm -f "$TARBALL"
fi
"$DOCKER" run --rm --network none "$BASE_IMAGE" python3 -c 'import sys, venv; print("smoke: base python", sys.version.split()[0])'
step_end

# -- 3. wheels of the project and its runtime dependencies, built on the host -------------
step_start "wheels"
CTX=$WORK/context
mkdir -p "$CTX/deploy/docker/wheels"
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/aiospark" "$CTX/"
cp "$REPO/deploy/Dockerfile" "$CTX/deploy/"
find "$CTX/aiospark" -name __pycache__ -prune -exec rm -rf {} +
# the versions the driver has (tasks travel as pickles), when the index has them
"$PY" -m pip list --format=freeze --exclude-editable 2>/dev/null >"$WORK/constraints.txt" || true
if ! bounded 600 "$PY" -m pip wheel --quiet --disable-pip-version-check -c "$WORK/constraints.txt" \
        --wheel-dir "$CTX/deploy/docker/wheels" "$CTX" >"$WORK/wheel.log" 2>&1; then
    say "wheels pinned to the driver's versions failed (see below); building the newest instead"
    tail -5 "$WORK/wheel.log"
    bounded 600 "$PY" -m pip wheel --quiet --disable-pip-version-check \
        --wheel-dir "$CTX/deploy/docker/wheels" "$CTX" >"$WORK/wheel.log" 2>&1 \
        || { tail -20 "$WORK/wheel.log" >&2; fail "pip wheel failed"; }
fi
rm -rf "$CTX/build" "$CTX"/*.egg-info
say "$(ls "$CTX/deploy/docker/wheels" | wc -l) wheels"
step_end

# -- 4. the image -------------------------------------------------------------------------
step_start "image build"
bounded 900 "$DOCKER" build --quiet --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f "$CTX/deploy/Dockerfile" -t "$IMAGE" "$CTX" >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; fail "docker build failed"; }
"$DOCKER" run --rm --network none "$IMAGE" worker --help >/dev/null || fail "the image does not run aiospark"
say "image $IMAGE: $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
step_end

# -- 5. the cluster -------------------------------------------------------------------------
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export AIOSPARK_MASTER_PORT=${AIOSPARK_MASTER_PORT:-$(free_port)}
export AIOSPARK_SHUFFLE_PORT=${AIOSPARK_SHUFFLE_PORT:-$(free_port)}
export AIOSPARK_HOST=127.0.0.1 AIOSPARK_ADVERTISE_HOST=127.0.0.1 AIOSPARK_IMAGE=$IMAGE
MASTER=aiospark://127.0.0.1:$AIOSPARK_MASTER_PORT
# the secret, readable by the image's user (uid 10001) and by root on the host
export AIOSPARK_SECRET_FILE=$WORK/secret
( umask 077; "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$AIOSPARK_SECRET_FILE" )
chown 10001 "$AIOSPARK_SECRET_FILE"
check() { bounded 300 "$PY" "$REPO/deploy/docker/smoke_check.py" "$@"; }

step_start "compose up (master, shuffle service, 2 workers registered)"
COMPOSE_UP=1
compose up -d --no-build --scale worker=2 >"$WORK/compose.log" 2>&1 \
    || { cat "$WORK/compose.log" >&2; fail "compose up failed"; }
check workers "$MASTER" 2 --timeout 60
step_end

step_start "job on 2 workers"
check job "$MASTER"
step_end

step_start "scale to 3 workers"
compose up -d --no-build --scale worker=3 >>"$WORK/compose.log" 2>&1 || fail "compose --scale worker=3 failed"
check workers "$MASTER" 3 --timeout 60
step_end
step_start "job on 3 workers"
check job "$MASTER"
step_end

step_start "scale to 1 worker (the others drain and leave)"
compose up -d --no-build --scale worker=1 >>"$WORK/compose.log" 2>&1 || fail "compose --scale worker=1 failed"
check workers "$MASTER" 1 --timeout 60
step_end
step_start "job on 1 worker"
check job "$MASTER"
step_end

if [ "${AIOSPARK_SMOKE_KEEP:-0}" = 1 ]; then
    say "cluster left running: AIOSPARK_MASTER=$MASTER AIOSPARK_SECRET_FILE=$AIOSPARK_SECRET_FILE"
    exit 0
fi
step_start "compose down"
compose down -v --timeout 20 >>"$WORK/compose.log" 2>&1 || fail "compose down failed"
COMPOSE_UP=
[ -z "$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ] || fail "containers left after compose down"
step_end

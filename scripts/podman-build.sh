#!/usr/bin/env bash
# Build the Batchscope image with podman, for a machine with no Docker engine, no registry and
# no route to the PyTorch index (follows ../shared/DOCKER.md). Everything here exists only
# for that: with a Docker engine, this script is `docker build` (README, "Build").
# Installs podman, debootstrap and Chromium (apt) and playwright (pip, in BATCHSCOPE_TOOLS)
# where missing, the last two for the browser check in scripts/docker-check.sh; makes
# debian:bookworm-slim with debootstrap once; builds the unchanged Dockerfile into
# BATCHSCOPE_IMAGE. Cleans up after itself and stops by itself on any failure.
#
# Usage: scripts/podman-build.sh            (as root)
# Env:   BATCHSCOPE_IMAGE, BATCHSCOPE_DOCKER_CACHE, BATCHSCOPE_TOOLS: see scripts/podman-lib.sh
set -euo pipefail

PLAYWRIGHT_VERSION=1.65.2
NEEDS_FREE_GB=25 # peak seen from nothing: 24 GB (6.5 GB image, its big layer written ~3 times)
# Reachable stand-ins for the Dockerfile's defaults: the PyTorch CPU index is out of reach here,
# so torch comes from PyPI, its big wheels from this machine's disk where it has them.
BUILD_TORCH_INDEX_URL=https://pypi.org/simple
LOCAL_WHEELS=(/opt/pypi-more/files /opt/wheels)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=podman-lib.sh
source "$repo/scripts/podman-lib.sh"
work=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -n "$work" ]] && rm -rf "$work"
    warn_mounts_left
    if ((status == 0)); then log "done in $((SECONDS - started)) s"; else log "FAILED (exit $status)"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

((EUID == 0)) || fail "run as root: it installs packages and runs podman"
work=$(mktemp -d /tmp/batchscope-podman-build.XXXXXX)

log "tools: podman, debootstrap, chromium (apt); playwright (pip, in $tools)"
missing=()
for tool in podman debootstrap chromium; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman debootstrap chromium fonts-dejavu-core; } >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get install ${missing[*]}"; }
fi
if ! "$tools/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('playwright') != '$PLAYWRIGHT_VERSION')" 2>/dev/null; then
    [[ -x "$tools/bin/python" ]] || python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet "playwright==$PLAYWRIGHT_VERSION" >"$work/pip.log" 2>&1 ||
        { cat "$work/pip.log"; fail "pip install playwright"; }
fi

mkdir -p "$cache"
free_gb=$(($(df --output=avail -k "$cache" | tail -1) / 1024 / 1024))
((free_gb >= NEEDS_FREE_GB)) || pm image exists "$IMAGE" ||
    fail "$cache has $free_gb GB free; a build from nothing needs about $NEEDS_FREE_GB GB"

# Whatever a build that was killed before its cleanup left.
for stale in $(pm ps -a --external --format '{{.ID}}'); do
    log "removing build container $stale left by an earlier run"
    pm rm -f "$stale" >/dev/null 2>&1 || true
done

if ! pm image exists docker.io/library/debian:bookworm-slim; then
    log "base image: debian:bookworm-slim from debootstrap (no registry here)"
    rootfs=$work/rootfs
    timeout 15m debootstrap --variant=minbase bookworm "$rootfs" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
    rm -f "$rootfs/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
    # Like the published image: no package lists, no downloaded .debs, no host resolver.
    rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin "$rootfs/var/cache/apt/archives/"*.deb
    : >"$rootfs/etc/resolv.conf"
    tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -C "$rootfs" -c . |
        pm import --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            - localhost/debian:bookworm-slim >"$work/import.log" 2>&1 || { cat "$work/import.log"; fail "podman import"; }
    pm tag localhost/debian:bookworm-slim docker.io/library/debian:bookworm-slim
    rm -rf "$rootfs"
else
    log "base image: debian:bookworm-slim, cached in $cache"
fi

log "build: $IMAGE (torch from $BUILD_TORCH_INDEX_URL; wheels on this disk are used first)"
# HTTPS from inside the build goes through a proxy that re-signs certificates: pip gets the
# host's CA bundle, for the build only. Local wheel folders are mounted read-only.
printf '[global]\ncert = /etc/pip-host-ca.crt\n' >"$work/pip.conf"
mounts=(-v /etc/ssl/certs/ca-certificates.crt:/etc/pip-host-ca.crt:ro -v "$work/pip.conf:/etc/pip.conf:ro")
find_links=()
for folder in "${LOCAL_WHEELS[@]}"; do
    if [[ -d "$folder" ]]; then
        mounts+=(-v "$folder:/wheels$folder:ro")
        find_links+=("/wheels$folder")
    fi
done
if ! timeout 45m unshare -m --propagation private "${P[@]}" build --isolation chroot --format docker \
    --pull=never --layers "${mounts[@]}" \
    --build-arg "TORCH_INDEX_URL=$BUILD_TORCH_INDEX_URL" \
    --build-arg "PIP_FIND_LINKS=${find_links[*]}" \
    -t "$IMAGE" "$repo" >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log"
    fail "podman build"
fi
built=$(grep -c '^STEP' "$work/build.log")
cached=$(grep -c '^--> Using cache' "$work/build.log" || true)
grep -E '^torch ' "$work/build.log" | sed 's/^/    /' || true
pm image prune -f >/dev/null # the image this build replaced, if any
size=$(pm image inspect --format '{{.Size}}' "$IMAGE")
log "build: $built steps, $cached from cache; image $((size / 1000000)) MB"

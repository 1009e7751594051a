# shellcheck shell=bash
# shellcheck disable=SC2034 # its variables are for the scripts that source it
# Sourced by scripts/podman-build.sh and scripts/docker-check.sh: the logging, the podman
# storage and the options that podman needs on a machine without a Docker engine (follows
# ../shared/DOCKER.md), defined once for both.
#
# Env: BATCHSCOPE_IMAGE         the image built and checked (default localhost/batchscope:check)
#      BATCHSCOPE_DOCKER_CACHE  podman storage kept between runs, so a second run reuses the
#                               base image and the dependency layer; delete it to start from
#                               nothing (default /var/tmp/batchscope-docker)
#      BATCHSCOPE_TOOLS         virtual environment for playwright and hadolint
#                               (default /var/tmp/batchscope-tools)

IMAGE=${BATCHSCOPE_IMAGE:-localhost/batchscope:check}
cache=${BATCHSCOPE_DOCKER_CACHE:-/var/tmp/batchscope-docker}
tools=${BATCHSCOPE_TOOLS:-/var/tmp/batchscope-tools}
started=$SECONDS
log_name=$(basename "$0" .sh)

log() { printf '[%s %4ds] %s\n' "$log_name" $((SECONDS - started)) "$*"; }
fail() {
    log "FAIL: $*"
    exit 1
}

# One storage root of our own. Every podman call runs in a private mount namespace (crun
# refuses this machine's hybrid cgroups otherwise), so no mount outlives the call that made it.
P=(podman --root "$cache/storage" --runroot "$cache/run" --storage-driver overlay)
pm() { unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' pm "${P[@]}" "$@"; }
# What every container on this machine needs: the host network (podman's bridge would change
# the host's firewall) and limits crun accepts here. A Docker engine needs none of them.
PODMAN_RUN_OPTIONS=(--network host --cgroups=disabled --ulimit nofile=16384:16384 --ulimit nproc=16384:16384)

warn_mounts_left() { # a mount under our storage would mean a podman call escaped its namespace
    if findmnt -rn -o TARGET | grep -qF "$cache"; then
        log "WARNING: mounts left under $cache:"
        findmnt -rn -o TARGET | grep -F "$cache" | sed 's/^/    /'
    fi
}

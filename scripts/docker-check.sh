#!/usr/bin/env bash
# Check the Batchscope image for real: serve the real MNIST from a read-only /data volume and
# prove that /_stcore/health answers ok, Chromium sees MNIST's class counts in the balance
# chart, the server runs as a user that is not root, and an empty writable volume can be
# downloaded into. First it lints the Dockerfile and builds the image with
# scripts/podman-build.sh (the set-up for a machine without a Docker engine); with --no-build
# it checks the image already built. Cleans up after itself and stops by itself on any failure.
#
# The checks hold for any engine. The engine here is podman, through `pm` and
# PODMAN_RUN_OPTIONS from scripts/podman-lib.sh; each line that would differ with Docker is
# marked "podman:" and says what Docker has instead.
#
# Usage: scripts/docker-check.sh [--no-build]     (as root)
# Env:   BATCHSCOPE_IMAGE, BATCHSCOPE_DOCKER_CACHE, BATCHSCOPE_TOOLS: see scripts/podman-lib.sh
#        BATCHSCOPE_REAL_DATA     data root holding MNIST/raw (default ../shared/data)
#        SCREENSHOT               the balance page as served (default /tmp/batchscope-docker-balance.png)
set -euo pipefail

EXPECTED_TITLE="MNIST train vs test: class counts (n=60,000 / 10,000)"
EXPECTED_TRAIN=5923,6742,5958,6131,5842,5421,5918,6265,5851,5949
EXPECTED_TEST=980,1135,1032,1010,982,892,958,1028,974,1009
# The hardening the README recommends, for any engine.
HARDENING=(--read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=podman-lib.sh
source "$repo/scripts/podman-lib.sh"
build=1
case "${1-}" in
"") ;;
--no-build) build=0 ;;
*) fail "unknown argument '$1'; usage: scripts/docker-check.sh [--no-build]" ;;
esac
data=$(realpath "${BATCHSCOPE_REAL_DATA:-$repo/../shared/data}")
screenshot=${SCREENSHOT:-/tmp/batchscope-docker-balance.png}
name=batchscope-check-$$
work=""
RUN_OPTIONS=("${PODMAN_RUN_OPTIONS[@]}" "${HARDENING[@]}")

remove_containers() { # $1: name prefix; our storage holds no one else's containers
    local container volume
    for container in $(pm ps -a --filter "name=^$1" --format '{{.Names}}' 2>/dev/null); do
        # podman: -t 5 (Docker's rm has no stop timeout)
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
    warn_mounts_left
    if ((status == 0)); then log "PASS in $((SECONDS - started)) s"; else log "FAILED (exit $status)"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

((EUID == 0)) || fail "run as root: it runs podman"
for file in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [[ -f "$data/MNIST/raw/$file" ]] || fail "$data/MNIST/raw/$file is missing (set BATCHSCOPE_REAL_DATA)"
done
work=$(mktemp -d /tmp/batchscope-docker-check.XXXXXX)

if ((build)); then
    log "lint: hadolint"
    BATCHSCOPE_TOOLS=$tools "$repo/scripts/lint-dockerfile.sh" | sed 's/^/    /'
    log "build: scripts/podman-build.sh"
    "$repo/scripts/podman-build.sh"
fi
if ! { command -v podman && command -v chromium && "$tools/bin/python" -c "import playwright"; } >/dev/null 2>&1; then
    fail "podman, chromium or playwright (in $tools) is missing: scripts/podman-build.sh installs them"
fi
# podman: image exists (Docker: docker image inspect)
pm image exists "$IMAGE" || fail "no image $IMAGE: build it with scripts/podman-build.sh"

# Whatever a run that was killed before its cleanup left: containers and volumes.
remove_containers batchscope-check-

port=8501
if ! python3 -c "import socket; socket.socket().bind(('0.0.0.0', $port))" 2>/dev/null; then
    port=$(python3 -c "import socket; s = socket.socket(); s.bind(('0.0.0.0', 0)); print(s.getsockname()[1])")
fi
url=http://127.0.0.1:$port
log "run: $name ($IMAGE) on port $port, $data mounted read-only at /data"
# podman: no health check timer (it needs systemd); `healthcheck run` below runs the image's
# check (Docker runs it by itself and needs neither).
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
# podman: healthcheck run (Docker: wait for docker inspect --format '{{.State.Health.Status}}'
# to say healthy)
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
# The harness every browser check here uses (bench/serving.py); it needs only playwright.
chart=$(cd "$repo" && timeout 5m "$tools/bin/python" -m bench.serving chart --traces 2 \
    "$url/balance" "$screenshot") || fail "the balance page shows no chart (screenshot: $screenshot)"
python3 - "$chart" "$EXPECTED_TITLE" "$EXPECTED_TRAIN" "$EXPECTED_TEST" <<'EOF' ||
import json
import re
import sys

chart, title_wanted, *counts_wanted = sys.argv[1:]
chart = json.loads(chart)
print(f"    chart: {chart['title']!r}")
problems = [] if chart["title"] == title_wanted else [f"the title is {chart['title']!r}"]
traces = {t["name"]: t for t in chart["traces"]}
for split, wanted in zip(["train", "test"], counts_wanted, strict=True):
    trace = traces.get(split, {"x": [], "y": []})
    # Bars are labelled "0 - zero", "1 - one", ...: the digit leads.
    got = {re.match(r"\d*", x).group(): y for x, y in zip(trace["x"], trace["y"])}
    want = {str(digit): int(n) for digit, n in enumerate(wanted.split(","))}
    print(f"    {split}: {[got.get(str(digit)) for digit in range(10)]}")
    if got != want:
        problems.append(f"{split} counts are {got}, want {want}")
problems += [f"the page shows an error: {e}" for e in chart["errors"]]
sys.exit("; ".join(problems) if problems else 0)
EOF
    fail "the balance page does not show MNIST's class counts"
log "browser: the chart shows MNIST's train and test class counts (screenshot: $screenshot)"
# The index is written to the image's /cache volume while the root file system is read-only.
info=$(pm exec "$name" python -m datalib info mnist --json 2>"$work/info.err") ||
    { tail -5 "$work/info.err"; fail "python -m datalib info mnist failed in the container"; }
std=$(python3 -c 'import json, sys; print(round(json.load(sys.stdin)["splits"]["train"]["pixel"]["std"], 4))' <<<"$info")
[[ "$std" == 0.3081 ]] || fail "datalib info in the container gives train pixel std $std, want 0.3081"
log "statistics: datalib info in the container gives the train pixel std 0.3081 (index in /cache, read-only root)"
log "memory: the server holds $(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status") MB with MNIST loaded"
# Your own Dataset (README, "Your own Dataset"): the config file and the package beside it
# mounted read-only at /config, named by BATCHSCOPE_CONFIG; its index goes to /cache too.
own=$(pm run --rm --name "$name-config" "${RUN_OPTIONS[@]}" --no-healthcheck --timeout 300 \
    -v "$data:/data:ro" -v "$repo/tests/userdata:/config:ro" \
    -e BATCHSCOPE_CONFIG=/config/batchscope.toml \
    --entrypoint python "$IMAGE" -m datalib info tensordigits --json 2>"$work/own.err") ||
    { tail -5 "$work/own.err"; fail "python -m datalib info tensordigits (a mounted config) failed in a container"; }
sizes=$(python3 -c 'import json, sys; s = json.load(sys.stdin)["splits"]; print(s["train"]["size"], s["test"]["size"])' <<<"$own")
[[ "$sizes" == "40 16" ]] || fail "the mounted config's tensordigits has splits of $sizes images, want 40 16"
log "config: a mounted batchscope.toml and its package give tensordigits (40 train, 16 test images) in a container"

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
# podman: --timeout 300 (Docker: timeout 300 docker run)
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
# podman: the storage is ours alone, so nothing at all may be left in it.
[[ -z "$(pm ps -a --format '{{.Names}}')$(pm volume ls --format '{{.Name}}')" ]] ||
    fail "containers or volumes left: $(pm ps -a --format '{{.Names}}') $(pm volume ls --format '{{.Name}}')"

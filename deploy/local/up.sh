#!/usr/bin/env bash
# Installs what is missing, builds Cairn, and runs the main job: a local cluster with the workflow.
# At this stage of the project it builds everything and runs what exists, saying plainly what it did.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
bash deploy/install-deps.sh
export CCACHE_BASEDIR="$ROOT" CCACHE_DIR=${CCACHE_DIR:-/var/cache/cairn-ccache} CCACHE_NOHASHDIR=1
mkdir -p "$CCACHE_DIR"
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$(nproc)"
echo "up.sh: built $(ls build/bin | wc -l) programs into build/bin"
echo "up.sh: the multi-host cluster is not wired up yet; nothing else was started"

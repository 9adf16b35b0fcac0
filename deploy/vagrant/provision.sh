#!/usr/bin/env bash
# Runs inside each VM as root: installs dependencies with the project's own script and builds Cairn.
set -euo pipefail
name=$1
ip=$2
cd /opt/cairn
bash deploy/install-deps.sh
cmake -S . -B /opt/cairn-build -G Ninja >/dev/null
cmake --build /opt/cairn-build -j "$(nproc)"
install -m 0755 /opt/cairn-build/bin/clusterd /opt/cairn-build/bin/clusterctl /usr/local/bin/
echo "provision: $name ($ip) has clusterd and clusterctl in /usr/local/bin"

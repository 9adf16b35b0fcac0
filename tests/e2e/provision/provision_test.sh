#!/usr/bin/env bash
# The Vagrant provisioning script (deploy/vagrant/provision.sh) run in CI, so it cannot rot: three hosts
# as network namespaces (names and subnet of their own), provision.sh in each with --no-system (no apt,
# no systemd) and --root (a directory per host instead of /), with the binaries of this build. Then the
# cluster must have a leader and three started members, serve a key written on host1 from host3, and a
# second provision.sh run must leave the running clusterd alone. Exit 77 (skip) without root.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CAIRN_BIN=${CAIRN_BIN:?CAIRN_BIN must name the directory with clusterd and clusterctl}
BUILD_BIN=$CAIRN_BIN
if [[ $(id -u) != 0 ]]; then
  echo "SKIP: needs root"
  exit 77
fi
NET=10.81.0
export CAIRN_NET_PREFIX=$NET CAIRN_SWITCH_NS=cprov-sw CAIRN_HOST_PREFIX=cprov-h
WORK=$(mktemp -d /tmp/cairn-provision-XXXXXX)
HOSTS=3
source "$ROOT/deploy/local/hosts.sh"

cleanup() {
  local code=$? n
  for n in 1 2 3; do
    CAIRN_STATE_DIR="$WORK/host$n-root/var/lib/cairn" stop_host "$n"
    kill_host "$n"
    delete_host "$n"
  done
  delete_switch
  rm -rf "$WORK"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

create_switch
for n in 1 2 3; do create_host "$n"; done
for n in 1 2 3; do
  host_exec "$n" bash "$ROOT/deploy/vagrant/provision.sh" "$n" 3 "$NET" --bin "$BUILD_BIN" \
    --root "$WORK/host$n-root" --no-system
done
grep -q "peer_address: $NET.13:2380" "$WORK/host1-root/etc/cairn/node.yaml"

ctl_in() {  # ctl_in N ARGS...: host N's installed clusterctl against every host
  local n=$1
  shift
  host_exec "$n" "$WORK/host$n-root/usr/local/bin/clusterctl" --endpoints "$(all_endpoints)" --timeout 5s "$@"
}
wait_until 60 "a leader with three members" ctl_in 1 status
ctl_in 1 status
ctl_in 1 kv put /provision/check "from host1"
[[ $(ctl_in 3 kv get /provision/check) == *"from host1"* ]]
pid=$(cat "$WORK/host2-root/var/lib/cairn/host2/clusterd.pid")
again=$(host_exec 2 bash "$ROOT/deploy/vagrant/provision.sh" 2 3 "$NET" --bin "$BUILD_BIN" --root "$WORK/host2-root" --no-system)
grep -q "already runs" <<<"$again"
[[ $(cat "$WORK/host2-root/var/lib/cairn/host2/clusterd.pid") == "$pid" ]]
echo "PASS: provision.sh brought up 3 hosts; re-running it left clusterd alone"

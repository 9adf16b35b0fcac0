#!/usr/bin/env bash
# The Vagrant provisioning script (deploy/vagrant/provision.sh) run in CI, so it cannot rot: three hosts
# as network namespaces (names and subnet of their own), provision.sh in each with --no-system (no apt,
# no systemd) and --root (a directory per host instead of /), with the binaries of this build and an API
# token, the three run at once as `vagrant up` does. Then: host1 founded the cluster with a cluster key,
# host2 and host3 joined with tokens and were promoted (three voters, one key), the API refuses a caller
# without the token, a key written on host1 is read on host3, host3's apply made volume gv0 mounted on
# host1 and host2 (a file written through one is read through the other), and a second provision.sh
# run leaves the running clusterd alone. Exit 77 (skip) without root.
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
root_of() { echo "$WORK/host$1-root"; }

cleanup() {
  local code=$? n
  for n in 1 2 3; do
    CAIRN_STATE_DIR="$(root_of "$n")/var/lib/cairn" stop_host "$n"
    kill_host "$n"   # cairn-mount processes too
  done
  unmount_all "$WORK"
  for n in 1 2 3; do delete_host "$n"; done
  delete_switch
  rm -rf "$WORK"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

provision() {  # provision N: provision.sh for host N inside its namespace
  host_exec "$1" bash "$ROOT/deploy/vagrant/provision.sh" "$1" 3 "$NET" --bin "$BUILD_BIN" \
    --root "$WORK/{host}-root" --api-token-file "$WORK/api.token" --no-system
}
step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

create_switch
for n in 1 2 3; do create_host "$n"; done
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/api.token"

step "provision.sh on three hosts at once (host2 and host3 wait for host1, host3 applies cluster.yaml)"
pids=()
for n in 1 2 3; do
  provision "$n" >"$WORK/provision$n.log" 2>&1 &
  pids+=($!)
done
failed=0
for n in 1 2 3; do
  if ! wait "${pids[$((n - 1))]}"; then
    echo "provision.sh for host$n failed:" >&2
    failed=1
  fi
  sed "s/^/  /" "$WORK/provision$n.log"
done
((failed == 0))

h1=$(root_of 1)
grep -q "peer: required" "$h1/etc/cairn/node.yaml"
grep -q "address: $NET.11:2379" "$(root_of 2)/etc/cairn/node.yaml"
grep -q "token: cairn1\." "$(root_of 3)/etc/cairn/node.yaml"
for n in 1 2 3; do
  grep -q "endpoints: $(all_endpoints)" "$(root_of "$n")/root/.config/cairn/clusterctl.yaml"
done
step "one cluster key on all three hosts"
[[ $(cmp -s "$h1/var/lib/cairn/host1/data/cluster.key" "$(root_of 2)/var/lib/cairn/host2/data/cluster.key" &&
  cmp -s "$h1/var/lib/cairn/host1/data/cluster.key" "$(root_of 3)/var/lib/cairn/host3/data/cluster.key" &&
  echo same) == same ]]

ctl_in() {  # ctl_in N ARGS...: host N's installed clusterctl against every host, with the API token
  local n=$1
  shift
  host_exec "$n" "$(root_of "$n")/usr/local/bin/clusterctl" --endpoints "$(all_endpoints)" \
    --token-file "$(root_of "$n")/etc/cairn/api.token" --timeout 5s "$@"
}
step "three voters (started, not learners), a leader"
voters() { [[ $(ctl_in 1 member list | grep -c "started.*false *$") == 3 ]]; }
wait_until 60 "three started voters" voters
wait_until 60 "a leader with three members" ctl_in 1 status
ctl_in 1 member list
step "the API refuses a caller without the token"
if host_exec 1 "$BUILD_BIN/clusterctl" --endpoints "$NET.11:2379" --timeout 5s kv get /x; then
  fail "kv get without the API token was served"
fi

step "a key written on host1, read on host3"
ctl_in 1 kv put /provision/check "from host1"
[[ $(ctl_in 3 kv get /provision/check) == *"from host1"* ]]

step "host3 applied cluster.yaml: volume gv0, mounted on host1 and host2"
grep -q "name: gv0" "$(root_of 3)/etc/cairn/cluster.yaml"
ctl_in 1 get volume gv0 -o yaml
m1="$h1/mnt/gv0" m2="$(root_of 2)/mnt/gv0"
wait_until 60 "gv0 mounted on host1 and host2" bash -c "grep -q ' $m1 fuse' /proc/self/mounts && grep -q ' $m2 fuse' /proc/self/mounts"
echo "written on host1" >"$m1/hello.txt"
wait_until 30 "host1's file seen on host2" grep -q "written on host1" "$m2/hello.txt"

step "provision.sh again on host2 leaves its clusterd alone"
pid=$(cat "$(root_of 2)/var/lib/cairn/host2/clusterd.pid")
again=$(provision 2)
grep -q "already runs" <<<"$again" || fail "second provision.sh did not find the running clusterd: $again"
grep -q "keeping" <<<"$again" || fail "second provision.sh rewrote node.yaml: $again"
[[ $(cat "$(root_of 2)/var/lib/cairn/host2/clusterd.pid") == "$pid" ]]
echo "PASS: provision.sh formed an authenticated 3-host cluster (init + join tokens) and applied cluster.yaml"

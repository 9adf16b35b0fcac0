#!/usr/bin/env bash
# Opt-in slow test (not in CI, not registered with ctest): three real VMs with vagrant-libvirt, a box
# built locally (deploy/vagrant/build-box.sh, no download), binaries built on this machine. Brings the
# VMs up (provision.sh in each: systemd unit, node.yaml), checks the store has three healthy members,
# then runs the workflow from the VMs: a key written on host1 read on host3, a replica-3 volume mounted
# on host1 and host2, a file written on one seen on the other, host3's clusterd killed, a write still
# working, host3 back and the volume in sync. Destroys the VMs at the end (CAIRN_KEEP_VMS=1 keeps them).
#
#   tests/e2e/vagrant.sh [BUILD_BIN_DIR]     (root or a libvirt user; ~10 min with QEMU emulation)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CAIRN_BIN_DIR=${1:-$ROOT/build/bin}
export CAIRN_LIBVIRT_DRIVER=${CAIRN_LIBVIRT_DRIVER:-$([[ -e /dev/kvm ]] && echo kvm || echo qemu)}
BOX=${CAIRN_BOX_FILE:-/var/tmp/cairn-bookworm.box}
NET=${CAIRN_NET_PREFIX:-192.168.56}
EP="$NET.11:2379,$NET.12:2379,$NET.13:2379"
cd "$ROOT/deploy/vagrant"

command -v vagrant >/dev/null || { echo "SKIP: vagrant is not installed"; exit 77; }
[[ -x $CAIRN_BIN_DIR/clusterd ]] || { echo "no clusterd in $CAIRN_BIN_DIR (build first)" >&2; exit 1; }
if ! vagrant box list | grep -q '^cairn/bookworm '; then
  [[ -f $BOX ]] || bash "$ROOT/deploy/vagrant/build-box.sh" "$BOX"
  vagrant box add --name cairn/bookworm "$BOX"
fi
cleanup() { [[ ${CAIRN_KEEP_VMS:-0} == 1 ]] || vagrant destroy -f; }
trap cleanup EXIT

vagrant up --provider libvirt
on() {  # on HOST CMD: a command as root in a VM
  local host=$1
  shift
  vagrant ssh "$host" -c "sudo bash -c '$*'"
}
ctl() { local host=$1; shift; on "$host" "clusterctl --endpoints $EP $*"; }
retry() {  # retry SECONDS CMD...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 2; done
}

retry 120 ctl host1 status
ctl host1 kv put /vagrant/hello from-host1
ctl host3 kv get /vagrant/hello | grep -q from-host1
ctl host1 volume create vol0 replica 3 host1:/var/lib/cairn/bricks/vol0 host2:/var/lib/cairn/bricks/vol0 \
  host3:/var/lib/cairn/bricks/vol0
ctl host1 volume start vol0 --wait 120s
for h in host1 host2; do on "$h" "mkdir -p /mnt/vol0"; ctl "$h" mount vol0 /mnt/vol0; done
on host1 "echo from-host1 > /mnt/vol0/hello.txt"
on host2 "cat /mnt/vol0/hello.txt" | grep -q from-host1
on host3 "systemctl kill -s KILL clusterd"
on host1 "echo during-outage > /mnt/vol0/outage.txt"
on host2 "cat /mnt/vol0/outage.txt" | grep -q during-outage
on host3 "systemctl restart clusterd"
retry 180 bash -c "! vagrant ssh host1 -c 'sudo clusterctl --endpoints $EP volume heal vol0 status' | grep -Eq 'out-of-sync|healing'"
ctl host1 volume status vol0
echo "PASS: 3 VMs, store, volume with a host killed and healed"

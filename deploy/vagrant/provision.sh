#!/usr/bin/env bash
# Provisions one Cairn host: dependencies (deploy/install-deps.sh), binaries, this host's node.yaml
# (written by the same write_node_yaml as the local cluster, deploy/local/hosts.sh), the systemd unit
# (deploy/systemd/clusterd.service), then starts clusterd and waits for it. Used by the Vagrantfile in
# each VM, and by tests/e2e/provision inside network-namespace hosts with --no-system, so it cannot rot.
#
#   provision.sh N HOSTS NET_PREFIX [--bin DIR] [--root DIR] [--no-system]
#     N            this host's number: name hostN, address NET_PREFIX.(10+N)
#     HOSTS        how many hosts found the cluster (static initial_cluster: host1..hostHOSTS)
#     NET_PREFIX   first three octets of the hosts' network, e.g. 192.168.56
#     --bin DIR    take clusterd, clusterctl, cairn-mount, unionmount from DIR instead of building
#     --root DIR   install below DIR instead of / (DIR/usr/local/bin, DIR/etc/cairn, DIR/var/lib/cairn)
#     --no-system  no apt, no systemd: clusterd is started directly (setsid, pid in STATE/hostN/clusterd.pid)
# Run it again to re-provision: a running clusterd is left alone.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
usage() { sed -n '/^#   provision.sh/,/^# Run it/p' "$0" >&2; exit 2; }
(($# >= 3)) || usage
N=$1 HOSTS=$2 NET_PREFIX=$3
shift 3
bin_dir="" root="" system=1
while (($#)); do
  case $1 in
    --bin) bin_dir=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --no-system) system=0; shift ;;
    *) usage ;;
  esac
done
[[ $N =~ ^[0-9]+$ && $HOSTS =~ ^[0-9]+$ ]] && ((N >= 1 && N <= HOSTS)) || usage

say() { echo "provision host$N: $*"; }

# 1. Dependencies (the project's own script; it installs only what is missing).
if ((system)); then
  bash "$REPO/deploy/install-deps.sh"
fi

# 2. Binaries: given, or built from the repository.
if [[ -z $bin_dir ]]; then
  cmake -S "$REPO" -B /opt/cairn-build -G Ninja >/dev/null
  cmake --build /opt/cairn-build -j "$(nproc)" --target clusterd clusterctl cairn-mount unionmount
  bin_dir=/opt/cairn-build/bin
fi
mkdir -p "$root/usr/local/bin" "$root/etc/cairn" "$root/var/lib/cairn"
for b in clusterd clusterctl cairn-mount unionmount; do
  install -m 0755 "$bin_dir/$b" "$root/usr/local/bin/$b"
done
say "binaries in $root/usr/local/bin"

# 3. node.yaml: the local cluster's own generator, with this network's addresses.
export CAIRN_NET_PREFIX=$NET_PREFIX CAIRN_STATE_DIR=$root/var/lib/cairn CAIRN_BIN=$root/usr/local/bin
source "$REPO/deploy/local/hosts.sh"
write_node_yaml "$N"
install -m 0644 "$CAIRN_STATE_DIR/host$N/node.yaml" "$root/etc/cairn/node.yaml"
"$CAIRN_BIN/clusterctl" config check "$root/etc/cairn/node.yaml"
mkdir -p "$root/var/lib/cairn/images" "$root/var/lib/cairn/containers"

# 4. Start clusterd: systemd, or directly (the CI test runs this inside the host's network namespace).
if ((system)); then
  install -m 0644 "$REPO/deploy/systemd/clusterd.service" /etc/systemd/system/clusterd.service
  systemctl daemon-reload
  systemctl enable --now clusterd.service
  say "clusterd.service enabled and started"
  log_file="$CAIRN_STATE_DIR/host$N/clusterd.log"
  wait_for_file_line "$log_file" "clusterd.started" 60 || { journalctl -u clusterd -n 30 >&2; exit 1; }
else
  dir="$CAIRN_STATE_DIR/host$N"
  if clusterd_alive "$N"; then
    say "clusterd already runs (pid $(cat "$dir/clusterd.pid"))"
  else
    : >"$dir/clusterd.log"
    CAIRN_IMAGE_ROOT=$root/var/lib/cairn/images CAIRN_CONTAINER_ROOT=$root/var/lib/cairn/containers \
      setsid "$CAIRN_BIN/clusterd" --config "$root/etc/cairn/node.yaml" >>"$dir/clusterd.out" 2>&1 </dev/null &
    echo $! >"$dir/clusterd.pid"
    disown $!
    wait_for_file_line "$dir/clusterd.log" "clusterd.started" 60 || { tail -30 "$dir/clusterd.log" >&2; exit 1; }
  fi
fi
say "clusterd runs as host$N at $(host_ip "$N") (store API $(host_ip "$N"):2379); try: clusterctl --endpoints $(all_endpoints) status"

#!/usr/bin/env bash
# Installs what is missing, builds Cairn, brings up a local multi-host cluster and walks through the
# workflow: N hosts (default 3), each a network namespace (cairn-h1..N, 10.77.0.11..) on a private
# bridge, each running its own clusterd (store, bricks, heal). Then, narrated, each in its own script:
#   Part A (part-a.sh): the store, a key written on one host and read on another, the leader killed;
#   Part C (part-c.sh): a replica-3 volume mounted on two hosts, a host killed, still working, healed;
#   Part D (part-d.sh): a busybox image, containers sharing it, `image show`, experiments 1 and 2.
# The cluster keeps running afterwards; down.sh removes everything up.sh made.
#
#   deploy/local/up.sh [N]      (root) N >= 3 for Parts C and D; a second run while it runs only
#                               prints the status
#   CAIRN_SKIP_BUILD=1 CAIRN_BIN=DIR deploy/local/up.sh   use binaries built elsewhere
#   CAIRN_PARTS="a c d"         which parts to run (default all)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
HOSTS=${1:-3}
CAIRN_BIN=${CAIRN_BIN:-$ROOT/build/bin}
PARTS=${CAIRN_PARTS:-a c d}
source deploy/local/hosts.sh

if [[ ${CAIRN_SKIP_BUILD:-0} != 1 ]]; then
  bash deploy/install-deps.sh
  export CCACHE_BASEDIR="$ROOT" CCACHE_DIR=${CCACHE_DIR:-/var/cache/cairn-ccache} CCACHE_NOHASHDIR=1
  mkdir -p "$CCACHE_DIR"
  cmake -S . -B build -G Ninja >/dev/null
  cmake --build build -j "$(nproc)" --target clusterd clusterctl cairn-mount unionmount
  echo "up.sh: built clusterd, clusterctl, cairn-mount and unionmount into build/bin"
fi

for ((n = 1; n <= HOSTS; n++)); do
  if clusterd_alive "$n"; then
    echo "up.sh: the local cluster already runs (host$n's clusterd is up); its status:"
    ctl "$n" --timeout 3s status || true
    echo "up.sh: start over with deploy/local/down.sh && deploy/local/up.sh"
    exit 0
  fi
done

# A fresh start: leftovers of an earlier run (a reboot, or down.sh --keep-state) are moved aside, so the
# hosts found a new cluster instead of recovering an old one whose volumes would clash with Part C.
if compgen -G "$CAIRN_STATE_DIR/host*" >/dev/null; then
  unmount_all "$CAIRN_STATE_DIR"
  old="$CAIRN_STATE_DIR.old-$(date +%Y%m%d-%H%M%S)"
  mv "$CAIRN_STATE_DIR" "$old"
  echo "up.sh: an earlier run's state moved to $old"
fi
mkdir -p "$CAIRN_STATE_DIR"
create_switch
for ((n = 1; n <= HOSTS; n++)); do
  create_host "$n"
  write_node_yaml "$n"
  start_host "$n"
done

# Show that the hosts reach each other's peer ports across the bridge.
for ((n = 2; n <= HOSTS; n++)); do
  if host_exec 1 bash -c "exec 3<>/dev/tcp/$(host_ip "$n")/2380" 2>/dev/null; then
    echo "up.sh: host1 reaches host$n's peer port $(host_ip "$n"):2380"
  else
    echo "up.sh: host1 cannot reach host$n's peer port" >&2
    exit 1
  fi
done
echo "up.sh: $HOSTS hosts up."

[[ " $PARTS " == *" a "* ]] && source deploy/local/part-a.sh

# The hosts as records in the store, declaratively (when this clusterctl has `apply`).
if "$CAIRN_BIN/clusterctl" apply --help 2>/dev/null | grep -q -- "--dry-run"; then
  write_cluster_yaml "$CAIRN_STATE_DIR/cluster.yaml"
  echo
  echo "up.sh: \$ clusterctl apply -f $CAIRN_STATE_DIR/cluster.yaml   (the hosts; Parts C and D add the rest)"
  ctl 1 apply -f "$CAIRN_STATE_DIR/cluster.yaml" || echo "up.sh: apply failed; going on without host records" >&2
fi
if ((HOSTS >= 3)); then
  [[ " $PARTS " == *" c "* ]] && source deploy/local/part-c.sh
  [[ " $PARTS " == *" d "* ]] && source deploy/local/part-d.sh
else
  echo "up.sh: Parts C and D need 3 hosts; skipped"
fi

echo
echo "up.sh: \$ clusterctl status"
ctl 1 status || true   # exits 1 while anything is down

cat <<TEXT

up.sh: the cluster keeps running. Each host is a network namespace; run commands inside one, e.g.
  nsenter --net=/run/netns/$(host_ns 1) $CAIRN_BIN/clusterctl --endpoints $(all_endpoints) status
  nsenter --net=/run/netns/$(host_ns 1) $CAIRN_BIN/clusterctl --endpoints $(all_endpoints) volume status
  ls $CAIRN_STATE_DIR/host1/mnt/vol0         (the volume, mounted on host1 and host2)
  CAIRN_HOST=host1 CAIRN_IMAGE_ROOT=$CAIRN_STATE_DIR/images CAIRN_CONTAINER_ROOT=$CAIRN_STATE_DIR/host1/containers \\
    nsenter --net=/run/netns/$(host_ns 1) $CAIRN_BIN/clusterctl --endpoints $(all_endpoints) container list
Configs, logs and data: $CAIRN_STATE_DIR/hostN (node.yaml, clusterd.log, data/, bricks/, mnt/).
Stop and remove everything: deploy/local/down.sh
TEXT

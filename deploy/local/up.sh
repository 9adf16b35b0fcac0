#!/usr/bin/env bash
# Installs what is missing, builds Cairn, brings up a local multi-host cluster and walks through the
# workflow: N hosts (default 3), each a network namespace (cairn-h1..N, 10.77.0.11..) on a private
# bridge, each running its own clusterd (store, bricks, heal, mount and container agents).
#   Forming: host1 founds the cluster (auth.peer: required, it creates the cluster key); the others
#     join with a join token (clusterctl token create) and are promoted to voters (form_cluster in
#     hosts.sh). Every peer connection is authenticated; the API requires a bearer token.
#   Security (part-security.sh): an intruder host with a forged token, then without the key, refused.
#   Part A (part-a.sh): the store, a key written on one host and read on another, the leader killed.
#   The desired state: `clusterctl apply -f config/cluster.yaml` (volume gv0, its mounts on host1 and
#     host2, image base, containers c1 and c2 on host1); the hosts' agents mount and start them.
#   Part C (part-c.sh): the agents' mounts of gv0, a host killed, writes go on, heal until in sync.
#   Part D (part-d.sh): the applied containers sharing image base, `image show`, experiments 1 and 2.
#   Finally `clusterctl diff -f FILE` (no changes: converged to the file) and `clusterctl status`.
# The cluster keeps running afterwards; down.sh removes everything up.sh made.
#
#   deploy/local/up.sh [N]      (root) N >= 3 for Parts C and D; a second run while it runs only
#                               prints the status
#   CAIRN_SKIP_BUILD=1 CAIRN_BIN=DIR deploy/local/up.sh   use binaries built elsewhere
#   CAIRN_PARTS="s a c d"       which parts to run (default all; s is the security step)
#   CAIRN_HOST_ROLES="voter voter voter witness"   roles per host (host1 is always a voter)
#   CAIRN_API_AUTH=0            no API bearer token
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
HOSTS=${1:-3}
CAIRN_BIN=${CAIRN_BIN:-$ROOT/build/bin}
PARTS=${CAIRN_PARTS:-s a c d}
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
echo "== Forming the cluster: host1 founds it, the others join with a token =="
form_cluster

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

[[ " $PARTS " == *" s "* ]] && source deploy/local/part-security.sh
[[ " $PARTS " == *" a "* ]] && source deploy/local/part-a.sh

# The desired state: config/cluster.yaml itself when it names these hosts (the default state dir and
# network, 3 hosts, no witness), else an equivalent file written for them.
if [[ $CAIRN_STATE_DIR == /var/lib/cairn-local && $CAIRN_NET_PREFIX == 10.77.0 && $HOSTS == 3 &&
  ${CAIRN_HOST_ROLES:-} != *witness* ]]; then
  CLUSTER_FILE=$ROOT/config/cluster.yaml
else
  CLUSTER_FILE=$CAIRN_STATE_DIR/cluster.yaml
  write_cluster_yaml "$CLUSTER_FILE"
  echo "up.sh: config/cluster.yaml names 3 hosts under /var/lib/cairn-local; these hosts get the equivalent $CLUSTER_FILE"
fi
for ((n = 1; n <= HOSTS; n++)); do mkdir -p "$CAIRN_STATE_DIR/host$n/shared"; done  # container c2's bind
echo
echo "== The desired state: volume, mounts, image and containers from ${CLUSTER_FILE#"$ROOT"/} =="
echo "up.sh: \$ clusterctl apply -f ${CLUSTER_FILE#"$ROOT"/}"
ctl 1 apply -f "$CLUSTER_FILE"

if ((HOSTS >= 3)) && grep -q '^volumes:' "$CLUSTER_FILE"; then
  [[ " $PARTS " == *" c "* ]] && source deploy/local/part-c.sh
  [[ " $PARTS " == *" d "* ]] && source deploy/local/part-d.sh
else
  echo "up.sh: Parts C and D need 3 storage hosts; skipped"
fi

echo
echo "up.sh: has the cluster converged to the file? \$ clusterctl diff -f ${CLUSTER_FILE#"$ROOT"/}"
plan=$(ctl 1 diff -f "$CLUSTER_FILE")
echo "$plan"
if [[ $plan != "No changes."* ]]; then
  echo "up.sh: the cluster differs from ${CLUSTER_FILE#"$ROOT"/} (above)" >&2
  exit 1
fi
echo
echo "up.sh: \$ clusterctl status"
ctl 1 status || true   # exits 1 while anything is down

token=$(api_token_file)
cat <<TEXT

up.sh: the cluster keeps running. Each host is a network namespace; run commands inside one, e.g.
  export CAIRN_ENDPOINTS=$(all_endpoints)${token:+ CAIRN_API_TOKEN_FILE=$token}
  nsenter --net=/run/netns/$(host_ns 1) $CAIRN_BIN/clusterctl status
  nsenter --net=/run/netns/$(host_ns 1) $CAIRN_BIN/clusterctl volume status gv0
  nsenter --net=/run/netns/$(host_ns 1) $CAIRN_BIN/clusterctl token create --ttl 1h   (a join token for one more host)
  ls $CAIRN_STATE_DIR/host1/mnt/gv0          (volume gv0, mounted by the mount agents of host1 and host2)
  CAIRN_HOST=host1 nsenter --net=/run/netns/$(host_ns 1) $CAIRN_BIN/clusterctl container exec c1 -- ls /data
Change the desired state: edit ${CLUSTER_FILE#"$ROOT"/}, then clusterctl diff -f FILE and apply -f FILE.
Configs, logs and data: $CAIRN_STATE_DIR/hostN (node.yaml, clusterd.log, data/ with cluster.key, bricks/, mnt/);
join token: $CAIRN_STATE_DIR/join.token.
Stop and remove everything: deploy/local/down.sh
TEXT

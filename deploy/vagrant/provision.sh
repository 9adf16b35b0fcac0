#!/usr/bin/env bash
# Provisions one Cairn host of an authenticated cluster: binaries, this host's node.yaml, the clusterctl
# settings, the systemd unit (deploy/systemd/clusterd.service), then starts clusterd and waits for it.
# Used by deploy/vagrant/Vagrantfile in each VM, and by tests/e2e/provision inside network-namespace
# hosts with --no-system, so it cannot rot.
#
# How the cluster forms (docs/operations.md "Joining a host"): host1 founds it alone with
# `auth.peer: required` (clusterd makes the cluster key at first start); every other host asks host1
# for a join token (`clusterctl token create`, over the API, which needs the API bearer token when
# --api-token-file is given), writes it into its node.yaml's `join:` and starts: it proves the token,
# receives the cluster key, joins as a learner and is promoted to voter. The last host (N == HOSTS)
# waits until every host answers and then applies the cluster's desired state (cluster.yaml: the hosts,
# replica-HOSTS volume gv0, mounted on host1 and host2 at ROOT/mnt/gv0).
#
#   provision.sh N HOSTS NET_PREFIX [--bin DIR] [--root DIR] [--api-token-file FILE] [--no-system]
#     N            this host's number: name hostN, address NET_PREFIX.(10+N)
#     HOSTS        how many hosts the cluster will have (host1..hostHOSTS)
#     NET_PREFIX   first three octets of the hosts' network, e.g. 192.168.56
#     --bin DIR    take clusterd, clusterctl, cairn-mount, unionmount from DIR (else they are built
#                  from this repository, after deploy/install-deps.sh: needs the network)
#     --root DIR   install below DIR instead of / (DIR/usr/local/bin, DIR/etc/cairn, DIR/var/lib/cairn);
#                  "{host}" in DIR stands for the host's name, so hosts sharing one file system (the CI
#                  test) each get their own, and cluster.yaml can name the other hosts' paths
#     --api-token-file FILE  the HTTP API's bearer token (the same file on every host): installed as
#                  ROOT/etc/cairn/api.token and required by every host's API
#     --no-system  no apt, no systemd: clusterd is started directly (setsid, pid in STATE/hostN/clusterd.pid)
# Run it again to re-provision: an existing node.yaml is kept and a running clusterd is left alone.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
usage() { sed -n '/^#   provision.sh/,/^# Run it/p' "$0" >&2; exit 2; }
(($# >= 3)) || usage
N=$1 HOSTS=$2 NET_PREFIX=$3
shift 3
bin_dir="" root_pattern="" api_token="" system=1
while (($#)); do
  case $1 in
    --bin) bin_dir=$2; shift 2 ;;
    --root) root_pattern=$2; shift 2 ;;
    --api-token-file) api_token=$2; shift 2 ;;
    --no-system) system=0; shift ;;
    *) usage ;;
  esac
done
[[ $N =~ ^[0-9]+$ && $HOSTS =~ ^[0-9]+$ ]] && ((N >= 1 && N <= HOSTS)) || usage

say() { echo "provision host$N: $*"; }
root_of() { echo "${root_pattern//\{host\}/host$1}"; }   # root_of I: host I's install root ("" = /)
root=$(root_of "$N")
export CAIRN_NET_PREFIX=$NET_PREFIX CAIRN_STATE_DIR=$root/var/lib/cairn CAIRN_BIN=$root/usr/local/bin
source "$REPO/deploy/local/hosts.sh"   # host_ip, all_endpoints, wait helpers, clusterd_alive
ETC=$root/etc/cairn
STATE=$CAIRN_STATE_DIR/host$N          # log, pid (--no-system) and data dir
FIRST=$(host_ip 1):2379

# 1. Binaries: given (the VMs need no network then: the box carries the runtime packages), or built.
if [[ -z $bin_dir ]]; then
  ((system)) && bash "$REPO/deploy/install-deps.sh"
  cmake -S "$REPO" -B /opt/cairn-build -G Ninja >/dev/null
  cmake --build /opt/cairn-build -j "$(nproc)" --target clusterd clusterctl cairn-mount unionmount
  bin_dir=/opt/cairn-build/bin
fi
mkdir -p "$CAIRN_BIN" "$ETC" "$STATE" "$CAIRN_STATE_DIR/images" "$CAIRN_STATE_DIR/containers"
for b in clusterd clusterctl cairn-mount unionmount; do
  install -m 0755 "$bin_dir/$b" "$CAIRN_BIN/$b"
done
if missing=$(ldd "$CAIRN_BIN"/* | grep "not found"); then
  say "libraries missing (build the box with CAIRN_BIN_DIR set, or install them): $missing" >&2
  exit 1
fi
say "binaries in $CAIRN_BIN"

# 2. clusterctl's settings for root (endpoints of every host, the API token): `clusterctl status` works
# as is on every host.
auth_args=()
if [[ -n $api_token ]]; then
  install -m 0600 "$api_token" "$ETC/api.token"
  auth_args=(--token-file "$ETC/api.token")
fi
mkdir -p "$root/root/.config/cairn"
{
  echo "endpoints: $(all_endpoints)"
  [[ -n $api_token ]] && echo "token_file: $ETC/api.token"
} >"$root/root/.config/cairn/clusterctl.yaml"
ctl() { "$CAIRN_BIN/clusterctl" --endpoints "$(all_endpoints)" "${auth_args[@]}" --timeout 5s "$@"; }
ctl1() { "$CAIRN_BIN/clusterctl" --endpoints "$FIRST" "${auth_args[@]}" --timeout 10s "$@"; }  # host1 only

# 3. node.yaml: host1 founds the cluster; the others join with a token asked from host1.
write_node_yaml() {  # write_node_yaml [JOIN_TOKEN]
  printf 'name: host%d\nrole: voter\ndata_dir: %s/data\n' "$N" "$STATE"
  printf 'peer_address: %s:2380\nclient_address: %s:2379\n' "$(host_ip "$N")" "$(host_ip "$N")"
  [[ -n ${1:-} ]] && printf 'join:\n  address: %s\n  token: %s\n' "$FIRST" "$1"
  printf 'auth:\n  peer: required\n'
  [[ -n $api_token ]] && printf '  api_token_file: %s/api.token\n' "$ETC"
  printf 'log:\n  level: info\n  format: text\n  file: %s/clusterd.log\n' "$STATE"
}
if [[ -f $ETC/node.yaml ]]; then
  say "keeping $ETC/node.yaml"
elif ((N == 1)); then
  write_node_yaml >"$ETC/node.yaml.tmp"
else
  say "asking host1 ($FIRST) for a join token"
  wait_until 600 "host1's API at $FIRST" ctl1 token list
  if ! token=$(ctl1 token create --ttl 1h 2>"$STATE/token.err"); then
    say "token create failed: $(cat "$STATE/token.err")" >&2
    exit 1
  fi
  rm -f "$STATE/token.err"
  write_node_yaml "$token" >"$ETC/node.yaml.tmp"
fi
if [[ -f $ETC/node.yaml.tmp ]]; then
  chmod 0600 "$ETC/node.yaml.tmp"   # it may hold a join token
  mv "$ETC/node.yaml.tmp" "$ETC/node.yaml"
fi
"$CAIRN_BIN/clusterctl" config check "$ETC/node.yaml"

# 4. Start clusterd: systemd, or directly (the CI test runs this inside the host's network namespace).
if ((system)); then
  install -m 0644 "$REPO/deploy/systemd/clusterd.service" /etc/systemd/system/clusterd.service
  systemctl daemon-reload
  systemctl enable --now clusterd.service
  say "clusterd.service enabled and started"
  wait_for_file_line "$STATE/clusterd.log" "clusterd.started" 120 || { journalctl -u clusterd -n 30 >&2; exit 1; }
elif clusterd_alive "$N"; then
  say "clusterd already runs (pid $(cat "$STATE/clusterd.pid"))"
else
  : >"$STATE/clusterd.log"
  CAIRN_HOST=host$N CAIRN_IMAGE_ROOT=$CAIRN_STATE_DIR/images CAIRN_CONTAINER_ROOT=$CAIRN_STATE_DIR/containers \
    setsid "$CAIRN_BIN/clusterd" --config "$ETC/node.yaml" >>"$STATE/clusterd.out" 2>&1 </dev/null &
  echo $! >"$STATE/clusterd.pid"
  disown $!
  wait_for_file_line "$STATE/clusterd.log" "clusterd.started" 120 || { tail -30 "$STATE/clusterd.log" >&2; exit 1; }
fi
say "clusterd runs as host$N at $(host_ip "$N") (store API $(host_ip "$N"):2379)"

# 5. The last host: once every host answers (a leader, HOSTS healthy members), the desired state.
write_cluster_yaml() {
  local i
  echo "# Cairn on $HOSTS hosts (deploy/vagrant/provision.sh). Schema: docs/config.md, \"cluster.yaml\"."
  echo "hosts:"
  for ((i = 1; i <= HOSTS; i++)); do
    printf '  - name: host%d\n    address: %s\n    roles: [voter, storage]\n' "$i" "$(host_ip "$i")"
  done
  printf 'volumes:\n  - name: gv0\n    type: replicate\n    replica: %d\n    bricks:\n' "$HOSTS"
  for ((i = 1; i <= HOSTS; i++)); do
    printf '      - host%d:%s/var/lib/cairn/bricks/gv0\n' "$i" "$(root_of "$i")"
  done
  printf '    state: started\nmounts:\n'
  for ((i = 1; i <= 2 && i <= HOSTS; i++)); do
    printf '  - host: host%d\n    volume: gv0\n    path: %s/mnt/gv0\n' "$i" "$(root_of "$i")"
  done
}
if ((N == HOSTS)); then
  say "waiting for all $HOSTS hosts to be healthy members"
  wait_until 600 "$HOSTS healthy members with a leader" ctl status
  write_cluster_yaml >"$ETC/cluster.yaml"
  say "\$ clusterctl apply -f $ETC/cluster.yaml"
  ctl apply -f "$ETC/cluster.yaml"
  say "the cluster is up; on any host: sudo clusterctl status"
fi

# Shared helpers for the local multi-host cluster: each "host" is a network namespace (cairn-hN) with a
# veth into a private switch namespace (cairn-sw) holding a bridge. Nothing touches the root namespace's
# network. The switch's bridge has the address PREFIX.1, so a tool run in the switch namespace
# (switch_exec) reaches every host, and a host cut off at the switch is cut off from it too.
# Source this file; it defines variables and functions only. Every name can be overridden, so a test
# (tests/e2e) runs its own hosts next to a running local cluster without collision.

CAIRN_NET_PREFIX=${CAIRN_NET_PREFIX:-10.77.0}
CAIRN_SWITCH_NS=${CAIRN_SWITCH_NS:-cairn-sw}
CAIRN_HOST_PREFIX=${CAIRN_HOST_PREFIX:-cairn-h}   # namespaces PREFIXN, veths PREFIXNe/PREFIXNs (<= 15 chars)
CAIRN_STATE_DIR=${CAIRN_STATE_DIR:-/var/lib/cairn-local}

host_ns() { echo "${CAIRN_HOST_PREFIX}$1"; }
host_ip() { echo "${CAIRN_NET_PREFIX}.$((10 + $1))"; }
switch_ip() { echo "${CAIRN_NET_PREFIX}.1"; }

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# host_exec N CMD...: CMD in host N's network namespace but the root mount namespace (nsenter, not
# `ip netns exec`, which gives each command a private mount namespace: a FUSE mount made there would be
# invisible to everyone else and vanish with the command).
host_exec() {
  local n=$1
  shift
  nsenter --net="/run/netns/$(host_ns "$n")" -- "$@"
}

# switch_exec CMD...: CMD in the switch namespace, which reaches every host at PREFIX.(10+N).
switch_exec() { nsenter --net="/run/netns/$CAIRN_SWITCH_NS" -- "$@"; }

create_switch() {
  ns_exists "$CAIRN_SWITCH_NS" && return 0
  ip netns add "$CAIRN_SWITCH_NS"
  ip -n "$CAIRN_SWITCH_NS" link add br0 type bridge
  ip -n "$CAIRN_SWITCH_NS" addr add "$(switch_ip)/24" dev br0
  ip -n "$CAIRN_SWITCH_NS" link set br0 up
  ip -n "$CAIRN_SWITCH_NS" link set lo up
}

# create_host N: namespace PREFIXN with address PREFIX.(10+N)/24 on eth0, plugged into the switch.
create_host() {
  local n=$1 ns
  ns=$(host_ns "$n")
  ns_exists "$ns" && return 0
  ip netns add "$ns"
  ip link add "${ns}e" type veth peer name "${ns}s"
  ip link set "${ns}e" netns "$ns"
  ip link set "${ns}s" netns "$CAIRN_SWITCH_NS"
  ip -n "$ns" link set "${ns}e" name eth0
  ip -n "$ns" addr add "$(host_ip "$n")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$CAIRN_SWITCH_NS" link set "${ns}s" master br0
  ip -n "$CAIRN_SWITCH_NS" link set "${ns}s" up
}

# cut_host N / heal_host N: take a host off the network and put it back (its processes keep running).
cut_host() { ip -n "$CAIRN_SWITCH_NS" link set "$(host_ns "$1")s" down; }
heal_host() { ip -n "$CAIRN_SWITCH_NS" link set "$(host_ns "$1")s" up; }

# host_pids N: every process whose network namespace is host N's (clusterd, cairn-mount, LXC monitors).
host_pids() {
  ns_exists "$(host_ns "$1")" || return 0
  ip netns pids "$(host_ns "$1")" 2>/dev/null || true
}

# kill_host N: kill -9 every process of host N, as if the machine lost power.
kill_host() {
  local pids
  pids=$(host_pids "$1")
  [[ -n $pids ]] && kill -9 $pids 2>/dev/null
  return 0
}

delete_host() {
  local ns
  ns=$(host_ns "$1")
  ns_exists "$ns" && ip netns delete "$ns"
  return 0
}

delete_switch() {
  ns_exists "$CAIRN_SWITCH_NS" && ip netns delete "$CAIRN_SWITCH_NS"
  return 0
}

# wait_for_file_line FILE PATTERN SECONDS: true once FILE has a line matching PATTERN, false at the deadline.
wait_for_file_line() {
  local file=$1 pattern=$2 deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# wait_until SECONDS DESCRIPTION CMD...: retries CMD (output hidden) until it succeeds; false, with a
# message naming DESCRIPTION, at the deadline.
wait_until() {
  local secs=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "gave up after $secs s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# ---- clusterd on the hosts (need CAIRN_BIN: the directory holding clusterd, clusterctl, cairn-mount,
# and HOSTS: the number of hosts) ----

# all_endpoints [SKIP]: every host's client address except host SKIP, comma-separated.
all_endpoints() {
  local n list=""
  for ((n = 1; n <= HOSTS; n++)); do
    ((n == ${1:-0})) && continue
    list+="${list:+,}$(host_ip "$n"):2379"
  done
  echo "$list"
}

# ctl N ARGS...: clusterctl inside host N (its network), talking to every host's API.
ctl() {
  local n=$1
  shift
  host_exec "$n" "$CAIRN_BIN/clusterctl" --endpoints "$(all_endpoints)" "$@"
}

# write_node_yaml N [ROLE]: DIR/hostN/node.yaml of a static HOSTS-member cluster (ROLE voter|witness).
write_node_yaml() {
  local n=$1 role=${2:-voter} i dir="$CAIRN_STATE_DIR/host$1"
  mkdir -p "$dir"
  {
    printf 'name: host%d\nrole: %s\ndata_dir: %s/data\n' "$n" "$role" "$dir"
    printf 'peer_address: %s:2380\nclient_address: %s:2379\ninitial_cluster:\n' "$(host_ip "$n")" "$(host_ip "$n")"
    for ((i = 1; i <= HOSTS; i++)); do
      printf '  - name: host%d\n    peer_address: %s:2380\n' "$i" "$(host_ip "$i")"
    done
    printf 'log:\n  level: info\n  format: text\n  file: %s/clusterd.log\n' "$dir"
  } >"$dir/node.yaml"
}

# write_cluster_yaml FILE: the hosts section of a cluster.yaml (docs/config.md) for these hosts, for
# `clusterctl apply -f FILE`. Volumes, mounts and containers are made step by step in Parts C and D.
write_cluster_yaml() {
  local i
  {
    echo "# The local cluster's hosts (deploy/local/hosts.sh, write_cluster_yaml)."
    echo "hosts:"
    for ((i = 1; i <= HOSTS; i++)); do
      printf '  - name: host%d\n    address: %s\n    roles: [voter, storage]\n' "$i" "$(host_ip "$i")"
    done
  } >"$1"
}

# True when host N's clusterd runs. A process killed -9 whose parent has not reaped it yet (a zombie)
# counts as gone, or a restart right after a kill would be skipped; so does a pid now used by another program.
clusterd_alive() {
  local pidfile="$CAIRN_STATE_DIR/host$1/clusterd.pid" pid state
  [[ -f $pidfile ]] || return 1
  pid=$(cat "$pidfile")
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == clusterd ]] || return 1  # not a reused pid
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# start_host N: starts host N's clusterd (in its network namespace, detached, log in DIR/hostN) unless
# it already runs; waits up to 30 s for its clusterd.started line. False, with the log, on failure.
start_host() {
  local n=$1 dir="$CAIRN_STATE_DIR/host$1"
  if clusterd_alive "$n"; then
    echo "host$n already runs clusterd (pid $(cat "$dir/clusterd.pid"))"
    return 0
  fi
  "$CAIRN_BIN/clusterctl" config check "$dir/node.yaml" >/dev/null || return 1
  : >"$dir/clusterd.log"
  CAIRN_HOST=host$n CAIRN_IMAGE_ROOT="$CAIRN_STATE_DIR/images" \
    CAIRN_CONTAINER_ROOT="$dir/containers" setsid \
    nsenter --net="/run/netns/$(host_ns "$n")" -- "$CAIRN_BIN/clusterd" --config "$dir/node.yaml" \
    >>"$dir/clusterd.out" 2>&1 </dev/null &
  echo $! >"$dir/clusterd.pid"
  disown $!  # it outlives this script; no job-control notice when it is killed
  if ! wait_for_file_line "$dir/clusterd.log" "clusterd.started" 30; then
    echo "host$n's clusterd did not start; its log:" >&2
    tail -20 "$dir/clusterd.log" "$dir/clusterd.out" >&2
    return 1
  fi
  echo "host$n (netns $(host_ns "$n"), $(host_ip "$n")) runs clusterd pid $(cat "$dir/clusterd.pid"); config and log in $dir"
}

# stop_host N: SIGTERM to host N's clusterd, SIGKILL after 10 s.
stop_host() {
  local pidfile="$CAIRN_STATE_DIR/host$1/clusterd.pid" pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if clusterd_alive "$1"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do clusterd_alive "$1" || break; sleep 0.1; done
    clusterd_alive "$1" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
  return 0
}

# leader_host: the number of the host that says it leads the store, or nothing.
leader_host() {
  local n
  for ((n = 1; n <= HOSTS; n++)); do
    # status exits 1 while any member is down, which is no matter here: row 2 is this endpoint's own.
    if { host_exec "$n" "$CAIRN_BIN/clusterctl" --endpoints "$(host_ip "$n"):2379" --timeout 2s status 2>/dev/null ||
      true; } | awk 'NR == 2 && $3 == "true" { found = 1 } END { exit !found }'; then
      echo "$n"
      return
    fi
  done
}

# unmount_all DIR: lazily unmounts every mount at or below DIR (deepest first); dead FUSE mounts too.
unmount_all() {
  local m
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true; done
}

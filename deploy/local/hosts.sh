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

# api_token_file: the API bearer token file of a cluster made by form_cluster, when it has one.
api_token_file() {
  [[ -f $CAIRN_STATE_DIR/api.token ]] && echo "$CAIRN_STATE_DIR/api.token"
  return 0
}

# clusterctl_in N ENDPOINTS ARGS...: clusterctl inside host N against ENDPOINTS only. Finds the API
# bearer token by itself (CAIRN_API_TOKEN_FILE, when form_cluster turned the token on), so callers
# never pass it; image and container verbs use this cluster's image root.
clusterctl_in() {
  local n=$1 endpoints=$2 token
  shift 2
  token=$(api_token_file)
  host_exec "$n" env ${token:+CAIRN_API_TOKEN_FILE=$token} \
    CAIRN_IMAGE_ROOT="${CAIRN_IMAGE_ROOT:-$CAIRN_STATE_DIR/images}" \
    "$CAIRN_BIN/clusterctl" --endpoints "$endpoints" "$@"
}

# ctl N ARGS...: clusterctl inside host N (its network), talking to every host's API.
ctl() {
  local n=$1
  shift
  clusterctl_in "$n" "$(all_endpoints)" "$@"
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

# write_cluster_yaml FILE: a cluster.yaml (docs/config.md) for these hosts and this state dir, the
# equivalent of config/cluster.yaml (which names the default 3 hosts and /var/lib/cairn-local): every
# host (a witness only votes), volume gv0 (replica 3 over the first three storage hosts), mounted on
# the first two, image base (busybox), containers c1 (gv0 at /data) and c2 (gv0 read-only, plus a
# plain directory of its host) on the first storage host. Fewer than 3 storage hosts: hosts only.
write_cluster_yaml() {
  local i storage=()
  for ((i = 1; i <= HOSTS; i++)); do [[ $(host_role "$i") == witness ]] || storage+=("$i"); done
  {
    echo "# Written by deploy/local/hosts.sh (write_cluster_yaml) for $HOSTS hosts under $CAIRN_STATE_DIR;"
    echo "# the same desired state as config/cluster.yaml. Apply: clusterctl apply -f FILE"
    echo "hosts:"
    for ((i = 1; i <= HOSTS; i++)); do
      if [[ $(host_role "$i") == witness ]]; then
        printf '  - name: host%d\n    address: %s\n    roles: [witness]\n' "$i" "$(host_ip "$i")"
      else
        printf '  - name: host%d\n    address: %s\n    roles: [voter, storage]\n' "$i" "$(host_ip "$i")"
      fi
    done
    if ((${#storage[@]} >= 3)); then
      printf '\nvolumes:\n  - name: gv0\n    type: replicate\n    replica: 3\n    bricks:\n'
      for i in "${storage[@]:0:3}"; do printf '      - host%d:%s/host%d/bricks/gv0\n' "$i" "$CAIRN_STATE_DIR" "$i"; done
      printf '    options:\n      no_quorum: eio\n    state: started\n\nmounts:\n'
      for i in "${storage[@]:0:2}"; do
        printf '  - host: host%d\n    volume: gv0\n    path: %s/host%d/mnt/gv0\n' "$i" "$CAIRN_STATE_DIR" "$i"
      done
      printf '\nimages:\n  - name: base\n    source: busybox\n\ncontainers:\n'
      printf '  - name: c1\n    image: base\n    host: host%d\n    volumes: [gv0:/data]\n    state: running\n' "${storage[0]}"
      printf '  - name: c2\n    image: base\n    host: host%d\n    volumes: [gv0:/data:ro]\n' "${storage[0]}"
      printf '    binds: [%s/host%d/shared:/shared:ro]\n    state: running\n' "$CAIRN_STATE_DIR" "${storage[0]}"
    fi
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
  # CAIRN_VOLUME_ROOT: where the container agent mounts volumes for its containers; per host, since
  # the hosts share one file system.
  CAIRN_HOST=host$n CAIRN_IMAGE_ROOT="$CAIRN_STATE_DIR/images" \
    CAIRN_CONTAINER_ROOT="$dir/containers" CAIRN_VOLUME_ROOT="$dir/volumes" setsid \
    nsenter --net="/run/netns/$(host_ns "$n")" -- "$CAIRN_BIN/clusterd" --config "$dir/node.yaml" \
    >>"$dir/clusterd.out" 2>&1 </dev/null &
  echo $! >"$dir/clusterd.pid"
  disown $!  # it outlives this script; no job-control notice when it is killed
  if ! wait_for_file_line "$dir/clusterd.log" "clusterd.started" 30; then
    echo "host$n's clusterd did not start; its log:" >&2
    tail -n 20 "$dir/clusterd.log" "$dir/clusterd.out" >&2
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
    if { clusterctl_in "$n" "$(host_ip "$n"):2379" --timeout 2s status 2>/dev/null ||
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

# ---- a cluster formed securely: one host founds it, the others join with a token ----

# host_role N: host N's role, the Nth word of CAIRN_HOST_ROLES (e.g. "voter voter witness"), default
# voter. Host 1 founds the cluster and is always a voter (a witness cannot form a cluster alone).
host_role() {
  local roles
  read -r -a roles <<<"${CAIRN_HOST_ROLES:-}"
  if (($1 == 1)); then echo voter; else echo "${roles[$(($1 - 1))]:-voter}"; fi
}

# write_secure_node_yaml N ROLE [JOIN_ADDRESS JOIN_TOKEN]: DIR/hostN/node.yaml with peer
# authentication required (auth.peer: required) and no initial_cluster. Without JOIN_*, the host
# founds a one-member cluster and creates the cluster key at its first start; with them it joins
# through the member at JOIN_ADDRESS (host:port of its API) with the token, and receives the key.
# With DIR/api.token, the HTTP API requires it as bearer token. The file is 0600 (it holds the token).
write_secure_node_yaml() {
  local n=$1 role=$2 address=${3:-} token=${4:-} dir="$CAIRN_STATE_DIR/host$1"
  mkdir -p "$dir"
  (
    umask 077
    {
      printf 'name: host%d\nrole: %s\ndata_dir: %s/data\n' "$n" "$role" "$dir"
      printf 'peer_address: %s:2380\nclient_address: %s:2379\n' "$(host_ip "$n")" "$(host_ip "$n")"
      [[ -n $address ]] && printf 'join:\n  address: %s\n  token: %s\n' "$address" "$token"
      printf 'auth:\n  peer: required\n'
      [[ -n $(api_token_file) ]] && printf '  api_token_file: %s\n' "$(api_token_file)"
      printf 'log:\n  level: info\n  format: text\n  file: %s/clusterd.log\n' "$dir"
    } >"$dir/node.yaml"
  )
}

# make_api_token: DIR/api.token (0600, 32 random bytes as hex) unless it exists, or CAIRN_API_AUTH=0.
make_api_token() {
  [[ ${CAIRN_API_AUTH:-1} == 1 && ! -f $CAIRN_STATE_DIR/api.token ]] || return 0
  (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$CAIRN_STATE_DIR/api.token" && echo >>"$CAIRN_STATE_DIR/api.token")
}

# create_join_token N ROLE: a new join token (valid 1 h) for ROLE made through host N's API, printed
# and kept in DIR/join.token (voter) or DIR/join-witness.token, mode 0600. False when N refuses.
create_join_token() {
  local n=$1 role=$2 file="$CAIRN_STATE_DIR/join.token" token
  [[ $role == voter ]] || file="$CAIRN_STATE_DIR/join-$role.token"
  token=$(clusterctl_in "$n" "$(host_ip "$n"):2379" token create --ttl 1h --role "$role" 2>"$CAIRN_STATE_DIR/token.err") &&
    [[ $token == cairn1.* ]] || { cat "$CAIRN_STATE_DIR/token.err" >&2; return 1; }
  (umask 077 && echo "$token" >"$file")
  echo "$token"
}

# is_voter N [VIA]: true when the store's member list (asked through host VIA, default every host)
# has host N as a started member that is not a learner.
is_voter() {
  local out
  if [[ -n ${2:-} ]]; then
    out=$(clusterctl_in "$2" "$(host_ip "$2"):2379" --timeout 3s member list 2>/dev/null) || return 1
  else
    out=$(ctl 1 --timeout 3s member list 2>/dev/null) || return 1
  fi
  awk -v h="host$1" '$2 == "started" && $3 == h && $NF == "false" { found = 1 } END { exit !found }' <<<"$out"
}

# live_host [SKIP]: the number of the first host (other than SKIP) whose clusterd runs, or false.
live_host() {
  local n
  for ((n = 1; n <= HOSTS; n++)); do
    ((n == ${1:-0})) && continue
    clusterd_alive "$n" && { echo "$n"; return 0; }
  done
  return 1
}

# start_joiner N ROLE VIA [TOKEN]: writes host N's join node.yaml (VIA's address; TOKEN, else a fresh
# token for ROLE made through VIA) and starts it; waits until it is a voter (a witness votes too) in
# VIA's member list.
start_joiner() {
  local n=$1 role=$2 via=$3 token=${4:-}
  [[ -n $token ]] || token=$(create_join_token "$via" "$role") ||
    { echo "host$via did not make a join token" >&2; return 1; }
  write_secure_node_yaml "$n" "$role" "$(host_ip "$via"):2379" "$token"
  start_host "$n" >/dev/null || return 1
  wait_until 60 "host$n to be a voting member" is_voter "$n" "$via" || return 1
  echo "host$n (netns $(host_ns "$n"), $(host_ip "$n")): joined via host$via with token ${token:7:16} as $role, clusterd pid $(cat "$CAIRN_STATE_DIR/host$n/clusterd.pid")"
}

# form_cluster: creates the switch and hosts 1..HOSTS and forms the cluster securely. host1 founds it
# alone (write_secure_node_yaml: no initial_cluster, auth.peer required, so it creates the cluster
# key) and must serve within 30 s; then each other host joins with a join token made on host1
# (kept in DIR/join.token, 0600) as host_role says, and is promoted. Returns once every host is a
# voting member and there is a leader; prints one line per host. With CAIRN_API_AUTH=1 (default) the
# API also requires the bearer token in DIR/api.token (ctl and clusterctl_in pass it). False, naming
# the host, when a step does not complete in time.
form_cluster() {
  local n role
  mkdir -p "$CAIRN_STATE_DIR"
  make_api_token
  create_switch
  for ((n = 1; n <= HOSTS; n++)); do create_host "$n"; done
  write_secure_node_yaml 1 voter
  start_host 1 >/dev/null || return 1
  wait_until 30 "host1 to serve" is_voter 1 1 || return 1
  echo "host1 (netns $(host_ns 1), $(host_ip 1)): founded the cluster, key $CAIRN_STATE_DIR/host1/data/cluster.key, clusterd pid $(cat "$CAIRN_STATE_DIR/host1/clusterd.pid")"
  local -A tokens  # one token per role, shared by the hosts joining with it
  for ((n = 2; n <= HOSTS; n++)); do
    role=$(host_role "$n")
    if [[ -z ${tokens[$role]:-} ]]; then
      tokens[$role]=$(create_join_token 1 "$role") || { echo "host1 did not make a join token" >&2; return 1; }
      echo "form_cluster: \$ clusterctl token create --ttl 1h --role $role   (on host1: token ${tokens[$role]:7:16}, kept in $CAIRN_STATE_DIR/join$([[ $role == voter ]] || echo "-$role").token)"
    fi
    start_joiner "$n" "$role" 1 "${tokens[$role]}" || return 1
  done
  wait_until 30 "a store leader" eval '[[ -n $(leader_host) ]]' || return 1
  echo "form_cluster: $HOSTS hosts, every one a voting member, peer authentication on, leader host$(leader_host)"
}

# rejoin_host N: brings back host N whose store membership is gone (after `clusterd recover` on
# another host): stops its clusterd, moves its data dir aside to data.before-rejoin-TIME (never
# deleted; bricks and mounts are outside it and stay), makes a fresh token on a live host and starts
# host N with a join node.yaml; returns once it is a voting member. Refused (false, with the reason)
# while a member at host N's peer address is still listed: a member removed with `member remove`
# cannot come back at the same peer address today (member ids derive from the peer URL, so the
# rejoined node replays its own removal and stops: coord.removed), so this never removes one.
rejoin_host() {
  local n=$1 dir="$CAIRN_STATE_DIR/host$1" via members listed aside
  via=$(live_host "$n") || { echo "rejoin_host $n: no live host to join through" >&2; return 1; }
  members=$(clusterctl_in "$via" "$(host_ip "$via"):2379" --timeout 5s member list 2>&1) ||
    { echo "rejoin_host $n: host$via cannot list the members: $members" >&2; return 1; }
  listed=$(awk -v url="http://$(host_ip "$n"):2380" 'NR > 1 && index($0, url) { print $1 }' <<<"$members")
  if [[ -n $listed ]]; then
    echo "rejoin_host $n: host$n is still member $listed; rejoin_host is for a host whose membership is gone (clusterd recover)" >&2
    return 1
  fi
  stop_host "$n"
  if [[ -d $dir/data ]]; then
    aside="$dir/data.before-rejoin-$(date +%Y%m%d-%H%M%S)"
    mv "$dir/data" "$aside"
    echo "rejoin_host $n: its old data dir moved to $aside"
  fi
  start_joiner "$n" "$(host_role "$n")" "$via"
}

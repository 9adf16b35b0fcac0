#!/usr/bin/env bash
# End-to-end kill and cut test (issue 8 item 7): three hosts as network namespaces on their own switch
# (names and subnet distinct from deploy/local's, so a running local cluster is not touched), each with
# clusterd, formed with peer authentication on (host1 makes the cluster key, the others join with a
# token: deploy/local/hosts.sh form_cluster when it exists, the same steps here otherwise).
#
# The desired state is one cluster.yaml given to `clusterctl apply -f`: the hosts, a replica-3 volume,
# its mounts on host1 and host2, a busybox image and container c1 on host1 with the volume at /data,
# state running. Nothing is mounted or started by hand: the mount agents and host1's container agent
# bring those up, and after every fault the only repair is starting the host's clusterd again.
#
# Load during every scenario: cairn-e2e-load kv-run (3 store clients in the switch namespace, every op
# logged) and files-run (numbered files created and fsynced through a mount on a host the fault leaves
# alone). Scenarios:
#   a  kill -9 of every process of host1 (the container's host, a mount), then its clusterd restarted
#   b  host2 cut off at the switch (link down) for 10 s
#   c  one-way cut of the store leader's host for 10 s: nft drops what it receives from the other
#      hosts, what it sends still leaves (see one_way_cut for why the leader's host)
#   d  kill -9 of every process of the store leader's host, then its clusterd restarted
# After each: the longest stall of both loads, no acknowledged key lost and the store history
# linearizable (kv-check, libs/lincheck), every acknowledged file intact through the mount and on every
# brick, the three bricks identical after heal, and convergence to the YAML: `clusterctl diff -f`
# plans nothing, 3 clusterd, a leader, the volume in sync, both mounts answer, c1 runs and sees the
# volume.
#   e  quorum loss: host2 and host3 killed, a write refused with a clear error, `clusterd recover` on
#      host1, host2 and host3 joined again with fresh data dirs and tokens (rejoin_host); then 3
#      voters, every acknowledged key, their bricks healed and identical, convergence as above.
# Also: a process without the cluster key is refused by host1's Raft port and by a brick.
#
# Needs root, /dev/fuse, nft and CAIRN_BIN (clusterd, clusterctl, cairn-mount, unionmount,
# cairn-e2e-load). Exit 77 (skip) without root or FUSE. Everything it made is removed by a trap.
# E2E_NO_CONTAINER=1 leaves the image and container out (a machine where LXC cannot run).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CAIRN_BIN=${CAIRN_BIN:?CAIRN_BIN must name the directory with clusterd, clusterctl, cairn-mount}
if [[ $(id -u) != 0 || ! -c /dev/fuse ]]; then
  echo "SKIP: needs root and /dev/fuse"
  exit 77
fi
export CAIRN_NET_PREFIX=${E2E_NET_PREFIX:-10.79.0} CAIRN_SWITCH_NS=cre2e-sw CAIRN_HOST_PREFIX=cre2e-h
export CAIRN_STATE_DIR
CAIRN_STATE_DIR=$(mktemp -d /tmp/cairn-e2e-XXXXXX)
HOSTS=3
source "$ROOT/deploy/local/hosts.sh"
# Image layers: built by clusterctl apply, read by the container agent (start_host gives it this).
export CAIRN_IMAGE_ROOT="$CAIRN_STATE_DIR/images"
LOAD="$CAIRN_BIN/cairn-e2e-load"
VOL=e2evol
YAML="$CAIRN_STATE_DIR/cluster.yaml"
CONTAINER_HOST=1
WITH_CONTAINER=1
[[ ${E2E_NO_CONTAINER:-0} == 1 ]] && WITH_CONTAINER=0
MAX_STALL_MS=${E2E_MAX_STALL_MS:-30000}
STALLS=()
T0=$SECONDS

say() { printf '[e2e %4ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() {
  say "FAIL: $*"
  exit 1
}

# container_inits N: the init process of each container of host N's container agent, found as the
# children of their LXC monitors ("[lxc monitor] LXCPATH NAME"). A container's init runs in its own
# network and pid namespaces, so kill_host does not see it; killing it ends its whole pid namespace.
container_inits() {
  local path="$CAIRN_STATE_DIR/host$1/data/containers" pid cmd
  for pid in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$pid/cmdline") || continue
    [[ $cmd == "[lxc monitor] $path "* ]] && cat "$pid"/task/*/children 2>/dev/null
  done | tr ' ' '\n' | grep -v '^$' || true
  return 0
}

cleanup() {
  local code=$? n inits
  set +e  # every step below runs, whatever fails
  touch "$CAIRN_STATE_DIR/stop" 2>/dev/null
  [[ -n ${KV_PID:-} ]] && kill -9 "$KV_PID" 2>/dev/null
  [[ -n ${FILES_PID:-} ]] && kill -9 "$FILES_PID" 2>/dev/null
  if ((code != 0)); then
    say "failed; the last lines of each host's log:"
    for n in 1 2 3; do tail -n 15 "$CAIRN_STATE_DIR/host$n/clusterd.log" 2>/dev/null | sed "s/^/  host$n: /"; done
    if [[ -n ${E2E_LOG_DIR:-} ]]; then  # keep every log of a failed run
      mkdir -p "$E2E_LOG_DIR"
      (cd "$CAIRN_STATE_DIR" && find . \( -name '*.log' -o -name '*.out' -o -name '*.history' -o -name '*.yaml' \) \
        -not -path '*/bricks/*' -not -path '*/mnt/*' -exec cp --parents {} "$E2E_LOG_DIR" \;) 2>/dev/null
      say "logs kept in $E2E_LOG_DIR"
    fi
  fi
  for n in 1 2 3; do
    stop_host "$n" >/dev/null 2>&1  # first, so its agents restart nothing
    inits=$(container_inits "$n")
    [[ -n $inits ]] && kill -9 $inits 2>/dev/null
  done
  bash "$ROOT/deploy/local/down.sh" >/dev/null 2>&1
  ns_exists "$CAIRN_SWITCH_NS" && echo "cleanup: the switch namespace is still there" >&2
  awk -v d="$CAIRN_STATE_DIR" 'index($2, d "/") == 1 {f=1} END {exit !f}' /proc/self/mounts &&
    echo "cleanup: mounts below $CAIRN_STATE_DIR are left" >&2
  unmount_all "$CAIRN_STATE_DIR"
  rm -rf "$CAIRN_STATE_DIR"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

brick_dir() { echo "$CAIRN_STATE_DIR/host$1/bricks/$VOL"; }
mount_dir() { echo "$CAIRN_STATE_DIR/host$1/mnt/$VOL"; }

# ctl_any ARGS...: clusterctl from the first host whose clusterd runs.
ctl_any() {
  local n
  for n in 1 2 3; do
    if clusterd_alive "$n"; then
      ctl "$n" --timeout 5s "$@"
      return
    fi
  done
  return 1
}

# ---- the desired state ----

# write_desired_yaml FILE: the cluster.yaml of this test (docs/config.md, "cluster.yaml").
write_desired_yaml() {
  local n
  {
    echo "# The kill/cut e2e test's desired state (tests/e2e/kill_cut/kill_cut.sh)."
    echo "hosts:"
    for n in 1 2 3; do printf '  - name: host%d\n    address: %s\n    roles: [voter, storage]\n' "$n" "$(host_ip "$n")"; done
    printf 'volumes:\n  - name: %s\n    type: replicate\n    replica: 3\n    bricks:\n' "$VOL"
    for n in 1 2 3; do printf '      - host%d:%s\n' "$n" "$(brick_dir "$n")"; done
    printf '    state: started\nmounts:\n'
    for n in 1 2; do printf '  - host: host%d\n    volume: %s\n    path: %s\n' "$n" "$VOL" "$(mount_dir "$n")"; done
    if ((WITH_CONTAINER)); then
      printf 'images:\n  - name: busybox\n    source: busybox\n'
      printf 'containers:\n  - name: c1\n    image: busybox\n    host: host%d\n' "$CONTAINER_HOST"
      printf '    volumes: [%s:/data]\n    state: running\n' "$VOL"
    fi
  } >"$1"
}

# volume_in_sync: every brick in sync and a primary serving.
volume_in_sync() {
  local out
  out=$(ctl_any volume heal "$VOL" status 2>/dev/null) || return 1
  ! grep -Eq 'out-of-sync|healing|failed' <<<"$out" && (($(grep -c 'in-sync' <<<"$out") == 3)) &&
    [[ -n $(volume_primary_host) ]]
}

mount_alive() { timeout 10 stat "$(mount_dir "$1")/." >/dev/null 2>&1 && mountpoint -q "$(mount_dir "$1")"; }
mounts_alive() { mount_alive 1 && mount_alive 2; }

# container_ok: c1 runs and reads the marker file of the volume at /data (the agent's volume mount).
container_ok() {
  CAIRN_HOST=host$CONTAINER_HOST ctl "$CONTAINER_HOST" --timeout 10s container exec c1 -- cat /data/marker 2>/dev/null |
    grep -q e2e-marker
}

container_state() {
  ctl_any container list 2>/dev/null | awk '$1 == "c1" { print $3; exit }'
}

# container_back WHAT: waits for c1 to run again after WHAT: the container agent restarts it by itself.
container_back() {
  ((WITH_CONTAINER)) || return 0
  wait_until 90 "container c1 to run again" container_ok && return 0
  local state
  state=$(container_state)
  ctl_any describe container c1 2>&1 | sed 's/^/  /' || true
  fail "$1: container c1 does not run (state ${state:-unknown})"
}

# converged WHAT: the cluster is back at the YAML's desired state; fails naming what is not.
converged() {
  local n out
  for n in 1 2 3; do clusterd_alive "$n" || fail "$1: host$n's clusterd is not running"; done
  wait_until 30 "a store leader" eval '[[ -n $(leader_host) ]]' || fail "$1: no store leader"
  out=$(ctl_any diff -f "$YAML" 2>&1) || fail "$1: clusterctl diff failed: $out"
  [[ $out == *"No changes."* ]] || fail "$1: clusterctl diff plans changes: $out"
  wait_until 90 "both mounts to answer" mounts_alive || fail "$1: the mounts on host1 and host2 do not answer"
  container_back "$1"
  wait_until 30 "clusterctl status to report every member up" eval 'ctl_any status' ||
    fail "$1: clusterctl status reports a member down"
  say "$1: converged: diff plans no changes; 3 clusterd, leader host$(leader_host), volume in sync, mounts on host1 and host2 answer$( ((WITH_CONTAINER)) && echo ", c1 runs with the volume at /data")"
}

# brick_digest DIR: a checksum over every path, type, mode and file content of a brick (.cairn left out).
brick_digest() {
  (cd "$1" && find . -path ./.cairn -prune -o -mindepth 1 -printf '%y %m %p\n' | sort |
    while read -r type mode path; do
      if [[ $type == f ]]; then echo "$type $mode $path $(sha256sum <"$path" | cut -c1-16)"; else echo "$type $mode $path"; fi
    done) | sha256sum | cut -c1-16
}

volume_primary_host() {
  ctl_any volume status "$VOL" 2>/dev/null |
    awk '$4 == "primary" { split($2, a, ":"); sub("host", "", a[1]); print a[1]; exit }'
}

voters() { ctl_any member list 2>/dev/null | awk 'NR > 1 && $2 == "started" && $NF == "false"' | wc -l; }

# ---- faults ----

# e2e_kill_host N: kill -9 every process of host N, its containers' too (as if it lost power).
e2e_kill_host() {
  local inits
  inits=$(container_inits "$1")
  kill_host "$1"
  [[ -n $inits ]] && kill -9 $inits 2>/dev/null
  wait_until 10 "host$1's clusterd to die" eval "! clusterd_alive $1"
}

# one_way_cut N / one_way_heal N: host N drops every packet it receives from the other hosts (nft,
# input hook, in its namespace); what it sends still leaves. The store clients (switch namespace)
# still reach it. Done to the store leader's host: a leader that can still send keeps its followers'
# election timers quiet until its own CheckQuorum notices it hears no one, and it still answers
# clients that reach it, so the test sees whether an isolated leader refuses (or serves stale
# data) rather than a clean loss; when it is also the volume primary, its primary lease must run out
# while it can still send to the backups.
one_way_cut() {
  local n=$1 i addresses=""
  for i in 1 2 3; do ((i == n)) || addresses+="${addresses:+, }$(host_ip "$i")"; done
  host_exec "$n" nft -f - <<EOF
table inet e2ecut {
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr { $addresses } drop
  }
}
EOF
}
one_way_heal() { host_exec "$1" nft delete table inet e2ecut; }

# restore_host N: host N comes back, which means its clusterd starts. Nothing else is done for it.
restore_host() { start_host "$1" >/dev/null || fail "host$1's clusterd did not start"; }

# ---- the scenario frame ----

start_kv_load() {
  rm -f "$CAIRN_STATE_DIR/stop"
  switch_exec "$LOAD" kv-run "$(all_endpoints)" "$CAIRN_STATE_DIR/kv.history" "$CAIRN_STATE_DIR/stop" \
    >>"$CAIRN_STATE_DIR/kv-run.out" 2>&1 &
  KV_PID=$!
}

# start_load WRITER_HOST NAME: the kv load and a file writer into the mount of WRITER_HOST.
start_load() {
  start_kv_load
  FILES_DIR="$(mount_dir "$1")/$2"
  wait_until 60 "$FILES_DIR to be made" mkdir -p "$FILES_DIR" || fail "$2: cannot make $FILES_DIR"
  "$LOAD" files-run "$FILES_DIR" "$CAIRN_STATE_DIR/files-$2.log" "$CAIRN_STATE_DIR/stop" \
    >>"$CAIRN_STATE_DIR/files-run.out" 2>&1 &
  FILES_PID=$!
  WINDOW_START=$(date +%s%N)
  say "$2: load started (store clients, files into host$1's mount); leader host$(leader_host), volume primary host$(volume_primary_host)"
  sleep 3  # some acknowledged writes before the fault
}

stop_load() {
  WINDOW_END=$(date +%s%N)
  touch "$CAIRN_STATE_DIR/stop"
  local pid
  for pid in $KV_PID $FILES_PID; do
    wait_until 60 "load process $pid to stop" eval "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
  KV_PID="" FILES_PID=""
}

# check_data NAME WRITER_HOST [MAX_STALL_MS]: once the volume is in sync: the stalls, no acknowledged
# key or file lost, the history linearizable, every brick holding every file and the bricks identical.
check_data() {
  local name=$1 writer=$2 max=${3:-$MAX_STALL_MS} n digest first="" kv_stall files_stall
  wait_until 180 "the volume to be in sync again" volume_in_sync || {
    ctl_any volume heal "$VOL" status || true
    fail "$name: the volume did not get back in sync"
  }
  stop_load
  kv_stall=$("$LOAD" stall "$CAIRN_STATE_DIR/kv.history" "$WINDOW_START" "$WINDOW_END")
  files_stall=$("$LOAD" stall "$CAIRN_STATE_DIR/files-$name.log" "$WINDOW_START" "$WINDOW_END")
  say "$name: longest stall: store ops ${kv_stall} ms, file writes ${files_stall} ms"
  STALLS+=("$name: store ${kv_stall} ms, files ${files_stall} ms")
  # Writes must go on: a stall as long as a whole fault means they did not (generous for a loaded CI).
  ((kv_stall < max && files_stall < max)) || fail "$name: writes stalled longer than $max ms"
  switch_exec "$LOAD" kv-check "$(all_endpoints)" "$CAIRN_STATE_DIR/kv.history" ||
    fail "$name: store check failed"
  "$LOAD" files-check "$(mount_dir "$writer")/$name" "$CAIRN_STATE_DIR/files-$name.log" ||
    fail "$name: an acknowledged file is missing through the mount"
  grep -q '^[0-9]' "$CAIRN_STATE_DIR/files-$name.log" || fail "$name: no file write was acknowledged"
  for n in 1 2 3; do
    digest=$(brick_digest "$(brick_dir "$n")")
    [[ -z $first ]] && first=$digest
    if "$LOAD" files-check "$(brick_dir "$n")/$name" "$CAIRN_STATE_DIR/files-$name.log" >/dev/null &&
      [[ $digest == "$first" ]]; then
      continue
    fi
    fail "$name: host$n's brick lacks an acknowledged file or differs from host1's ($digest vs $first)"
  done
  say "$name: every acknowledged file on the bricks; bricks identical ($first)"
}

check_scenario() {
  check_data "$1" "$2"
  converged "$1"
}

# ---- setup ----
say "state in $CAIRN_STATE_DIR; hosts ${CAIRN_HOST_PREFIX}1-3 on ${CAIRN_NET_PREFIX}.0/24"
say "forming the cluster (deploy/local/hosts.sh form_cluster): host1 founds it with auth.peer: required, host2 and host3 join with a token"
form_cluster | sed 's/^/  /'
((PIPESTATUS[0] == 0)) || fail "form_cluster"
# The API requires form_cluster's bearer token: the load and check programs read it from here.
token_file=$(api_token_file)
[[ -n $token_file ]] && export CAIRN_API_TOKEN_FILE=$token_file
wait_until 60 "3 voters and a leader" eval '(($(voters) == 3)) && [[ -n $(leader_host) ]]' ||
  fail "the cluster did not form (voters: $(voters))"
say "store formed: 3 voters, leader host$(leader_host), peer auth on"

for n in 1 2 3; do mkdir -p "$(brick_dir "$n")"; done  # the disks each host brings
write_desired_yaml "$YAML"
# apply places c1 only on a host whose container agent is up (its heartbeat key).
if ((WITH_CONTAINER)) && ! wait_until 60 "host$CONTAINER_HOST's container agent heartbeat" \
  eval '[[ -n $(ctl 1 kv get --prefix /cairn/container-agents/host$CONTAINER_HOST 2>/dev/null) ]]'; then
  grep -h 'containers\.' "$CAIRN_STATE_DIR/host$CONTAINER_HOST/clusterd.log" | tail -n 5 | sed 's/^/  /' || true
  fail "host$CONTAINER_HOST's container agent wrote no heartbeat (/cairn/container-agents/host$CONTAINER_HOST) within 60 s"
fi
say "\$ clusterctl apply -f $YAML --yes"
out=$(ctl 1 --timeout 30s apply -f "$YAML" --yes 2>&1) || fail "apply failed: $out"
sed 's/^/  /' <<<"$out"
wait_until 120 "the volume to be in sync" volume_in_sync || fail "the volume did not start"
wait_until 90 "the mount agents to mount host1 and host2" mounts_alive || {
  ctl_any describe mount "host1:$(mount_dir 1)" || true
  fail "the mount agents did not mount the volume"
}
# A file the container must see at /data (written through host1's mount; retried while the volume
# settles its first primary).
wait_until 60 "the marker file to be written" sh -c "echo e2e-marker >'$(mount_dir 1)/marker'" ||
  fail "could not write through host1's mount"
if ((WITH_CONTAINER)); then
  wait_until 120 "the container agent to run c1" container_ok || {
    ctl_any describe container c1 || true
    fail "host1's container agent did not run c1 with the volume at /data"
  }
fi
out=$(ctl_any diff -f "$YAML" 2>&1) || fail "diff failed: $out"
[[ $out == *"No changes."* ]] || fail "diff after apply plans changes: $out"
say "converged to the YAML: volume $VOL in sync, mounted on host1 and host2 by their mount agents$( ((WITH_CONTAINER)) && echo ", c1 runs on host1 with the volume at /data")"

# A process without the cluster key is refused by the Raft port and by a brick; with the key it gets
# through (so the refusal is the key's doing, not a dead port).
key="$CAIRN_STATE_DIR/host1/data/cluster.key"
[[ -f $key ]] || fail "host1 has no cluster key: peer authentication is off"
out=$(ctl 1 kv get --prefix "/cairn/volumes/$VOL/bricks/" 2>&1) || fail "reading the brick addresses: $out"
brick=$(awk -v ip="$(host_ip 1)" 'index($0, ip ":") == 1 && !f { print; f = 1 }' <<<"$out")
[[ -n $brick ]] || fail "no published brick address of host1: $out"
for address in "$(host_ip 1):2380" "$brick"; do
  out=$(switch_exec "$LOAD" peer-probe "$address" 2>&1) || fail "a keyless peer was not refused by $address: $out"
  say "  $out"
  out=$(switch_exec "$LOAD" peer-probe "$address" "$key" 2>&1) || fail "a peer with the key did not get through to $address: $out"
  say "  $out"
done
grep -q net.unauthenticated "$CAIRN_STATE_DIR/host1/clusterd.log" || fail "host1 did not log net.unauthenticated"
if [[ -n $token_file ]]; then
  if out=$(host_exec 1 env -u CAIRN_API_TOKEN_FILE "$CAIRN_BIN/clusterctl" --endpoints "$(host_ip 1):2379" --timeout 5s kv get /e2e/k0 2>&1); then
    fail "the API answered a request without the bearer token: $out"
  fi
  grep -qi 'bearer token' <<<"$out" || fail "the API's refusal does not name the bearer token: $out"
fi
say "keyless peers refused by host1's Raft port and brick $brick (net.unauthenticated logged); the API refuses a request without the bearer token"

# ---- (a) kill -9 every process of host1, the container's host ----
start_load 2 a
say "a: kill -9 of every process of host1 (clusterd, its mount, c1's union, volume mount and LXC monitor, c1's processes)"
e2e_kill_host 1
sleep 8  # run a while without it
say "a: host1 comes back (its clusterd starts; the agents bring back its mount and c1)"
restore_host 1
check_scenario a 2

# ---- (b) cut host2 off at the switch, then restore it ----
start_load 1 b
say "b: host2 cut off at the switch (its processes keep running)"
cut_host 2
sleep 10
heal_host 2
say "b: host2 back on the network"
check_scenario b 1

# ---- (c) one-way cut of the store leader's host ----
cut=$(leader_host)
[[ -n $cut ]] || fail "c: no leader"
writer=1
((cut == 1)) && writer=2
start_load "$writer" c
say "c: host$cut (the store leader$( [[ $(volume_primary_host) == "$cut" ]] && echo " and the volume primary")) drops what it receives from the other hosts; files written through host$writer's mount"
one_way_cut "$cut" || fail "c: nft could not load the drop rule in host$cut's namespace"
sleep 10
one_way_heal "$cut"
say "c: host$cut's drop rule removed; leader now host$(leader_host)"
check_scenario c "$writer"

# ---- (d) kill the store leader's host, then restart it ----
leader=$(leader_host)
[[ -n $leader ]] || fail "d: no leader"
writer=1
((leader == 1)) && writer=2
start_load "$writer" d
say "d: kill -9 of every process of host$leader (the store leader); files written through host$writer's mount"
e2e_kill_host "$leader"
wait_until 30 "a new leader" eval '[[ -n $(leader_host) ]]' || fail "d: no new leader"
say "d: new leader host$(leader_host)"
sleep 8
say "d: host$leader comes back"
restore_host "$leader"
check_scenario d "$writer"

# ---- (e) quorum loss: kill 2 of 3, refuse, recover host1, re-add host2 and host3 ----
start_load 1 e
say "e: quorum loss: kill -9 of every process of host2 and host3 (store clients and host1's file writer go on)"
for n in 2 3; do e2e_kill_host "$n"; done
sleep 5
if out=$(clusterctl_in 1 "$(host_ip 1):2379" --timeout 5s kv put /e2e/after-loss x 2>&1); then
  fail "e: a write succeeded on host1 alone: $out"
fi
say "e: a write is refused: $out"
grep -Eqi 'leader|quorum|deadline|timed out|unavailable' <<<"$out" || fail "e: the refusal does not say why: $out"
stop_host 1
say "e: \$ clusterd recover --config host1/node.yaml"
out=$("$CAIRN_BIN/clusterd" recover --config "$CAIRN_STATE_DIR/host1/node.yaml" 2>&1) || fail "clusterd recover: $out"
sed 's/^/  /' <<<"$out"
restore_host 1
wait_until 30 "host1 to lead alone" eval '[[ $(leader_host) == 1 ]]' || fail "e: recovered host1 does not lead"
clusterctl_in 1 "$(host_ip 1):2379" kv put /e2e/after-recover ok >/dev/null ||
  fail "e: a write after recover failed"
say "e: host1 leads a one-member store; host2 and host3 join again (empty data dirs, fresh tokens)"
for n in 2 3; do
  out=$(rejoin_host "$n" 2>&1) || fail "e: rejoin_host $n: $out"
  sed 's/^/  /' <<<"$out"
done
wait_until 60 "3 voters and a leader" eval '(($(voters) == 3)) && [[ -n $(leader_host) ]]' ||
  fail "e: not 3 voters after the hosts joined again (voters: $(voters))"
# The store was down for a while here: no stall limit, but every acknowledged write must be there.
check_data e 1 999999999
converged e
say "e: 3 voters, leader host$(leader_host), every acknowledged key, every acknowledged file through the mount, bricks of the re-added hosts healed and identical"

say "longest stalls per scenario:"
for line in "${STALLS[@]}"; do say "  $line"; done
say "PASS ($((SECONDS - T0)) s)"

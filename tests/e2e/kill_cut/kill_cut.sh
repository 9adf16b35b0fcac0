#!/usr/bin/env bash
# End-to-end kill and cut test (issue 8 item 7): three hosts as network namespaces on their own switch
# (names and subnet distinct from deploy/local's, so a running local cluster is not touched), each with
# clusterd; a replica-3 volume mounted on host1 and host2; a busybox container when LXC works.
# Load during every scenario: cairn-e2e-load kv-run (3 store clients in the switch namespace, every op
# logged) and files-run (numbered files created and fsynced through a mount on a host that survives).
#
# Scenarios: (a) kill -9 every process of host3, then restart it; (b) cut host2 off at the switch for
# 8 s, then restore it; (c) kill -9 every process of the store leader's host; (d) restart that host.
# After each: the longest stall of both loads, no acknowledged key lost and the store history
# linearizable (kv-check, libs/lincheck), every acknowledged file intact through the mount and on every
# brick, the three bricks identical after heal, and the desired state back (3 clusterd, a leader, the
# volume in sync, both mounts answering, the container running).
# Last, quorum loss: two hosts killed, a write refused with a clear error, `clusterd recover` on the
# survivor, which then serves every acknowledged key.
#
# Needs root, /dev/fuse and CAIRN_BIN (clusterd, clusterctl, cairn-mount, unionmount, cairn-e2e-load).
# Exit 77 (skip) without root or FUSE. Everything it made is removed by a trap (deploy/local/down.sh).
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
LOAD="$CAIRN_BIN/cairn-e2e-load"
VOL=e2evol
MAX_STALL_MS=${E2E_MAX_STALL_MS:-30000}
T0=$SECONDS

say() { printf '[e2e %4ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() {
  say "FAIL: $*"
  exit 1
}

cleanup() {
  local code=$?
  touch "$CAIRN_STATE_DIR/stop" 2>/dev/null
  [[ -n ${KV_PID:-} ]] && kill -9 "$KV_PID" 2>/dev/null
  [[ -n ${FILES_PID:-} ]] && kill -9 "$FILES_PID" 2>/dev/null
  if ((code != 0)); then
    say "failed; the last lines of each host's log:"
    for n in 1 2 3; do tail -n 15 "$CAIRN_STATE_DIR/host$n/clusterd.log" 2>/dev/null | sed "s/^/  host$n: /"; done
  fi
  bash "$ROOT/deploy/local/down.sh" >/dev/null 2>&1
  ns_exists "$CAIRN_SWITCH_NS" && echo "cleanup: the switch namespace is still there" >&2
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

volume_in_sync() {
  local out
  out=$(ctl_any volume heal "$VOL" status 2>/dev/null) || return 1
  ! grep -Eq 'out-of-sync|healing|failed' <<<"$out" && (($(grep -c 'in-sync' <<<"$out") == 3))
}

mount_alive() { timeout 10 stat "$(mount_dir "$1")/." >/dev/null 2>&1 && mountpoint -q "$(mount_dir "$1")"; }

# mount_on N: (re)mounts the volume on host N; a dead mount left by a killed cairn-mount goes first.
mount_on() {
  mount_alive "$1" && return 0
  unmount_all "$(mount_dir "$1")"
  mkdir -p "$(mount_dir "$1")"
  ctl "$1" mount "$VOL" "$(mount_dir "$1")" --wait 60s
}

# brick_digest DIR: a checksum over every path, type, mode and file content of a brick (.cairn left out).
brick_digest() {
  (cd "$1" && find . -path ./.cairn -prune -o -mindepth 1 -printf '%y %m %p\n' | sort |
    while read -r type mode path; do
      if [[ $type == f ]]; then echo "$type $mode $path $(sha256sum <"$path" | cut -c1-16)"; else echo "$type $mode $path"; fi
    done) | sha256sum | cut -c1-16
}

container_ok() {
  ((LXC_OK)) || return 0
  ctl "$CONTAINER_HOST" container exec c1 -- cat /data/marker 2>/dev/null | grep -q e2e-marker
}

# ---- the scenario frame ----

# start_load WRITER_HOST NAME: the kv load and a file writer into the mount of WRITER_HOST.
start_load() {
  rm -f "$CAIRN_STATE_DIR/stop"
  FILES_DIR="$(mount_dir "$1")/$2"
  mkdir -p "$FILES_DIR"
  switch_exec "$LOAD" kv-run "$(all_endpoints)" "$CAIRN_STATE_DIR/kv.history" "$CAIRN_STATE_DIR/stop" \
    >>"$CAIRN_STATE_DIR/kv-run.out" 2>&1 &
  KV_PID=$!
  "$LOAD" files-run "$FILES_DIR" "$CAIRN_STATE_DIR/files-$2.log" "$CAIRN_STATE_DIR/stop" \
    >>"$CAIRN_STATE_DIR/files-run.out" 2>&1 &
  FILES_PID=$!
  WINDOW_START=$(date +%s%N)
  say "$2: load started (store clients, files into host$1's mount); volume primary: host$(volume_primary_host)"
  sleep 3  # some acknowledged writes before the fault
}

volume_primary_host() {
  ctl_any volume status "$VOL" 2>/dev/null |
    awk '$4 == "primary" { split($2, a, ":"); sub("host", "", a[1]); print a[1]; exit }'
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

# check_scenario NAME WRITER_HOST: every check after a scenario, once the desired state is back.
check_scenario() {
  local name=$1 writer=$2 n digest first="" kv_stall files_stall
  wait_until 120 "the volume to be in sync again" volume_in_sync || {
    ctl_any volume heal "$VOL" status || true
    fail "$name: the volume did not get back in sync"
  }
  stop_load
  kv_stall=$("$LOAD" stall "$CAIRN_STATE_DIR/kv.history" "$WINDOW_START" "$WINDOW_END")
  files_stall=$("$LOAD" stall "$CAIRN_STATE_DIR/files-$name.log" "$WINDOW_START" "$WINDOW_END")
  say "$name: longest stall: store writes ${kv_stall} ms, file writes ${files_stall} ms"
  # Writes must go on: a stall as long as a whole fault means they did not (generous for a loaded CI).
  ((kv_stall < MAX_STALL_MS && files_stall < MAX_STALL_MS)) || fail "$name: writes stalled longer than $MAX_STALL_MS ms"
  switch_exec "$LOAD" kv-check "$(all_endpoints)" "$CAIRN_STATE_DIR/kv.history" ||
    fail "$name: store check failed"
  "$LOAD" files-check "$(mount_dir "$writer")/$name" "$CAIRN_STATE_DIR/files-$name.log" ||
    fail "$name: an acknowledged file is missing through the mount"
  grep -q '^[0-9]' "$CAIRN_STATE_DIR/files-$name.log" || fail "$name: no file write was acknowledged"
  for n in 1 2 3; do
    "$LOAD" files-check "$(brick_dir "$n")/$name" "$CAIRN_STATE_DIR/files-$name.log" >/dev/null ||
      fail "$name: an acknowledged file is missing on host$n's brick"
    digest=$(brick_digest "$(brick_dir "$n")")
    [[ -z $first ]] && first=$digest
    [[ $digest == "$first" ]] || fail "$name: host$n's brick differs from host1's ($digest vs $first)"
  done
  say "$name: every acknowledged file on all three bricks; bricks identical ($first)"
  check_desired_state "$name"
}

check_desired_state() {
  local n
  for n in 1 2 3; do clusterd_alive "$n" || fail "$1: host$n's clusterd is not running"; done
  wait_until 30 "a store leader" eval '[[ -n $(leader_host) ]]' || fail "$1: no store leader"
  ctl_any status >/dev/null || fail "$1: clusterctl status reports a member down"
  for n in 1 2; do mount_alive "$n" || fail "$1: the mount on host$n does not answer"; done
  container_ok || fail "$1: the container c1 does not answer"
  say "$1: desired state back: 3 clusterd, leader host$(leader_host), volume in sync, mounts on host1 and host2, container running"
}

# restore_host N: restarts host N's clusterd and what ran on it (its mount, the container).
restore_host() {
  start_host "$1" >/dev/null
  if (($1 <= 2)); then
    wait_until 60 "the mount on host$1" mount_on "$1" || fail "could not mount the volume on host$1 again"
  fi
  if ((LXC_OK && $1 == CONTAINER_HOST)); then
    ctl "$1" container check >/dev/null 2>&1 || true
    wait_until 60 "container c1 to run again" eval 'ctl '"$1"' container start c1 --wait 30 || container_ok' ||
      fail "container c1 did not start again on host$1"
  fi
}

# ---- setup ----
say "state in $CAIRN_STATE_DIR; hosts ${CAIRN_HOST_PREFIX}1-3 on ${CAIRN_NET_PREFIX}.0/24"
create_switch
for n in 1 2 3; do
  create_host "$n"
  write_node_yaml "$n"
  start_host "$n" >/dev/null
done
wait_until 60 "the store to have a leader" eval '[[ -n $(leader_host) ]]' || fail "no leader"
bricks=()
for n in 1 2 3; do
  mkdir -p "$(brick_dir "$n")"
  bricks+=("host$n:$(brick_dir "$n")")
done
ctl 1 volume create "$VOL" replica 3 "${bricks[@]}" >/dev/null
ctl 1 volume start "$VOL" --wait 90s >/dev/null || fail "volume start"
mount_on 1 >/dev/null
mount_on 2 >/dev/null
say "store up (leader host$(leader_host)), volume $VOL started, mounted on host1 and host2"

export CAIRN_IMAGE_ROOT="$CAIRN_STATE_DIR/images"
CONTAINER_HOST=1
export CAIRN_HOST=host$CONTAINER_HOST CAIRN_CONTAINER_ROOT="$CAIRN_STATE_DIR/host$CONTAINER_HOST/containers"
mkdir -p "$CAIRN_IMAGE_ROOT" "$CAIRN_CONTAINER_ROOT"
LXC_OK=0
if ctl 1 image build-busybox busybox >/dev/null 2>&1 &&
  ctl 1 container create c1 --image busybox --start --wait 60 >/dev/null 2>&1 &&
  ctl 1 container exec c1 -- sh -c 'mkdir -p /data && echo e2e-marker > /data/marker' >/dev/null 2>&1; then
  LXC_OK=1
  say "container c1 runs on host1 (busybox image)"
else
  say "LXC cannot run a container here; the container checks are skipped"
fi

# ---- (a) kill -9 every process of host3 ----
start_load 1 a
say "a: kill -9 of every process of host3: $(echo $(host_pids 3))"
kill_host 3
wait_until 10 "host3's clusterd to die" eval '! clusterd_alive 3'
sleep 8  # run a while without it
say "a: host3 restarts"
restore_host 3
check_scenario a 1

# ---- (b) cut host2 off, then restore it ----
start_load 1 b
say "b: host2 cut off at the switch (its processes keep running)"
cut_host 2
sleep 10
heal_host 2
say "b: host2 back on the network"
wait_until 60 "the mount on host2 to answer" mount_alive 2 || fail "b: the mount on host2 stays dead after the cut"
check_scenario b 1

# ---- (c) kill the store leader's host; (d) restart it ----
leader=$(leader_host)
[[ -n $leader ]] || fail "c: no leader"
writer=1
((leader == 1)) && writer=2
start_load "$writer" c
say "c: kill -9 of every process of host$leader (the store leader); files written through host$writer's mount"
kill_host "$leader"
wait_until 10 "host$leader's clusterd to die" eval "! clusterd_alive $leader"
wait_until 30 "a new leader" eval '[[ -n $(leader_host) ]]' || fail "c: no new leader"
say "c: new leader host$(leader_host)"
sleep 8
say "d: host$leader restarts"
restore_host "$leader"
check_scenario c "$writer"

# ---- quorum loss: kill 2 of 3, refuse, recover ----
survivor=1
rm -f "$CAIRN_STATE_DIR/stop"
switch_exec "$LOAD" kv-run "$(all_endpoints)" "$CAIRN_STATE_DIR/kv.history" "$CAIRN_STATE_DIR/stop" \
  >>"$CAIRN_STATE_DIR/kv-run.out" 2>&1 &
KV_PID=$!
sleep 3
say "quorum loss: kill -9 of every process of host2 and host3 (store clients still writing)"
for n in 2 3; do kill_host "$n"; done
wait_until 10 "host2 and host3 to die" eval '! clusterd_alive 2 && ! clusterd_alive 3'
sleep 5
touch "$CAIRN_STATE_DIR/stop"
wait_until 60 "the store clients to stop" eval "! kill -0 $KV_PID" || kill -9 "$KV_PID"
wait "$KV_PID" 2>/dev/null || true
KV_PID=""
if out=$(host_exec 1 "$CAIRN_BIN/clusterctl" --endpoints "$(host_ip 1):2379" --timeout 5s kv put /e2e/after-loss x 2>&1); then
  fail "quorum loss: a write succeeded on host1 alone: $out"
fi
say "quorum loss: a write is refused: $out"
grep -Eqi 'leader|quorum|deadline|timed out|unavailable' <<<"$out" || fail "quorum loss: the refusal does not say why: $out"
stop_host "$survivor"
say "quorum loss: \$ clusterd recover --config host1/node.yaml"
"$CAIRN_BIN/clusterd" recover --config "$CAIRN_STATE_DIR/host1/node.yaml" | sed 's/^/  /' || fail "clusterd recover"
start_host "$survivor" >/dev/null || fail "host1 did not start after recover"
wait_until 30 "host1 to lead alone" eval '[[ $(leader_host) == 1 ]]' || fail "recovered host1 does not lead"
host_exec 1 "$CAIRN_BIN/clusterctl" --endpoints "$(host_ip 1):2379" kv put /e2e/after-recover ok >/dev/null ||
  fail "a write after recover failed"
switch_exec "$LOAD" kv-check "$(host_ip 1):2379" "$CAIRN_STATE_DIR/kv.history" ||
  fail "quorum loss: an acknowledged key is missing after recover"
say "quorum loss: recovered host1 serves writes and every acknowledged key"
say "PASS ($((SECONDS - T0)) s)"

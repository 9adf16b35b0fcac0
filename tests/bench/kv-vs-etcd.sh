#!/bin/bash
# kv-vs-etcd.sh - Cairn's coordination store against etcd 3.4 on this machine, in the same run.
#
# usage: tests/bench/kv-vs-etcd.sh [-d SECS] [-c "1 16 64"] [-f TRIALS] [-s etcd|cairn|both]
#   -d SECS     wrk duration per case (default 10)
#   -c CONNS    connection counts (default "1 16 64"; the RESULT line needs 16 and 64)
#   -f TRIALS   failover trials per system, median reported (default 5)
#   -s SYSTEMS  which systems to run (default both; a ratio needs both)
# Env: BUILD_DIR (default <repo>/build), SHARED_BENCH (default <repo>/../shared/bench),
#      BENCH_TMP (default ${TMPDIR:-/var/tmp}; both systems keep their data there, on the same disk),
#      KEEP=1 keeps the work dir (data, logs, raw wrk output).
#
# What it does: builds clusterd/clusterctl if missing; starts the 3-member etcd with
# ../shared/bench/kv/etcd-cluster.sh (fsync on, data on disk), runs kvbench.sh (put 256 B and
# linearizable range, against the leader), runs failover.py TRIALS times (kill -9 of the leader,
# time to first successful write; the member is restarted after each trial), reads the RSS of the
# members, stops it; then the same against 3 clusterd processes (node.yaml files generated into
# the work dir). Prints a table and, as the last line:
#   RESULT put_c16_ratio=X put_c64_ratio=X range_c16_ratio=X p99_c16_ratio=X failover_ms=N
# (ratios Cairn/etcd; p99 ratio is Cairn's put p99 at 16 connections over etcd's; failover_ms is
# Cairn's median). A figure that could not be measured is NA. Every process started here is
# stopped on exit (trap), also on Ctrl-C or failure.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO/build}
SHARED_BENCH=${SHARED_BENCH:-$(cd "$REPO/.." && pwd)/shared/bench}
KV=$SHARED_BENCH/kv
DUR=10; CONNS="1 16 64"; TRIALS=5; SYSTEMS=both
while getopts "d:c:f:s:h" o; do
  case $o in
    d) DUR=$OPTARG ;; c) CONNS=$OPTARG ;; f) TRIALS=$OPTARG ;; s) SYSTEMS=$OPTARG ;;
    *) sed -n '2,26p' "$0"; exit 2 ;;
  esac
done
for tool in wrk python3 /usr/bin/etcd etcdctl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run deploy/install-deps.sh --bench" >&2; exit 2; }
done
[ -x "$KV/kvbench.sh" ] || [ -f "$KV/kvbench.sh" ] || { echo "no $KV/kvbench.sh (set SHARED_BENCH)" >&2; exit 2; }

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/var/tmp}}/kv-vs-etcd.XXXXXX")
export ETCD_BENCH_DIR=$WORK/etcd
CAIRN_PIDS=()
cleanup() {
  ETCD_BENCH_DIR=$WORK/etcd bash "$KV/etcd-cluster.sh" stop >/dev/null 2>&1
  for pid in "${CAIRN_PIDS[@]}"; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && { wait "$pid"; } 2>/dev/null
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "# $(date +%T) $*"; }

# ---- build ------------------------------------------------------------------
if [[ "$SYSTEMS" != etcd ]] && { [ ! -x "$BUILD_DIR/bin/clusterd" ] || [ ! -x "$BUILD_DIR/bin/clusterctl" ]; }; then
  log "building clusterd and clusterctl in $BUILD_DIR"
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCAIRN_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
    cmake --build "$BUILD_DIR" --target clusterd clusterctl >/dev/null || { echo "build failed" >&2; exit 1; }
fi

# ---- helpers shared by both systems --------------------------------------------
declare -A R  # results: R[system.key]

# kvbench SYSTEM ENDPOINTS: runs the wrk cases, fills R[SYSTEM.put_cN], R[SYSTEM.put_p99_cN], R[SYSTEM.range_cN]
kvbench() {
  local sys=$1 eps=$2 out=$WORK/$1-kvbench
  log "$sys: kvbench ($DUR s per case, conns $CONNS)"
  bash "$KV/kvbench.sh" -d "$DUR" -c "$CONNS" -k "v3put v3range" -T leader -o "$out" "$eps" | sed -u 's/^/    /'
  while IFS=, read -r case target url conns threads rep dur reqs rps p50 p90 p99 rest; do
    [ "$case" = case ] && continue
    local short=${case#v3}
    R[$sys.${short}_c$conns]=$rps
    R[$sys.${short}_p99_c$conns]=$p99
    [[ "$rest" == *,1 ]] && R[$sys.leader_changed]=yes
  done <"$out/results.csv"
}

# leader_url ENDPOINTS: the URL whose /v3/maintenance/status says it leads.
leader_url() { python3 "$KV/kvhelper.py" roles "$1" | awk '$2 == "leader" {print $1; exit}'; }

# wait_leader ENDPOINTS SECONDS: until some endpoint leads.
wait_leader() {
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt "$deadline" ]; do
    [ -n "$(leader_url "$1" 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  return 1
}

# rss_kib PID: resident set size now.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# failover SYSTEM ENDPOINTS PID_OF_URL_FN RESTART_FN: TRIALS kills of the leader, median first_ok_ms.
failover() {
  local sys=$1 eps=$2 pid_of=$3 restart=$4 values=() i url pid first
  for i in $(seq 1 "$TRIALS"); do
    wait_leader "$eps" 30 || { log "$sys: no leader before failover trial $i"; break; }
    url=$(leader_url "$eps")
    pid=$($pid_of "$url")
    [ -n "$pid" ] || { log "$sys: no pid for leader $url"; break; }
    first=$(python3 "$KV/failover.py" --endpoints "$eps" --kill-pid "$pid" --pre 3 --post 5 \
      --label "$sys-$i-$RANDOM" 2>&1 | tee -a "$WORK/$sys-failover.log" |
      sed -n 's/^SUMMARY.* first_ok_ms=\([0-9.]*\).*/\1/p')
    log "$sys: failover trial $i: killed leader $url (pid $pid): first ok write after ${first:-NA} ms"
    [ -n "$first" ] && values+=("$first")
    $restart "$url"
    wait_leader "$eps" 30 || true
  done
  if [ ${#values[@]} -gt 0 ]; then
    R[$sys.failover_ms]=$(printf '%s\n' "${values[@]}" | sort -g | awk '{v[NR]=$1} END {m=int((NR+1)/2); printf "%.0f", v[m]}')
  fi
}

# ---- etcd -------------------------------------------------------------------
etcd_pid_of() {  # URL -> pid of that member (client port 32N79)
  local port=${1##*:} n
  n=$(( (port - 32000) / 100 ))
  cat "$ETCD_BENCH_DIR/run/m$n.pid" 2>/dev/null
}
etcd_restart() {
  local port=${1##*:}
  bash "$KV/etcd-cluster.sh" startone $(( (port - 32000) / 100 )) >/dev/null
}
run_etcd() {
  log "etcd: starting 3 members (data in $ETCD_BENCH_DIR)"
  bash "$KV/etcd-cluster.sh" start | sed -u 's/^/    /'
  local eps
  eps=$(bash "$KV/etcd-cluster.sh" endpoints)
  wait_leader "$eps" 30 || { log "etcd: no leader"; return 1; }
  kvbench etcd "$eps"
  local n max=0 r
  for n in 1 2 3; do r=$(rss_kib "$(cat "$ETCD_BENCH_DIR/run/m$n.pid")"); [ "${r:-0}" -gt $max ] && max=$r; done
  R[etcd.rss_kib]=$max
  failover etcd "$eps" etcd_pid_of etcd_restart
  bash "$KV/etcd-cluster.sh" wipe >/dev/null
}

# ---- Cairn --------------------------------------------------------------------
# Three clusterd on 127.0.0.1: client ports 33N79, peer ports 33N80 (N = 1..3).
CAIRN_DIR=$WORK/cairn
cairn_cport() { echo $((33000 + $1 * 100 + 79)); }
cairn_pport() { echo $((33000 + $1 * 100 + 80)); }
cairn_start_one() {
  local n=$1
  "$BUILD_DIR/bin/clusterd" --config "$CAIRN_DIR/node$n.yaml" >>"$CAIRN_DIR/node$n.log" 2>&1 &
  CAIRN_PIDS[$n]=$!
}
cairn_pid_of() {
  local port=${1##*:}
  echo "${CAIRN_PIDS[$(( (port - 33000) / 100 ))]}"
}
cairn_restart() {
  local port=${1##*:} n
  n=$(( (port - 33000) / 100 ))
  { wait "${CAIRN_PIDS[$n]}"; } 2>/dev/null  # reap the killed one quietly (no "Killed" job notice)
  cairn_start_one "$n"
}
run_cairn() {
  mkdir -p "$CAIRN_DIR"
  local n eps="" ctl_eps=""
  for n in 1 2 3; do
    {
      echo "name: node$n"
      echo "data_dir: $CAIRN_DIR/node$n"
      echo "role: voter"
      echo "peer_address: 127.0.0.1:$(cairn_pport $n)"
      echo "client_address: 127.0.0.1:$(cairn_cport $n)"
      echo "initial_cluster:"
      for m in 1 2 3; do echo "  - name: node$m"; echo "    peer_address: 127.0.0.1:$(cairn_pport $m)"; done
      echo "log:"
      echo "  level: warn"
    } >"$CAIRN_DIR/node$n.yaml"
    eps="$eps${eps:+,}http://127.0.0.1:$(cairn_cport $n)"
    ctl_eps="$ctl_eps${ctl_eps:+,}127.0.0.1:$(cairn_cport $n)"
  done
  log "cairn: starting 3 clusterd (data in $CAIRN_DIR)"
  for n in 1 2 3; do cairn_start_one $n; done
  if ! wait_leader "$eps" 30; then
    log "cairn: no member answered /v3/maintenance/status with a leader within 30 s (does clusterd serve the HTTP API yet?)"
    tail -n 5 "$CAIRN_DIR"/node*.log | sed -u 's/^/    /'
    return 1
  fi
  "$BUILD_DIR/bin/clusterctl" status --endpoints "$ctl_eps" | sed -u 's/^/    /'
  kvbench cairn "$eps"
  local max=0 r
  for n in 1 2 3; do r=$(rss_kib "${CAIRN_PIDS[$n]}"); [ "${r:-0}" -gt $max ] && max=$r; done
  R[cairn.rss_kib]=$max
  failover cairn "$eps" cairn_pid_of cairn_restart
}

[[ "$SYSTEMS" == cairn ]] || run_etcd
[[ "$SYSTEMS" == etcd ]] || run_cairn

# ---- report -------------------------------------------------------------------
get() { echo "${R[$1]:-NA}"; }
ratio() {  # A B -> A/B with 2 decimals, NA if either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b + 0 == 0) print "NA"; else printf "%.2f", a / b }'
}
echo
printf "%-26s %12s %12s %8s\n" metric etcd cairn ratio
for c in $CONNS; do
  printf "%-26s %12s %12s %8s\n" "put/s c$c" "$(get etcd.put_c$c)" "$(get cairn.put_c$c)" "$(ratio "$(get cairn.put_c$c)" "$(get etcd.put_c$c)")"
  printf "%-26s %12s %12s %8s\n" "put p99 ms c$c" "$(get etcd.put_p99_c$c)" "$(get cairn.put_p99_c$c)" "$(ratio "$(get cairn.put_p99_c$c)" "$(get etcd.put_p99_c$c)")"
  printf "%-26s %12s %12s %8s\n" "range/s c$c" "$(get etcd.range_c$c)" "$(get cairn.range_c$c)" "$(ratio "$(get cairn.range_c$c)" "$(get etcd.range_c$c)")"
done
printf "%-26s %12s %12s %8s\n" "failover median ms" "$(get etcd.failover_ms)" "$(get cairn.failover_ms)" "$(ratio "$(get cairn.failover_ms)" "$(get etcd.failover_ms)")"
printf "%-26s %12s %12s %8s\n" "member RSS KiB (max of 3)" "$(get etcd.rss_kib)" "$(get cairn.rss_kib)" "$(ratio "$(get cairn.rss_kib)" "$(get etcd.rss_kib)")"
printf "%-26s %12s %12s\n" "leader change in wrk runs" "${R[etcd.leader_changed]:-no}" "${R[cairn.leader_changed]:-no}"
echo "RESULT put_c16_ratio=$(ratio "$(get cairn.put_c16)" "$(get etcd.put_c16)") put_c64_ratio=$(ratio "$(get cairn.put_c64)" "$(get etcd.put_c64)") range_c16_ratio=$(ratio "$(get cairn.range_c16)" "$(get etcd.range_c16)") p99_c16_ratio=$(ratio "$(get cairn.put_p99_c16)" "$(get etcd.put_p99_c16)") failover_ms=$(get cairn.failover_ms)"

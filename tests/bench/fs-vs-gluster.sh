#!/bin/bash
# fs-vs-gluster.sh - Cairn's replica-3 volume against GlusterFS 10 replica 3 on this machine, same run.
#
# usage: tests/bench/fs-vs-gluster.sh [-r RUNS] [-s gluster|cairn|both] [-F] [-n HEAL_FILES]
#   -r RUNS        fsbench runs per case, median reported (default 3)
#   -s SYSTEMS     which systems to run (default both; a ratio needs both)
#   -F             skip Cairn's fault runs (kill -9 and SIGSTOP of a brick host, heal)
#   -n HEAL_FILES  4 KiB files written while a replica is down, then healed (default 2000)
# Env: BUILD_DIR (default <repo>/build), SHARED_BENCH (default <repo>/../shared/bench),
#      BENCH_TMP (default /var/tmp; every brick, GlusterFS's and Cairn's, and the plain-disk
#      baseline live there, on the same disk), KEEP=1 keeps the work dir (logs, fault output),
#      LOG_LEVEL (clusterd's log level, default warn; info shows the heal and take-over timeline),
#      MOUNT_OPTS (cairn-mount -o options for the Cairn mount, e.g. writeback=on,timeout=10; default none).
#
# What it does: measures a plain directory (the disk's limit), then GlusterFS (../shared/bench/fs/
# gluster-setup.sh: replica 3 on this host, FUSE mount; torn down afterwards), then Cairn: three
# clusterd on 127.0.0.1 (hosts node1..node3), `clusterctl volume create bench replica 3` with one
# brick per host, `volume start`, `clusterctl mount`, the same fsbench.sh; then the fault runs with
# ../shared/bench/fs/fault/faultrun.sh (a writer of fsynced numbered files): kill -9 of a backup's
# host, its restart, SIGSTOP of the primary's host, SIGCONT; then heal: a host is killed, HEAL_FILES
# files are written, the host returns and the time until every brick is in sync again gives the heal
# rate. Replicas are compared with fault/compare_bricks.sh. Prints a table and, as the last line:
#   RESULT seq_write_ratio=X seq_write_of_limit=X seq_read_ratio=X seq_read_of_plain=X create_ratio=X
#          stat_ratio=X read_small_ratio=X delete_ratio=X stall_kill_ms=N stall_silent_ms=N heal_files_per_s=N
# (_ratio: Cairn / GlusterFS; _of_limit: of the plain-disk write rate divided by 3; _of_plain: of the
# plain-disk read rate). A figure that could not be measured is NA. Every process and mount made here
# is removed on exit (trap), also on Ctrl-C or failure.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO/build}
SHARED_BENCH=${SHARED_BENCH:-$(cd "$REPO/.." && pwd)/shared/bench}
FS=$SHARED_BENCH/fs
RUNS=3; SYSTEMS=both; FAULTS=1; HEAL_FILES=2000
while getopts "r:s:Fn:h" o; do
  case $o in
    r) RUNS=$OPTARG ;; s) SYSTEMS=$OPTARG ;; F) FAULTS=0 ;; n) HEAL_FILES=$OPTARG ;;
    *) sed -n '2,28p' "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (drops caches, mounts)" >&2; exit 2; }
for tool in fio python3 bc fusermount3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run deploy/install-deps.sh --bench" >&2; exit 2; }
done
if [[ "$SYSTEMS" != cairn ]]; then
  command -v glusterd >/dev/null || [ -x /usr/sbin/glusterd ] ||
    { echo "missing glusterd: run deploy/install-deps.sh --bench" >&2; exit 2; }
fi
[ -f "$FS/fsbench.sh" ] || { echo "no $FS/fsbench.sh (set SHARED_BENCH)" >&2; exit 2; }

WORK=$(mktemp -d "${BENCH_TMP:-/var/tmp}/fs-vs-gluster.XXXXXX")
export GLUSTER_BENCH_DIR=$WORK/gluster
CAIRN_DIR=$WORK/cairn
CAIRN_MNT=$CAIRN_DIR/mnt
CAIRN_PIDS=()
GLUSTER_UP=0
cleanup() {
  if mountpoint -q "$CAIRN_MNT" 2>/dev/null; then fusermount3 -u "$CAIRN_MNT" 2>/dev/null || umount -l "$CAIRN_MNT"; fi
  local pid
  for pid in "${CAIRN_PIDS[@]}"; do
    [ -n "$pid" ] || continue
    kill -CONT "$pid" 2>/dev/null
    kill -9 "$pid" 2>/dev/null && { wait "$pid"; } 2>/dev/null
  done
  [ "$GLUSTER_UP" = 1 ] && bash "$FS/gluster-teardown.sh" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "# $(date +%T) $*"; }
declare -A R  # results: R[system.case]

# fsbench SYSTEM DIR: runs fsbench.sh, fills R[SYSTEM.CASE] with the medians.
fsbench() {
  local sys=$1 dir=$2 out=$WORK/$1-fsbench.txt
  log "$sys: fsbench.sh $dir ($RUNS runs)"
  bash "$FS/fsbench.sh" "$dir" "$RUNS" 2>&1 | tee "$out" | sed -u 's/^/    /'
  local name unit median rest
  while read -r name unit median rest; do
    [[ "$name" == \#* || "$name" == case || -z "$median" ]] && continue
    R[$sys.$name]=$median
  done <"$out"
}

# ---- plain disk and GlusterFS ---------------------------------------------------
run_plain() {
  mkdir -p "$WORK/plain"
  fsbench plain "$WORK/plain"
}

run_gluster() {
  log "gluster: setting up replica 3 (data in $GLUSTER_BENCH_DIR)"
  GLUSTER_UP=1
  bash "$FS/gluster-setup.sh" >"$WORK/gluster-setup.log" 2>&1 ||
    { log "gluster: setup failed"; tail -n 20 "$WORK/gluster-setup.log" | sed 's/^/    /'; return 1; }
  fsbench gluster "$GLUSTER_BENCH_DIR/mnt/r3"
  bash "$FS/gluster-teardown.sh" >/dev/null 2>&1
  GLUSTER_UP=0
}

# ---- Cairn ----------------------------------------------------------------------
# Three clusterd on 127.0.0.1: client ports 34N79, peer ports 34N80 (N = 1..3).
cairn_cport() { echo $((34000 + $1 * 100 + 79)); }
cairn_pport() { echo $((34000 + $1 * 100 + 80)); }
CTL_EPS=""
ctl() { "$BUILD_DIR/bin/clusterctl" --endpoints "$CTL_EPS" "$@"; }
cairn_start_one() {
  local n=$1
  "$BUILD_DIR/bin/clusterd" --config "$CAIRN_DIR/node$n.yaml" >>"$CAIRN_DIR/node$n.log" 2>&1 &
  CAIRN_PIDS[$n]=$!
}
cairn_kill_one() {
  local n=$1
  kill -CONT "${CAIRN_PIDS[$n]}" 2>/dev/null
  kill -9 "${CAIRN_PIDS[$n]}" 2>/dev/null
  { wait "${CAIRN_PIDS[$n]}"; } 2>/dev/null
  CAIRN_PIDS[$n]=""
}

# wait_for SECONDS CMD...: runs CMD until it succeeds or SECONDS pass.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# The host (1..3) whose brick is the set's primary / a backup, from `volume status -o json`.
volume_json() { ctl volume status bench -o json; }
primary_host() { volume_json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
doc = doc["volumes"][0] if "volumes" in doc else doc
print(next((b["brick"].split(":")[0][len("node"):] for b in doc["bricks"] if b["role"] == "primary"), ""))'; }
all_in_sync() { volume_json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
doc = doc["volumes"][0] if "volumes" in doc else doc
sys.exit(0 if all(len(s.get("in_sync", [])) == 3 for s in doc["sets"]) and all(b["online"] for b in doc["bricks"]) else 1)'; }

cairn_setup() {
  mkdir -p "$CAIRN_DIR" "$CAIRN_MNT"
  local n m
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
      echo "  level: ${LOG_LEVEL:-warn}"
    } >"$CAIRN_DIR/node$n.yaml"
    CTL_EPS="$CTL_EPS${CTL_EPS:+,}127.0.0.1:$(cairn_cport $n)"
  done
  log "cairn: starting 3 clusterd (data and bricks in $CAIRN_DIR)"
  for n in 1 2 3; do cairn_start_one $n; done
  wait_for 30 ctl kv put /bench/ready yes || { log "cairn: the store did not come up"; return 1; }
  ctl volume create bench replica 3 node1:"$CAIRN_DIR/b1" node2:"$CAIRN_DIR/b2" node3:"$CAIRN_DIR/b3" &&
    ctl volume start bench --wait 30s &&
    ctl mount bench "$CAIRN_MNT" ${MOUNT_OPTS:+-o "$MOUNT_OPTS"} || { log "cairn: volume setup failed"; return 1; }
  ctl volume status bench | sed -u 's/^/    /'
}

# fault_runs: kill -9 of a backup host and SIGSTOP of the primary host under a writer of fsynced files.
cairn_faults() {
  local primary backup out=$WORK/cairn-fault
  primary=$(primary_host)
  [ -n "$primary" ] || { log "cairn: no primary found in volume status"; return 1; }
  backup=$(( primary % 3 + 1 ))
  log "cairn: fault run: kill -9 of node$backup (backup) at 5 s, restart at 15 s, SIGSTOP of node$primary (primary) at 25 s, SIGCONT at 40 s"
  mkdir -p "$CAIRN_MNT/fault"
  local start1="$BUILD_DIR/bin/clusterd --config $CAIRN_DIR/node$backup.yaml >>$CAIRN_DIR/node$backup.log 2>&1 & echo \$! >$WORK/restarted.pid"
  bash "$FS/fault/faultrun.sh" "$out" "$CAIRN_MNT/fault" 55 \
    "5|kill_backup|kill -9 ${CAIRN_PIDS[$backup]}" \
    "15|restart_backup|$start1" \
    "25|stop_primary|kill -STOP ${CAIRN_PIDS[$primary]}" \
    "40|cont_primary|kill -CONT ${CAIRN_PIDS[$primary]}" 2>&1 | sed -u 's/^/    /'
  { wait "${CAIRN_PIDS[$backup]}"; } 2>/dev/null
  CAIRN_PIDS[$backup]=$(cat "$WORK/restarted.pid" 2>/dev/null)
  R[cairn.stall_kill_ms]=$(stall_ms "$out/analyze.txt" kill_backup)
  R[cairn.stall_silent_ms]=$(stall_ms "$out/analyze.txt" stop_primary)
  grep -q "missing=0\|all ok\|OK" "$out/verify.txt" 2>/dev/null || log "cairn: verify.py: $(tail -n 1 "$out/verify.txt" 2>/dev/null)"
}

# stall_ms ANALYZE_TXT EVENT: the longest time without a completed operation in that event's window.
stall_ms() {
  sed -n "s/^\[$2 .*longest_no_completion=\([0-9.]*\)s.*/\1/p" "$1" | head -n 1 | awk '{ if ($1 == "") print "NA"; else printf "%.0f", $1 * 1000 }'
}

# heal: a host down while HEAL_FILES 4 KiB files are written, then back; time until all in sync.
cairn_heal() {
  wait_for 60 all_in_sync || { log "cairn: replicas not in sync before the heal run"; return 1; }
  local primary victim t0 t1
  primary=$(primary_host)
  victim=$(( primary % 3 + 1 ))
  log "cairn: heal run: node$victim down, $HEAL_FILES files written, node$victim back"
  cairn_kill_one "$victim"
  mkdir -p "$CAIRN_MNT/heal"
  python3 - "$CAIRN_MNT/heal" "$HEAL_FILES" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
block = os.urandom(4096)
for i in range(n):
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(block)
EOF
  sync
  t0=$(date +%s.%N)
  cairn_start_one "$victim"
  if wait_for 600 all_in_sync; then
    t1=$(date +%s.%N)
    R[cairn.heal_files_per_s]=$(echo "$HEAL_FILES / ($t1 - $t0)" | bc -l | xargs printf '%.0f')
    log "cairn: healed $HEAL_FILES files in $(echo "$t1 - $t0" | bc -l | xargs printf '%.2f') s (from the host's restart, start-up included)"
  else
    log "cairn: heal did not finish within 600 s"
    ctl volume heal bench status | sed 's/^/    /'
  fi
  ctl volume heal bench status | sed 's/^/    /'
  # Bricks keep files under their own names (the id index lives in .cairn): compare what the runs wrote.
  local sub
  for sub in fault heal; do
    log "cairn: replicas of /$sub compared (md5 of every file on every brick)"
    bash "$FS/fault/compare_bricks.sh" "$sub" "$CAIRN_DIR/b1" "$CAIRN_DIR/b2" "$CAIRN_DIR/b3" 2>&1 | sed 's/^/    /'
  done
}

run_cairn() {
  cairn_setup || return 1
  fsbench cairn "$CAIRN_MNT"
  if [ "$FAULTS" = 1 ]; then
    cairn_faults
    cairn_heal
  fi
}

run_plain
[[ "$SYSTEMS" == cairn ]] || run_gluster
[[ "$SYSTEMS" == gluster ]] || run_cairn

# ---- report -------------------------------------------------------------------
get() { echo "${R[$1]:-NA}"; }
ratio() {  # A B -> A/B with 2 decimals, NA if either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || a == "" || b == "" || b + 0 == 0) print "NA"; else printf "%.2f", a / b }'
}
echo
printf "%-12s %-8s %12s %12s %12s %8s\n" case unit plain gluster cairn cairn/gl
for c in seq_write:MiB/s seq_read:MiB/s rand_write:IOPS rand_read:IOPS sf_create:files/s sf_stat:files/s \
         sf_read:files/s sf_delete:files/s ls_l_cold:s ls_l_warm:s; do
  name=${c%%:*}; unit=${c#*:}
  printf "%-12s %-8s %12s %12s %12s %8s\n" "$name" "$unit" "$(get plain.$name)" "$(get gluster.$name)" \
    "$(get cairn.$name)" "$(ratio "$(get cairn.$name)" "$(get gluster.$name)")"
done
limit=$(awk -v p="$(get plain.seq_write)" 'BEGIN { if (p == "NA") print "NA"; else printf "%.1f", p / 3 }')
echo "physical limit for a replica-3 sequential write on one disk: plain / 3 = $limit MiB/s"
echo "RESULT seq_write_ratio=$(ratio "$(get cairn.seq_write)" "$(get gluster.seq_write)")" \
  "seq_write_of_limit=$(ratio "$(get cairn.seq_write)" "$limit")" \
  "seq_read_ratio=$(ratio "$(get cairn.seq_read)" "$(get gluster.seq_read)")" \
  "seq_read_of_plain=$(ratio "$(get cairn.seq_read)" "$(get plain.seq_read)")" \
  "create_ratio=$(ratio "$(get cairn.sf_create)" "$(get gluster.sf_create)")" \
  "stat_ratio=$(ratio "$(get cairn.sf_stat)" "$(get gluster.sf_stat)")" \
  "read_small_ratio=$(ratio "$(get cairn.sf_read)" "$(get gluster.sf_read)")" \
  "delete_ratio=$(ratio "$(get cairn.sf_delete)" "$(get gluster.sf_delete)")" \
  "stall_kill_ms=$(get cairn.stall_kill_ms)" "stall_silent_ms=$(get cairn.stall_silent_ms)" \
  "heal_files_per_s=$(get cairn.heal_files_per_s)"

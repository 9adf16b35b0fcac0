#!/bin/bash
# union-vs-peers.sh — unionmount against the peer union file systems, same machine, same run.
#
#   sudo tests/bench/union-vs-peers.sh [-l LOWER] [-w WORKDIR] [-r ROUNDS] [-t "ovl fovl unionfs mergerfs cairn"]
#                                      [-u UNIONMOUNT] [-k]
#
# Builds one lower tree with ../shared/bench/union/mklower.sh (or reuses -l LOWER when it already holds
# big/seq512), then for every round and every target mounts a union with a fresh upper directory, runs
# ../shared/bench/union/unionbench.sh on it and unmounts it. Targets: ovl (kernel overlay), fovl
# (fuse-overlayfs), unionfs (unionfs-fuse), mergerfs (no copy-up: its lower branch is a read-only bind
# mount, so its writes to lower files fail with EROFS and are left out of "best FUSE peer" for those
# cases), cairn (build/bin/unionmount). Also times `cp` of a 100 MiB lower file on the same disk (the
# copy-up yardstick) and chmods a 100 MiB lower file through unionmount to count the bytes it copies.
#
# Prints the per-target medians, the ratios and, as the LAST line:
#   RESULT walk_cold_vs_fuseovl=X walk_warm_vs_fuseovl=X tar_vs_fuseovl=X seqread_warm_vs_kovl=X
#          create_vs_best_fuse=X delete_vs_best_fuse=X copyup_vs_cp=X chmod_copied_bytes=N
# (one line; speed ratios, higher is better for Cairn). walk = find -type f plus find -ls, tar = warm tar.
# Every mount is removed in an EXIT trap, also on failure or Ctrl-C. Needs root.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${CAIRN_BENCH_SHARED:-$REPO/../shared/bench/union}
LOWER=""
WORK=${TMPDIR:-/var/tmp}/union-vs-peers.$$
ROUNDS=1
TARGETS="ovl fovl unionfs mergerfs cairn"
UNIONMOUNT=${UNIONMOUNT:-}
KEEP_LOWER=0

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while getopts "l:w:r:t:u:kh" opt; do
  case $opt in
    l) LOWER=$OPTARG ;; w) WORK=$OPTARG ;; r) ROUNDS=$OPTARG ;; t) TARGETS=$OPTARG ;;
    u) UNIONMOUNT=$OPTARG ;; k) KEEP_LOWER=1 ;; *) usage ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "union-vs-peers.sh: needs root (mounts)" >&2; exit 1; }
if [ -z "$UNIONMOUNT" ]; then
  for c in "$REPO/build/bin/unionmount" "$REPO"/../build-*/bin/unionmount; do
    [ -x "$c" ] && { UNIONMOUNT=$c; break; }
  done
fi
for t in $TARGETS; do
  case $t in
    ovl) ;; fovl) command -v fuse-overlayfs >/dev/null || { echo "fuse-overlayfs missing (deploy/install-deps.sh --bench)" >&2; exit 1; } ;;
    unionfs) command -v unionfs-fuse >/dev/null || { echo "unionfs-fuse missing (deploy/install-deps.sh --bench)" >&2; exit 1; } ;;
    mergerfs) command -v mergerfs >/dev/null || { echo "mergerfs missing (deploy/install-deps.sh --bench)" >&2; exit 1; } ;;
    cairn) [ -x "$UNIONMOUNT" ] || { echo "unionmount not found: build it or pass -u" >&2; exit 1; } ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done

case " $TARGETS " in *" cairn "*) echo "# unionmount: $UNIONMOUNT" >&2 ;; esac
mkdir -p "$WORK"
MOUNTS=()   # every mount point we created, unmounted in the trap (last first)
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    if mountpoint -q "${MOUNTS[$i]}"; then umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" || true; fi
  done
  rm -rf "$WORK/upper" "$WORK/work" "$WORK/mnt" "$WORK/robind" "$WORK/cp" "$WORK/results" 2>/dev/null || true
  if [ "$KEEP_LOWER" = 0 ] && [ "$LOWER" = "$WORK/lower" ]; then rm -rf "$WORK/lower"; fi
  rmdir "$WORK" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$LOWER" ]; then LOWER=$WORK/lower; fi
if [ ! -f "$LOWER/big/seq512" ]; then
  echo "# building the lower layer in $LOWER (mklower.sh)" >&2
  bash "$SHARED/mklower.sh" "$LOWER" >&2
fi
LOWER=$(cd "$LOWER" && pwd)
RES=$WORK/results
mkdir -p "$RES"

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
mounted() { local deadline=$((SECONDS + 10)); while ! mountpoint -q "$1"; do
  [ $SECONDS -lt $deadline ] || return 1; sleep 0.05; done; }

# mount_target TARGET MNT: a union of $LOWER with a fresh upper at MNT.
mount_target() {
  local t=$1 m=$2
  rm -rf "$WORK/upper" "$WORK/work"; mkdir -p "$WORK/upper" "$WORK/work" "$m"
  MOUNTS+=("$m")
  case $t in
    cairn) "$UNIONMOUNT" -o "dirs=$WORK/upper=rw:$LOWER=ro" "$m" ;;
    mergerfs)
      mkdir -p "$WORK/robind"; MOUNTS+=("$WORK/robind")
      mount --bind "$LOWER" "$WORK/robind" && mount -o remount,bind,ro "$WORK/robind"
      bash "$SHARED/peers.sh" mount mergerfs "$WORK/robind" "$WORK/upper" "$WORK/work" "$m" ;;
    *) bash "$SHARED/peers.sh" mount "$t" "$LOWER" "$WORK/upper" "$WORK/work" "$m" ;;
  esac
  mounted "$m" || { echo "mount of $t on $m failed" >&2; return 1; }
  # Wait until the union shows the layer (FUSE daemons may answer a little after the mount appears).
  local deadline=$((SECONDS + 10)); until [ -f "$m/big/seq512" ]; do
    [ $SECONDS -lt $deadline ] || { echo "$t: union at $m does not show the lower layer" >&2; return 1; }; sleep 0.05; done
}

umount_target() {
  local m=$1
  sync; umount "$m" || umount -l "$m"
  if mountpoint -q "$WORK/robind"; then umount "$WORK/robind"; fi
}

# The yardstick for copy-up: cp of a (cold) 100 MiB lower file to the same disk.
cp_time() {
  mkdir -p "$WORK/cp"; drop
  local s=$EPOCHREALTIME; cp "$LOWER/big/f100_$1" "$WORK/cp/f"; sync -f "$WORK/cp/f" 2>/dev/null || true
  local e=$EPOCHREALTIME; rm -f "$WORK/cp/f"
  awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}'
}

# chmod of a 100 MiB lower file through unionmount: sets CHMOD_BYTES to the bytes of data the upper
# copy holds afterwards (not run in a subshell, so the trap knows its mount).
chmod_bytes() {
  local m=$WORK/mnt/cairn-chmod f
  mount_target cairn "$m"
  f=big/f100_5
  chmod 0600 "$m/$f"
  local blocks; blocks=$(stat -c %b "$WORK/upper/$f")
  [ "$(stat -c %a "$m/$f")" = 600 ] || echo "# warning: chmod through unionmount not visible" >&2
  umount_target "$m"
  CHMOD_BYTES=$((blocks * 512))
}

for ((round = 1; round <= ROUNDS; round++)); do
  r=$(( (round - 1) % 4 + 1 ))   # f100_1..4 for copy-up rounds; f100_5 is the chmod file
  for t in $TARGETS; do
    m=$WORK/mnt/$t
    echo "# round $round: $t" >&2
    mount_target "$t" "$m"
    bash "$SHARED/unionbench.sh" "$m" "$r" | sed "s/^/$t\t$round\t/" | tee -a "$RES/all.tsv" >&2
    umount_target "$m"
  done
  printf 'cp\t%s\tcp_100M\t%s\ts\n' "$round" "$(cp_time $r)" | tee -a "$RES/all.tsv" >&2
done
CHMOD_BYTES=0
case " $TARGETS " in *" cairn "*) chmod_bytes ;; esac

# ---- report --------------------------------------------------------------------------------------
python3 - "$RES/all.tsv" "$TARGETS" "$CHMOD_BYTES" "$ROUNDS" <<'EOF'
import sys, statistics, re
path, targets, chmod_bytes, rounds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), sys.argv[4]
vals, notes = {}, {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) < 4: continue
    t, case, v = f[0], f[2], f[3]
    case = re.sub(r"^tar_[^_]+_", "tar_", case)
    try: vals.setdefault((t, case), []).append(float(v))
    except ValueError: pass
    if len(f) > 5 and "errors=" in f[5]:
        notes[(t, case)] = f[5]
def med(t, c):
    v = vals.get((t, c)); return statistics.median(v) if v else None
def walk(t, mode):
    a, b = med(t, "walk_find_count_" + mode), med(t, "walk_find_ls_" + mode)
    return None if a is None or b is None else a + b
cases = [("walk_cold", "s", lambda t: walk(t, "cold")), ("walk_warm", "s", lambda t: walk(t, "warm")),
         ("tar_cold", "s", lambda t: med(t, "tar_cold")), ("tar_warm", "s", lambda t: med(t, "tar_warm")),
         ("seqread_cold", "MiB/s", lambda t: med(t, "seqread_512M_cold")),
         ("seqread_warm", "MiB/s", lambda t: med(t, "seqread_512M_warm")),
         ("copyup_100M", "s", lambda t: med(t, "copyup_append_100M")),
         ("create_5000", "files/s", lambda t: med(t, "create_5000x4K")),
         ("delete_5000", "files/s", lambda t: med(t, "delete_5000_lower")),
         ("rename_dir", "s", lambda t: med(t, "rename_lower_dir"))]
def fmt(x): return "-" if x is None else ("%.0f" % x if x >= 100 else "%.3g" % x)
print("union-vs-peers: medians of %s round(s); lower = mklower.sh layer; walk = find -type f + find -ls" % rounds)
print("| case | unit | " + " | ".join(targets) + " |")
print("|---|---|" + "---:|" * len(targets))
for name, unit, get in cases:
    print("| %s | %s | %s |" % (name, unit, " | ".join(fmt(get(t)) for t in targets)))
print("| cp_100M (same disk) | s | %s |" % fmt(med("cp", "cp_100M")))
def ok(t, c): return re.search(r"errors=(none|0)\b", notes.get((t, c), "errors=none")) is not None
for (t, c), n in sorted(notes.items()):
    if not ok(t, c): print("# %s %s: %s" % (t, c, n))
def ratio(num, den):
    return "NA" if num is None or den is None or den == 0 or num == 0 else "%.2f" % (num / den)
def time_ratio(peer, get): return ratio(get(peer) if peer in targets else None, get("cairn"))
def rate_ratio(peer, get): return ratio(get("cairn"), get(peer) if peer in targets else None)
def best_fuse(c):
    rates = [med(t, c) for t in ("fovl", "unionfs", "mergerfs") if t in targets and med(t, c) and ok(t, c)]
    return max(rates) if rates else None
get_walk_cold, get_walk_warm = cases[0][2], cases[1][2]
r = {
  "walk_cold_vs_fuseovl": time_ratio("fovl", get_walk_cold),
  "walk_warm_vs_fuseovl": time_ratio("fovl", get_walk_warm),
  "tar_vs_fuseovl": time_ratio("fovl", lambda t: med(t, "tar_warm")),
  "seqread_warm_vs_kovl": rate_ratio("ovl", lambda t: med(t, "seqread_512M_warm")),
  "create_vs_best_fuse": ratio(med("cairn", "create_5000x4K"), best_fuse("create_5000x4K")),
  "delete_vs_best_fuse": ratio(med("cairn", "delete_5000_lower"), best_fuse("delete_5000_lower")),
  "copyup_vs_cp": ratio(med("cp", "cp_100M"), med("cairn", "copyup_append_100M")),
}
print("ratios (higher is better for Cairn; targets: walk/tar >= 1.5, create/delete >= 2, seqread >= 0.67, copyup >= 1, chmod 0)")
print("RESULT " + " ".join("%s=%s" % kv for kv in r.items()) + " chmod_copied_bytes=%d" % chmod_bytes)
EOF

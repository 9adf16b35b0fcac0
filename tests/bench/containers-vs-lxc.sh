#!/bin/bash
# containers-vs-lxc.sh — create+start of N containers from one busybox image: Cairn (unionmount root
# over a shared image layer) against LXC's own clones on the same machine, same run.
#
#   sudo tests/bench/containers-vs-lxc.sh [-b BUILD_DIR] [-w WORKDIR] [-n "10 50"]
#
# Targets, each from the same busybox rootfs (clusterctl image build-busybox):
#   cairn    clusterctl container create cI --image bb --start     (one clusterd as the store)
#   overlay  lxc-copy -s -B overlayfs of a base container, then lxc-start  (kernel overlay snapshot)
#   copy     lxc-copy (full copy of the rootfs), then lxc-start
# For each N: wall time of create+start of all N (sequential), disk added (du of the per-container
# directories), and for Cairn the bytes of base files copied into writable layers (copy-ups).
# Prints a table and, as the LAST line:
#   RESULT start10_vs_overlay_clone=X start50_vs_overlay_clone=X kib_per_container=N base_bytes_copied=N
# (time ratio Cairn / overlay clone, lower is better; KiB of disk per fresh Cairn container; base bytes
# copied by N fresh Cairn containers). Every container is stopped and destroyed and every mount removed
# in an EXIT trap, also on failure. Needs root, lxc, busybox-static, rsync (lxc-copy uses it).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$REPO/build
WORK=${TMPDIR:-/var/tmp}/containers-vs-lxc.$$
COUNTS="10 50"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while getopts "b:w:n:h" opt; do
  case $opt in b) BUILD=$OPTARG ;; w) WORK=$OPTARG ;; n) COUNTS=$OPTARG ;; *) usage ;; esac
done
[ "$(id -u)" = 0 ] || { echo "containers-vs-lxc.sh: needs root" >&2; exit 1; }
for tool in "$BUILD/bin/clusterd" "$BUILD/bin/clusterctl" "$BUILD/bin/unionmount" /usr/bin/lxc-copy /bin/busybox /usr/bin/rsync; do
  [ -x "$tool" ] || { echo "containers-vs-lxc.sh: $tool missing (build clusterd clusterctl unionmount; apt-get install lxc busybox-static rsync: lxc-copy copies with rsync)" >&2; exit 1; }
done

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LXCPATH=$WORK/lxc
export CAIRN_IMAGE_ROOT=$WORK/images CAIRN_CONTAINER_ROOT=$WORK/cairn CAIRN_HOST=bench
export CAIRN_UNIONMOUNT=$BUILD/bin/unionmount
STORE_PID=""
ENDPOINT=""

cleanup() {
  set +e
  for dir in "$CAIRN_CONTAINER_ROOT"/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    "$BUILD/bin/clusterctl" --endpoints "$ENDPOINT" container rm -f "$name" --grace 0 >/dev/null 2>&1 ||
      { lxc-stop -k -n "$name" -P "$CAIRN_CONTAINER_ROOT" >/dev/null 2>&1; umount -l "$dir/rootfs" 2>/dev/null; }
  done
  for dir in "$LXCPATH"/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    lxc-stop -k -n "$name" -P "$LXCPATH" >/dev/null 2>&1
    lxc-destroy -n "$name" -P "$LXCPATH" >/dev/null 2>&1
  done
  [ -n "$STORE_PID" ] && kill "$STORE_PID" 2>/dev/null && wait "$STORE_PID" 2>/dev/null
  if grep -q " $WORK/" /proc/self/mounts; then
    echo "containers-vs-lxc.sh: mounts left under $WORK, not removing it" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
ctl() { "$BUILD/bin/clusterctl" --endpoints "$ENDPOINT" "$@"; }

# ---- the store and the image ------------------------------------------------------------------
PEER=$(free_port); CLIENT=$(free_port)
ENDPOINT=127.0.0.1:$CLIENT
cat > "$WORK/n1.yaml" <<YAML
name: n1
data_dir: $WORK/n1
role: voter
peer_address: 127.0.0.1:$PEER
client_address: 127.0.0.1:$CLIENT
initial_cluster:
  - name: n1
    peer_address: 127.0.0.1:$PEER
log:
  level: warn
YAML
"$BUILD/bin/clusterd" --config "$WORK/n1.yaml" > "$WORK/clusterd.log" 2>&1 &
STORE_PID=$!
for _ in $(seq 1 300); do ctl kv put bench-probe 1 >/dev/null 2>&1 && break; sleep 0.1; done
ctl image build-busybox bb >/dev/null
BASE=$CAIRN_IMAGE_ROOT/layers/bb
BASE_BYTES=$(du -sb "$BASE" | cut -f1)

# ---- LXC's base container: the same rootfs as a plain directory --------------------------------
mkdir -p "$LXCPATH/base"
cp -a "$BASE" "$LXCPATH/base/rootfs"
cat > "$LXCPATH/base/config" <<CONF
lxc.include = /usr/share/lxc/config/common.conf
lxc.uts.name = base
lxc.rootfs.path = dir:$LXCPATH/base/rootfs
lxc.net.0.type = empty
lxc.signal.halt = SIGUSR1
lxc.init.cmd = /sbin/init
lxc.autodev = 1
lxc.tty.max = 1
CONF

run_cairn() {  # N -> seconds
  local start; start=$(now)
  for i in $(seq 1 "$1"); do ctl container create "c$1-$i" --image bb --start >/dev/null; done
  echo "$(now) - $start" | bc
}
run_lxc() {  # N MODE(overlay|copy) -> seconds
  local start; start=$(now)
  local name
  for i in $(seq 1 "$1"); do
    if [ "$2" = overlay ]; then
      name=o$1-$i
      lxc-copy -n base -N "$name" -P "$LXCPATH" -s -B overlayfs >/dev/null
    else
      name=f$1-$i
      lxc-copy -n base -N "$name" -P "$LXCPATH" >/dev/null
    fi
    lxc-start -n "$name" -P "$LXCPATH" >/dev/null
  done
  echo "$(now) - $start" | bc
}
kib_of() { du -sk "$@" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }

declare -A RATIO
KIB_PER=0
COPIED=0
printf '%-6s %-9s %10s %12s\n' N target seconds disk_KiB
for n in $COUNTS; do
  cairn_s=$(run_cairn "$n")
  cairn_kib=$(kib_of "$CAIRN_CONTAINER_ROOT"/c"$n"-*/upper)
  overlay_s=$(run_lxc "$n" overlay)
  overlay_kib=$(kib_of "$LXCPATH"/o"$n"-*)
  copy_s=$(run_lxc "$n" copy)
  copy_kib=$(kib_of "$LXCPATH"/f"$n"-*)
  printf '%-6s %-9s %10.2f %12s\n' "$n" cairn "$cairn_s" "$cairn_kib" "$n" overlay "$overlay_s" "$overlay_kib" \
    "$n" copy "$copy_s" "$copy_kib"
  RATIO[$n]=$(printf "%.2f" "$(echo "scale=4; $cairn_s / $overlay_s" | bc)")
  if [ "$n" = "$(echo "$COUNTS" | awk '{print $1}')" ]; then
    KIB_PER=$((cairn_kib / n))
    # Copy-ups: regular files in the writable layers that also exist in the base.
    COPIED=0
    for upper in "$CAIRN_CONTAINER_ROOT"/c"$n"-*/upper; do
      while IFS= read -r -d '' file; do
        rel=${file#"$upper"/}
        [ -f "$BASE/$rel" ] && COPIED=$((COPIED + $(stat -c %s "$file")))
      done < <(find "$upper" -type f -print0)
    done
  fi
done
echo "base image: $BASE_BYTES bytes; a full copy per container writes that much again"
echo "RESULT start10_vs_overlay_clone=${RATIO[10]:-NA} start50_vs_overlay_clone=${RATIO[50]:-NA} kib_per_container=$KIB_PER base_bytes_copied=$COPIED"

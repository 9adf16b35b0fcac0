#!/usr/bin/env bash
# Removes everything deploy/local/up.sh made: containers (stopped through LXC inside their host's
# network namespace, made by clusterctl or by the host's container agent), mounts (the mount agents'
# volume mounts, unions, container roots), every process of every host (clusterd, cairn-mount,
# unionmount, LXC monitors; the security step's intruder host too), the host namespaces, the switch
# and the state directory (keys, join and API tokens included). Safe to run twice, and after a
# partial up.sh.
#
#   deploy/local/down.sh [--keep-state]   --keep-state keeps CAIRN_STATE_DIR (configs, logs, data)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/deploy/local/hosts.sh"
keep_state=0
[[ ${1:-} == --keep-state ]] && keep_state=1

host_numbers() {
  local dir ns
  for dir in "$CAIRN_STATE_DIR"/host*; do [[ -d $dir ]] && echo "${dir##*/host}"; done
  ip netns list | awk '{print $1}' | while read -r ns; do
    [[ $ns =~ ^${CAIRN_HOST_PREFIX}([0-9]+)$ ]] && echo "${BASH_REMATCH[1]}"
  done
}

for n in $(host_numbers | sort -un); do
  stop_host "$n"   # clusterd first, so its agents do not restart what is stopped next
  # Containers made by clusterctl on the host (containers/) and by its container agent (data/containers/).
  for croot in "$CAIRN_STATE_DIR/host$n/containers" "$CAIRN_STATE_DIR/host$n/data/containers"; do
    [[ -d $croot ]] && ns_exists "$(host_ns "$n")" || continue
    for c in "$croot"/*/config; do
      [[ -f $c ]] || continue
      name=$(basename "$(dirname "$c")")
      host_exec "$n" lxc-stop -P "$croot" -n "$name" -k >/dev/null 2>&1 && echo "down.sh: stopped container $name on host$n"
    done
  done
  pids=$(host_pids "$n")
  if [[ -n $pids ]]; then
    kill -9 $pids 2>/dev/null
    echo "down.sh: killed the remaining processes of host$n: $(echo $pids)"
  fi
done
# Unionmount and cairn-mount processes that were started outside a host namespace (none by up.sh, but
# a user may have): the mounts below the state directory go, which ends their FUSE processes.
unmount_all "$CAIRN_STATE_DIR"
for n in $(host_numbers | sort -un); do delete_host "$n"; done
delete_switch
if ((keep_state)); then
  echo "down.sh: local hosts removed (state kept in $CAIRN_STATE_DIR)"
else
  if [[ -d $CAIRN_STATE_DIR ]] && ! awk -v d="$CAIRN_STATE_DIR" 'index($2, d "/") == 1 {f=1} END {exit !f}' /proc/self/mounts; then
    rm -rf "$CAIRN_STATE_DIR"
  fi
  echo "down.sh: local hosts removed, $CAIRN_STATE_DIR deleted"
fi

# Part C of the workflow on the local hosts, narrated: volume gv0 from the applied cluster.yaml
# (replica 3, one brick per storage host), mounted by the mount agents of the first two storage hosts
# (one cairn-mount each, in the host's network namespace). Part C waits until the volume is in sync
# and both mounts are up, writes a file on one host and reads it on the other, kills -9 every process
# of the volume primary's host, keeps writing through a surviving mount, restarts the host, polls the
# heal until every replica is in sync, compares the bricks, and (when the host had a mount) waits for
# its mount agent to mount the volume again. Sourced by up.sh after the apply (needs HOSTS >= 3,
# CAIRN_BIN and hosts.sh's functions).

VOL=${CAIRN_VOLUME:-gv0}
STORAGE=()
for ((n = 1; n <= HOSTS; n++)); do [[ $(host_role "$n") == witness ]] || STORAGE+=("$n"); done
MOUNT_HOSTS=("${STORAGE[@]:0:2}")

brick_dir() { echo "$CAIRN_STATE_DIR/host$1/bricks/$VOL"; }
mount_dir() { echo "$CAIRN_STATE_DIR/host$1/mnt/$VOL"; }

# mount_state_is N STATE: true when host N's mount agent reports STATE (mounted, backoff, ...) for its
# mount of the volume, and, for mounted, the mount answers.
mount_state_is() {
  ctl 1 --timeout 3s describe mount "host$1:$(mount_dir "$1")" 2>/dev/null | grep -q "^  state: $2\$" || return 1
  [[ $2 != mounted ]] || timeout 5 stat "$(mount_dir "$1")" >/dev/null
}

# volume_primary_host: the number of the host whose brick the volume status names primary.
volume_primary_host() {
  ctl 1 --timeout 3s volume status "$VOL" 2>/dev/null |
    awk '$4 == "primary" { split($2, a, ":"); sub("host", "", a[1]); print a[1]; exit }'
}

# volume_in_sync: true when every brick of the volume is in sync and served (heal status says so).
volume_in_sync() {
  local out
  out=$(ctl 1 --timeout 3s volume heal "$VOL" status 2>/dev/null) || return 1
  [[ -n $out ]] && ! grep -Eq 'out-of-sync|healing|failed' <<<"$out" &&
    [[ $(grep -c 'in-sync' <<<"$out") -ge 3 ]]
}

# brick_digest DIR: one line naming every entry of a brick (its own .cairn index left out) with its
# type, mode and, for files, content checksum; equal lines mean identical replicas.
brick_digest() {
  (cd "$1" && find . -path ./.cairn -prune -o -mindepth 1 -printf '%y %m %p\n' | sort |
    while read -r type mode path; do
      if [[ $type == f ]]; then
        echo "$type $mode $path $(sha256sum <"$path" | cut -c1-16)"
      else
        echo "$type $mode $path"
      fi
    done) | sha256sum | cut -c1-16
}

echo
echo "== Part C: the replicated volume $VOL (from the file) =="
echo "part C: waiting until $VOL is started with every brick in sync, and the mount agents of host${MOUNT_HOSTS[0]} and host${MOUNT_HOSTS[1]} have mounted it"
wait_until 90 "volume $VOL to be in sync" volume_in_sync || exit 1
for n in "${MOUNT_HOSTS[@]}"; do
  wait_until 90 "host$n's mount of $VOL at $(mount_dir "$n")" mount_state_is "$n" mounted || exit 1
done
echo "part C: \$ clusterctl volume info $VOL"
ctl 1 volume info "$VOL"
echo "part C: \$ clusterctl volume status $VOL"
ctl 1 volume status "$VOL"
for n in "${MOUNT_HOSTS[@]}"; do
  echo "part C: \$ clusterctl describe mount host$n:$(mount_dir "$n")"
  ctl 1 describe mount "host$n:$(mount_dir "$n")"
done
grep "$(mount_dir "${MOUNT_HOSTS[0]}")\|$(mount_dir "${MOUNT_HOSTS[1]}")" /proc/self/mounts | sed 's/^/  \/proc\/mounts: /'

writer=${MOUNT_HOSTS[0]}
reader=${MOUNT_HOSTS[1]}
echo "part C: host$writer writes hello.txt through its mount; host$reader reads it through its own:"
echo "written on host$writer at $(date -u +%H:%M:%S)" >"$(mount_dir "$writer")/hello.txt"
echo "  \$ cat $(mount_dir "$reader")/hello.txt"
echo "  $(cat "$(mount_dir "$reader")/hello.txt")"

victim=$(volume_primary_host)
victim=${victim:-${STORAGE[2]}}
if ((victim == MOUNT_HOSTS[0])); then writer=${MOUNT_HOSTS[1]} reader=${MOUNT_HOSTS[0]}; fi
# The whole host goes (kill_host: clusterd, its cairn-mount, container unions and LXC monitors), as
# if it lost power. Killing only clusterd would not do here: the processes its container agent starts
# (unionmount, the containers' cairn-mount) inherit clusterd's listening sockets (no close-on-exec),
# so a new clusterd could not bind its ports while they run (a product bug, reported).
echo "part C: host$victim holds the primary brick; kill -9 of every process of host$victim: $(echo $(host_pids "$victim"))"
started_ns=$(date +%s%N)
kill_host "$victim"
wait_until 10 "host$victim's clusterd to exit" eval '! clusterd_alive '"$victim"
echo "while host$victim is down" >"$(mount_dir "$writer")/during-outage.txt"
elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
echo "part C: host$writer wrote during-outage.txt through its mount, done ${elapsed_ms} ms after the kill (the write waited for the take-over)"
for i in $(seq 1 20); do
  head -c $((i * 4096)) /dev/urandom >"$(mount_dir "$writer")/file-$i.bin"
done
echo "part C: and 20 more files (file-1.bin .. file-20.bin) through host$writer's mount"
echo "part C: \$ clusterctl volume status $VOL   (host$victim's brick is down and out of the in-sync set)"
ctl "$writer" volume status "$VOL" || true
echo "part C: \$ clusterctl volume heal $VOL status"
ctl "$writer" volume heal "$VOL" status || true

echo "part C: host$victim comes back (clusterd with its data dir); its brick is healed from the new primary and readmitted"
start_host "$victim"
deadline=$((SECONDS + 120))
last=""
until volume_in_sync; do
  out=$(ctl "$writer" --timeout 3s volume heal "$VOL" status 2>/dev/null || true)
  [[ $out != "$last" ]] && echo "$out"
  last=$out
  if ((SECONDS >= deadline)); then
    echo "part C: the volume did not get back in sync within 120 s" >&2
    exit 1
  fi
  sleep 1
done
echo "part C: in sync again:"
ctl 1 volume heal "$VOL" status
ctl 1 volume status "$VOL"
echo "part C: the three bricks compared (every path, mode and file checksum, the brick's own index left out):"
for n in "${STORAGE[@]:0:3}"; do
  echo "  host$n $(brick_dir "$n"): $(brick_digest "$(brick_dir "$n")") ($(find "$(brick_dir "$n")" -path '*/.cairn' -prune -o -type f -print | wc -l) files)"
done
if [[ " ${MOUNT_HOSTS[*]} " == *" $victim "* ]]; then
  echo "part C: host$victim's mount agent mounts $VOL again (its cairn-mount died with the host):"
  wait_until 90 "host$victim's mount of $VOL" mount_state_is "$victim" mounted || exit 1
  ctl 1 describe mount "host$victim:$(mount_dir "$victim")"
fi
echo "part C: host$reader reads what host$writer wrote while host$victim was down:"
echo "  \$ cat $(mount_dir "$reader")/during-outage.txt"
echo "  $(cat "$(mount_dir "$reader")/during-outage.txt")"
echo "== Part C done =="

# Part C of the workflow on the local hosts, narrated: a replica-3 volume over a directory on each host,
# mounted on host1 and host2 (cairn-mount runs in the host's network namespace), a file written on one
# host and read on the other, the volume primary's host killed -9 and the volume still working through
# a surviving mount, the host back and healed until every replica is in sync, the bricks compared.
# Sourced by up.sh after Part A (needs HOSTS >= 3, CAIRN_BIN and hosts.sh's functions).

VOL=${CAIRN_VOLUME:-vol0}

brick_dir() { echo "$CAIRN_STATE_DIR/host$1/bricks/$VOL"; }
mount_dir() { echo "$CAIRN_STATE_DIR/host$1/mnt/$VOL"; }

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
    [[ $(grep -c 'in-sync' <<<"$out") -ge $HOSTS ]]
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
echo "== Part C: a replicated volume =="
bricks=()
for ((n = 1; n <= 3; n++)); do
  mkdir -p "$(brick_dir "$n")" "$(mount_dir "$n")"
  bricks+=("host$n:$(brick_dir "$n")")
done
echo "part C: \$ clusterctl volume create $VOL replica 3 ${bricks[*]}"
ctl 1 volume create "$VOL" replica 3 "${bricks[@]}"
echo "part C: \$ clusterctl volume start $VOL   (returns once every brick is served and the set has a primary)"
ctl 1 volume start "$VOL" --wait 60s
ctl 1 volume info "$VOL"
ctl 1 volume status "$VOL"

for n in 1 2; do
  echo "part C: host$n mounts it: \$ clusterctl mount $VOL $(mount_dir "$n")"
  ctl "$n" mount "$VOL" "$(mount_dir "$n")" --wait 60s
done
echo "part C: host1 writes hello.txt; host2 reads it through its own mount:"
echo "written on host1 at $(date -u +%H:%M:%S)" >"$(mount_dir 1)/hello.txt"
sync -f "$(mount_dir 1)/hello.txt" 2>/dev/null || true
echo "  \$ cat $(mount_dir 2)/hello.txt"
echo "  $(cat "$(mount_dir 2)/hello.txt")"

victim=$(volume_primary_host)
victim=${victim:-3}
writer=1
((victim == 1)) && writer=2
reader=$((writer == 1 ? 2 : 1))
echo "part C: host$victim holds the primary brick; kill -9 of its clusterd (pid $(cat "$CAIRN_STATE_DIR/host$victim/clusterd.pid"))"
started_ns=$(date +%s%N)
kill -9 "$(cat "$CAIRN_STATE_DIR/host$victim/clusterd.pid")"
wait_until 10 "host$victim's clusterd to exit" eval '! clusterd_alive '"$victim"
echo "while host$victim is down" >"$(mount_dir "$writer")/during-outage.txt"
elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
echo "part C: host$writer wrote during-outage.txt through its mount, done ${elapsed_ms} ms after the kill (the write waited for the take-over)"
for i in $(seq 1 20); do
  head -c $((i * 4096)) /dev/urandom >"$(mount_dir "$writer")/file-$i.bin"
done
echo "part C: and 20 more files (file-1.bin .. file-20.bin); host$reader reads during-outage.txt: $(cat "$(mount_dir "$reader")/during-outage.txt")"
ctl "$writer" volume status "$VOL" || true
ctl "$writer" volume heal "$VOL" status || true

echo "part C: host$victim comes back; its brick is healed from the new primary and readmitted"
start_host "$victim"
deadline=$((SECONDS + 120))
last=""
until volume_in_sync; do
  out=$(ctl 1 --timeout 3s volume heal "$VOL" status 2>/dev/null || true)
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
for n in 1 2 3; do
  echo "  host$n $(brick_dir "$n"): $(brick_digest "$(brick_dir "$n")") ($(find "$(brick_dir "$n")" -path '*/.cairn' -prune -o -type f -print | wc -l) files)"
done
echo "== Part C done =="

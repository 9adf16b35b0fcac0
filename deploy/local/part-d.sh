# Part D of the workflow, narrated: containers c1 and c2 of the applied cluster.yaml run on host1 on
# image base (built by apply from Debian's busybox-static, no download), started by host1's container
# agent; Part D waits until both run, shows them sharing volume gv0 (c1 writes, c2 reads read-only,
# host2's mount sees the file) and image base (`image show`), then experiment 1 (the union of two
# containers' data directories bound read-only into a third) and experiment 2 (a container layered
# over another's root, then a read-only one), made with imperative verbs and removed afterwards, so
# the cluster is back to the file's desired state. Sourced by up.sh after Part C (needs CAIRN_BIN and
# hosts.sh's functions). When LXC cannot run containers here, Part D says so and fails.

DHOST=1                                  # the host the containers run on (the file's c1 and c2)
export CAIRN_HOST=host$DHOST CAIRN_CONTAINER_ROOT="$CAIRN_STATE_DIR/host$DHOST/containers"
mkdir -p "$CAIRN_CONTAINER_ROOT"
EXPERIMENTS=(frozen1 over1 reader web2 web1)   # removal order: users of a root or a union first

# part_d_say ARGS...: prints the command line, quoting the arguments that need it.
part_d_say() {
  local line="part D: \$ clusterctl" arg
  for arg in "$@"; do
    if [[ $arg =~ [^A-Za-z0-9_./:=,-] ]]; then line+=" '$arg'"; else line+=" $arg"; fi
  done
  echo "$line"
}
part_d() { part_d_say "$@"; ctl "$DHOST" "$@"; }

# containers_running NAME...: true when `container list` shows every NAME running.
containers_running() {
  local out name
  out=$(ctl "$DHOST" --timeout 3s container list 2>/dev/null) || return 1
  for name in "$@"; do
    awk -v c="$name" '$1 == c && tolower($3) == "running" { f = 1 } END { exit !f }' <<<"$out" || return 1
  done
}

part_d_applied() {
  echo
  echo "== Part D: containers sharing image base and volume gv0 (from the file, on host$DHOST) =="
  echo "part D: waiting until host$DHOST's container agent runs c1 and c2"
  # After Part C killed the host, the agent starts them again by itself (with a backoff).
  if ! wait_until 90 "containers c1 and c2 to run" containers_running c1 c2; then
    echo "part D: the container agent did not bring c1 and c2 back on host$DHOST" >&2
    ctl "$DHOST" container list >&2 || true
    return 1
  fi
  part_d container list
  part_d container exec c1 -- sh -c 'echo "written by c1 into volume gv0" > /data/from-c1.txt && ls /data | head -3'
  part_d container exec c2 -- sh -c 'cat /data/from-c1.txt; ls -d /shared; touch /data/x' || true
  echo "part D: the same file through host2's mount of gv0:"
  echo "  \$ cat $CAIRN_STATE_DIR/host2/mnt/gv0/from-c1.txt"
  echo "  $(cat "$CAIRN_STATE_DIR/host2/mnt/gv0/from-c1.txt")"
  part_d image show base
}

part_d_experiments() {
  local c
  for c in web1 web2; do
    part_d container create "$c" --image base --start --wait 60 || return 1
    part_d container exec "$c" -- sh -c "mkdir -p /data && echo 'hello from $c' > /data/$c.txt && ls /data"
  done
  echo "part D: experiment 1: the data directories of web1 and web2 as one union, bound read-only into a new container, reader"
  local up1="$CAIRN_CONTAINER_ROOT/web1/upper/data" up2="$CAIRN_CONTAINER_ROOT/web2/upper/data"
  SHARED="$CAIRN_STATE_DIR/host$DHOST/shared-data"
  mkdir -p "$SHARED"
  part_d union mount -b "$up1=ro" -b "$up2=ro" "$SHARED" || return 1
  part_d container create reader --image base --bind "$SHARED:/shared:ro" --start --wait 60 || return 1
  part_d container exec reader -- sh -c 'ls /shared; cat /shared/*.txt'

  echo "part D: experiment 2: a container over web1's root sees web1's files; its writes stay its own"
  part_d container create over1 --rootfs-from web1 --start --wait 60 || return 1
  part_d container exec over1 -- sh -c 'cat /data/web1.txt; echo changed-by-over1 > /data/web1.txt; cat /data/web1.txt'
  part_d container exec web1 -- cat /data/web1.txt
  part_d container create frozen1 --rootfs-from web1 --read-only --start --wait 60 || return 1
  part_d container exec frozen1 -- sh -c 'touch /data/x' || true
  part_d image show base
}

# part_d_cleanup: removes the experiments' containers and union (they are not in the file).
part_d_cleanup() {
  local c
  echo "part D: the experiments' containers and union are removed (the file does not list them):"
  for c in "${EXPERIMENTS[@]}"; do
    ctl "$DHOST" container show "$c" >/dev/null 2>&1 || continue
    part_d container rm --force --grace 2 "$c" || return 1
  done
  if mountpoint -q "$SHARED" 2>/dev/null; then part_d union umount "$SHARED"; fi
  part_d container list
}

SHARED="$CAIRN_STATE_DIR/host$DHOST/shared-data"
if ! part_d_applied; then
  echo "part D: the applied containers did not run (see above)" >&2
  exit 1
fi
part_d_experiments || echo "part D: an experiment failed (see above)" >&2
part_d_cleanup || { echo "part D: could not remove the experiments" >&2; exit 1; }
echo "== Part D done =="

# Part D of the workflow on host1, narrated: a busybox image built (no download), three containers
# sharing it (each writes only to its own layer), `image show` with the sharing, experiment 1 (the
# union of two containers' data directories bound into a third) and experiment 2 (a container layered
# over another's root, then a read-only one). Sourced by up.sh after Part C (needs CAIRN_BIN and
# hosts.sh's functions). Containers are LXC through liblxc; when LXC cannot start one here, Part D
# says so and stops without failing the rest.

export CAIRN_IMAGE_ROOT="$CAIRN_STATE_DIR/images"
DHOST=1                                  # the host the containers run on
export CAIRN_HOST=host$DHOST CAIRN_CONTAINER_ROOT="$CAIRN_STATE_DIR/host$DHOST/containers"
mkdir -p "$CAIRN_IMAGE_ROOT" "$CAIRN_CONTAINER_ROOT"

# part_d_say ARGS...: prints the command line, quoting the arguments that need it.
part_d_say() {
  local line="part D: \$ clusterctl" arg
  for arg in "$@"; do
    if [[ $arg =~ [^A-Za-z0-9_./:=,-] ]]; then line+=" '$arg'"; else line+=" $arg"; fi
  done
  echo "$line"
}
part_d() { part_d_say "$@"; ctl "$DHOST" "$@"; }

part_d_run() {
  echo
  echo "== Part D: containers sharing one image (on host$DHOST) =="
  if ctl "$DHOST" image show busybox >/dev/null 2>&1; then
    echo "part D: image busybox exists already"
  else
    part_d image build-busybox busybox || return 1
  fi
  local c
  for c in web1 web2 web3; do
    if ctl "$DHOST" container show "$c" >/dev/null 2>&1; then
      echo "part D: container $c exists already"
      continue
    fi
    if ! part_d container create "$c" --image busybox --start --wait 60; then
      echo "part D: LXC could not start a container here; the rest of Part D is skipped" >&2
      return 1
    fi
  done
  for c in web1 web2 web3; do
    part_d container exec "$c" -- sh -c "mkdir -p /data && echo 'hello from $c' > /data/$c.txt && ls /data"
  done
  part_d container list
  part_d image show busybox
  part_d container show web1

  echo "part D: experiment 1: the data directories of web1 and web2 as one union, bound read-only into a fourth container, reader"
  local up1="$CAIRN_CONTAINER_ROOT/web1/upper/data" up2="$CAIRN_CONTAINER_ROOT/web2/upper/data"
  local shared="$CAIRN_STATE_DIR/host$DHOST/shared-data"
  mkdir -p "$shared"
  if ! mountpoint -q "$shared"; then
    part_d union mount -b "$up1=ro" -b "$up2=ro" "$shared"
  fi
  if ! ctl "$DHOST" container show reader >/dev/null 2>&1; then
    part_d container create reader --image busybox --bind "$shared:/shared:ro" --start --wait 60
  fi
  part_d container exec reader -- sh -c 'ls /shared; cat /shared/*.txt'

  echo "part D: experiment 2: a container over web1's root sees web1's files; its writes stay its own"
  if ! ctl "$DHOST" container show over1 >/dev/null 2>&1; then
    part_d container create over1 --rootfs-from web1 --start --wait 60
  fi
  part_d container exec over1 -- sh -c 'cat /data/web1.txt; echo changed-by-over1 > /data/web1.txt; cat /data/web1.txt'
  part_d container exec web1 -- cat /data/web1.txt
  if ! ctl "$DHOST" container show frozen1 >/dev/null 2>&1; then
    part_d container create frozen1 --rootfs-from web1 --read-only --start --wait 60
  fi
  part_d container exec frozen1 -- sh -c 'touch /data/x' || true
  part_d image show busybox
  echo "== Part D done =="
}

part_d_run || echo "part D: stopped early (see above)" >&2

# The security step of the workflow, narrated: the cluster formed by form_cluster authenticates every
# peer, so an intruder host (netns PREFIX(HOSTS+1), data in DIR/intruder) is refused twice:
#   1. it tries to join with a forged token (a real token id, a made-up secret): its clusterd exits 1
#      with clusterd.join_refused, host1 logs auth.join_refused;
#   2. it starts without the key, from a static config that names host1 as a fellow founder: host1's
#      peer port refuses every connection of it (net.unauthenticated) and the store keeps its members.
# Then the intruder is removed. Sourced by up.sh after form_cluster (needs HOSTS, CAIRN_BIN, hosts.sh).

INTRUDER=$((HOSTS + 1))
INTRUDER_DIR="$CAIRN_STATE_DIR/intruder"

# intruder_yaml MODE: the intruder's node.yaml; MODE join (forged token) or static (no key).
intruder_yaml() {
  {
    printf 'name: intruder\ndata_dir: %s/data\n' "$INTRUDER_DIR"
    printf 'peer_address: %s:2380\nclient_address: %s:2379\n' "$(host_ip "$INTRUDER")" "$(host_ip "$INTRUDER")"
    if [[ $1 == join ]]; then
      local id
      id=$(cut -d. -f2 "$CAIRN_STATE_DIR/join.token")
      printf 'join:\n  address: %s:2379\n  token: cairn1.%s.%s\n' "$(host_ip 1)" "$id" "0123456789abcdef0123456789abcdef"
    else
      printf 'initial_cluster:\n  - name: host1\n    peer_address: %s:2380\n' "$(host_ip 1)"
      printf '  - name: intruder\n    peer_address: %s:2380\nauth:\n  peer: off\n' "$(host_ip "$INTRUDER")"
    fi
    printf 'log:\n  level: info\n  format: text\n  file: %s/clusterd.log\n' "$INTRUDER_DIR"
  } >"$INTRUDER_DIR/node.yaml"
}

# intruder_start: starts the intruder's clusterd in its namespace, detached; prints its pid.
intruder_start() {
  rm -rf "$INTRUDER_DIR/data"
  : >"$INTRUDER_DIR/clusterd.log"
  setsid nsenter --net="/run/netns/$(host_ns "$INTRUDER")" -- "$CAIRN_BIN/clusterd" --config "$INTRUDER_DIR/node.yaml" \
    >>"$INTRUDER_DIR/clusterd.out" 2>&1 </dev/null &
  local pid=$!
  disown "$pid"
  echo "$pid"
}

# show_line FILE PATTERN: the first line of FILE matching PATTERN, shortened for the screen.
show_line() { grep -m1 "$2" "$1" | cut -c1-260 | sed 's/^/  /'; }

part_security_run() {
  echo
  echo "== Security: a host without the cluster key is refused =="
  mkdir -p "$INTRUDER_DIR"
  create_host "$INTRUDER"
  echo "security: intruder host (netns $(host_ns "$INTRUDER"), $(host_ip "$INTRUDER")) on the same switch"

  echo "security: 1. it joins with a forged token (a real token id, a made-up secret):"
  intruder_yaml join
  sed -n '/^join:/,/token:/p' "$INTRUDER_DIR/node.yaml" | sed 's/^/  /'
  local pid mark
  mark=$(wc -l <"$CAIRN_STATE_DIR/host1/clusterd.log")
  pid=$(intruder_start)
  wait_until 30 "the intruder's clusterd to give up" eval "! kill -0 $pid" || return 1
  echo "security: its clusterd exited; its log, then host1's:"
  wait_for_file_line "$INTRUDER_DIR/clusterd.log" "clusterd.join_refused" 10 || return 1
  show_line "$INTRUDER_DIR/clusterd.log" "clusterd.join_refused"
  tail -n +"$((mark + 1))" "$CAIRN_STATE_DIR/host1/clusterd.log" >"$INTRUDER_DIR/host1.log.part"
  show_line "$INTRUDER_DIR/host1.log.part" "auth.join_refused"
  [[ -f $INTRUDER_DIR/data/cluster.key ]] && { echo "security: the intruder got the key!" >&2; return 1; }

  echo "security: 2. it starts without the key, with a static config naming host1 as a fellow founder:"
  intruder_yaml static
  mark=$(wc -l <"$CAIRN_STATE_DIR/host1/clusterd.log")
  pid=$(intruder_start)
  wait_until 30 "host1 to refuse the intruder's connections" \
    eval "tail -n +$((mark + 1)) '$CAIRN_STATE_DIR/host1/clusterd.log' | grep -q 'net.unauthenticated.*$(host_ip "$INTRUDER")'" ||
    return 1
  echo "security: host1's log:"
  tail -n +"$((mark + 1))" "$CAIRN_STATE_DIR/host1/clusterd.log" >"$INTRUDER_DIR/host1.log.part"
  show_line "$INTRUDER_DIR/host1.log.part" "net.unauthenticated.*$(host_ip "$INTRUDER")"
  echo "security: the store's members are still the $HOSTS hosts:"
  ctl 1 member list
  kill -9 "$pid" 2>/dev/null || true
  wait_until 10 "the intruder to exit" eval "! kill -0 $pid"
  delete_host "$INTRUDER"
  rm -rf "$INTRUDER_DIR"
  echo "security: intruder removed"
  echo "== Security done =="
}

part_security_run || {
  echo "security: the refusal was not shown (see above)" >&2
  exit 1
}

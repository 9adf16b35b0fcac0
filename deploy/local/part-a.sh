# Part A of the workflow on the local hosts, narrated: the store comes up with a leader, a key written
# on one host is read on another, the leader is killed -9, a new one is elected and serves writes, the
# killed host comes back and catches up. Sourced by up.sh (needs HOSTS, CAIRN_BIN and hosts.sh).

# part_a_ctl N ENDPOINTS ARGS...: clusterctl inside host N against the given endpoints only.
part_a_ctl() { clusterctl_in "$@"; }

echo
echo "== Part A: the coordination store =="
wait_until 30 "the store to serve on every host" part_a_ctl 1 "$(all_endpoints)" --timeout 2s status
echo "part A: \$ clusterctl status"
part_a_ctl 1 "$(all_endpoints)" status || true  # exits 1 while a member is down
leader=$(leader_host)
echo "part A: host$leader leads"

echo "part A: host1 writes /demo/hello through its own API ($(host_ip 1):2379)"
part_a_ctl 1 "$(host_ip 1):2379" kv put /demo/hello "written on host1"
echo "part A: host2 reads it through its own API ($(host_ip 2):2379):"
part_a_ctl 2 "$(host_ip 2):2379" kv get /demo/hello

if ((HOSTS >= 3)); then
  pid=$(cat "$CAIRN_STATE_DIR/host$leader/clusterd.pid")
  survivor=$((leader % HOSTS + 1))
  echo "part A: kill -9 of the leader's clusterd (host$leader, pid $pid)"
  started_ns=$(date +%s%N)
  kill -9 "$pid"
  wait_until 10 "host$leader's clusterd to exit" eval "! clusterd_alive $leader"
  wait_until 30 "a write after the leader died" part_a_ctl "$survivor" "$(all_endpoints "$leader")" \
    --timeout 1s kv put /demo/after-failover "written while host$leader was down"
  elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
  echo "part A: first successful write ${elapsed_ms} ms after the kill; new leader: host$(leader_host)"
  part_a_ctl "$survivor" "$(all_endpoints)" status || true  # the dead host shows its error

  echo "part A: host$leader comes back with its data dir and key (no token: it joined once) and catches up"
  start_host "$leader"
  wait_until 30 "host$leader to catch up" part_a_ctl "$leader" "$(host_ip "$leader"):2379" \
    --timeout 2s kv get /demo/after-failover
  echo "part A: host$leader reads the key written while it was down:"
  part_a_ctl "$leader" "$(host_ip "$leader"):2379" kv get /demo/after-failover
  part_a_ctl 1 "$(all_endpoints)" status || true
fi
echo "== Part A done =="

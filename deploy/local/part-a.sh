# Part A of the workflow on the local hosts, narrated: the store comes up with a leader, a key written
# on one host is read on another, the leader is killed -9, a new one is elected and serves writes, the
# killed host comes back and catches up. Sourced by up.sh (needs HOSTS, ROOT, start_host, hosts.sh).

part_a_ctl() {  # part_a_ctl N ARGS...: clusterctl run inside host N's network namespace
  local n=$1
  shift
  ip netns exec "$(host_ns "$n")" "$ROOT/build/bin/clusterctl" "$@"
}

part_a_endpoints() {  # all hosts' client addresses except host $1 (0: none left out)
  local n list=""
  for ((n = 1; n <= HOSTS; n++)); do
    ((n == ${1:-0})) && continue
    list+="${list:+,}$(host_ip "$n"):2379"
  done
  echo "$list"
}

part_a_leader() {  # prints the number of the host that says it leads, or nothing
  local n
  for ((n = 1; n <= HOSTS; n++)); do
    if part_a_ctl "$n" --endpoints "$(host_ip "$n"):2379" --timeout 2s status 2>/dev/null |
      awk 'NR == 2 && $3 == "true" { found = 1 } END { exit !found }'; then
      echo "$n"
      return
    fi
  done
}

part_a_dead() { ! clusterd_alive "$1"; }

part_a_wait() {  # part_a_wait SECONDS DESCRIPTION CMD...: retries CMD until it succeeds or time runs out
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "part A: gave up waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

echo
echo "== Part A: the coordination store =="
part_a_wait 30 "the store to serve on every host" part_a_ctl 1 --endpoints "$(part_a_endpoints)" --timeout 2s status
part_a_ctl 1 --endpoints "$(part_a_endpoints)" status
leader=$(part_a_leader)
echo "part A: host$leader leads"

echo "part A: host1 writes /demo/hello through its own API ($(host_ip 1):2379)"
part_a_ctl 1 --endpoints "$(host_ip 1):2379" kv put /demo/hello "written on host1"
echo "part A: host2 reads it through its own API ($(host_ip 2):2379):"
part_a_ctl 2 --endpoints "$(host_ip 2):2379" kv get /demo/hello

if ((HOSTS >= 3)); then
  pid=$(cat "$CAIRN_STATE_DIR/host$leader/clusterd.pid")
  survivor=$((leader % HOSTS + 1))
  echo "part A: kill -9 of the leader's clusterd (host$leader, pid $pid)"
  started_ns=$(date +%s%N)
  kill -9 "$pid"
  part_a_wait 10 "host$leader's clusterd to exit" part_a_dead "$leader"
  part_a_wait 30 "a write after the leader died" part_a_ctl "$survivor" --endpoints "$(part_a_endpoints "$leader")" \
    --timeout 1s kv put /demo/after-failover "written while host$leader was down"
  elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
  echo "part A: first successful write ${elapsed_ms} ms after the kill; new leader: host$(part_a_leader)"
  part_a_ctl "$survivor" --endpoints "$(part_a_endpoints)" status || true  # the dead host shows its error

  echo "part A: host$leader comes back and catches up"
  start_host "$leader"
  part_a_wait 30 "host$leader to catch up" part_a_ctl "$leader" --endpoints "$(host_ip "$leader"):2379" \
    --timeout 2s kv get /demo/after-failover
  echo "part A: host$leader reads the key written while it was down:"
  part_a_ctl "$leader" --endpoints "$(host_ip "$leader"):2379" kv get /demo/after-failover
  part_a_ctl 1 --endpoints "$(part_a_endpoints)" status
fi
echo "== Part A done =="

# Shared helpers for the local multi-host cluster: each "host" is a network namespace cairn-hN with a veth
# into a private switch namespace (cairn-sw) holding a bridge. Nothing touches the root namespace's network.
# Source this file; it defines functions only.

CAIRN_NET_PREFIX=${CAIRN_NET_PREFIX:-10.77.0}
CAIRN_SWITCH_NS=${CAIRN_SWITCH_NS:-cairn-sw}
CAIRN_STATE_DIR=${CAIRN_STATE_DIR:-/var/lib/cairn-local}

host_ns() { echo "cairn-h$1"; }
host_ip() { echo "${CAIRN_NET_PREFIX}.$((10 + $1))"; }

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

create_switch() {
  ns_exists "$CAIRN_SWITCH_NS" && return 0
  ip netns add "$CAIRN_SWITCH_NS"
  ip -n "$CAIRN_SWITCH_NS" link add br0 type bridge
  ip -n "$CAIRN_SWITCH_NS" link set br0 up
  ip -n "$CAIRN_SWITCH_NS" link set lo up
}

# create_host N: namespace cairn-hN with address 10.77.0.(10+N)/24 on eth0, plugged into the switch.
create_host() {
  local n=$1 ns
  ns=$(host_ns "$n")
  ns_exists "$ns" && return 0
  ip netns add "$ns"
  ip link add "cairn-h${n}e" type veth peer name "cairn-h${n}s"
  ip link set "cairn-h${n}e" netns "$ns"
  ip link set "cairn-h${n}s" netns "$CAIRN_SWITCH_NS"
  ip -n "$ns" link set "cairn-h${n}e" name eth0
  ip -n "$ns" addr add "$(host_ip "$n")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$CAIRN_SWITCH_NS" link set "cairn-h${n}s" master br0
  ip -n "$CAIRN_SWITCH_NS" link set "cairn-h${n}s" up
}

# cut_host N / heal_host N: take a host off the network and put it back (its processes keep running).
cut_host() { ip -n "$CAIRN_SWITCH_NS" link set "cairn-h$1s" down; }
heal_host() { ip -n "$CAIRN_SWITCH_NS" link set "cairn-h$1s" up; }

delete_host() {
  local ns
  ns=$(host_ns "$1")
  ns_exists "$ns" && ip netns delete "$ns"
  return 0
}

delete_switch() {
  ns_exists "$CAIRN_SWITCH_NS" && ip netns delete "$CAIRN_SWITCH_NS"
  return 0
}

# wait_for_file_line FILE PATTERN SECONDS: true once FILE has a line matching PATTERN, false at the deadline.
wait_for_file_line() {
  local file=$1 pattern=$2 deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

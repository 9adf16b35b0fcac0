#!/usr/bin/env bash
# Installs (idempotently) every Debian 12 package that Cairn's build, tests and
# local cluster need. Only Debian's archive is used. Safe to run repeatedly:
# when everything is present it does nothing and exits quickly.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost-dev protobuf-compiler libprotobuf-dev
  libfuse3-dev fuse3 lxc-dev lxc
  libspdlog-dev libyaml-cpp-dev libcli11-dev libssl-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  clang libclang-rt-14-dev
  busybox-static iproute2 nftables attr curl python3 procps psmisc util-linux
  etcd-server etcd-client
)

# The peers that tests/bench compares Cairn with (../shared/bench): only with --bench.
BENCH_PACKAGES=(
  wrk fio fuse-overlayfs unionfs-fuse mergerfs glusterfs-server glusterfs-client
  rsync  # lxc-copy full copies (tests/bench/containers-vs-lxc.sh)
)
if [[ ${1:-} == --bench ]]; then
  PACKAGES+=("${BENCH_PACKAGES[@]}")
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root (or: sudo $0) to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

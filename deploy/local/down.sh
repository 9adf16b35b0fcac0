#!/usr/bin/env bash
# Stops every clusterd that up.sh started (by its recorded pid) and deletes the host namespaces.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/deploy/local/hosts.sh"
for dir in "$CAIRN_STATE_DIR"/host*; do
  [[ -d $dir ]] || continue
  n=${dir##*/host}
  if [[ -f "$dir/clusterd.pid" ]]; then
    pid=$(cat "$dir/clusterd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "down.sh: stopped host$n's clusterd (pid $pid)"
    fi
    rm -f "$dir/clusterd.pid"
  fi
  delete_host "$n"
done
delete_switch
echo "down.sh: local hosts removed (state kept in $CAIRN_STATE_DIR)"

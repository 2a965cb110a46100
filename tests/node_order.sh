#!/usr/bin/env bash
#
# tests/node_order.sh — one connection, one order (issue 13): three real raftkv-node processes
# on 127.0.0.1 and tests/node_order.py against them (pipelined write-then-read sequences on every
# node, DBSIZE/KEYS after a SET in the same pipeline, MSET/MGET atomicity under writers).
#
# Usage: tests/node_order.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_order.sh PATH/TO/raftkv-node}
command -v python3 >/dev/null || { echo "node_order: python3 not found" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "node_order: redis-cli not found" >&2; exit 1; }
port_offset=11
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

for i in 1 2 3; do start "$i"; done
leader=$(rk_wait_leader 150)
check "a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"
python3 "$(dirname "${BASH_SOURCE[0]}")/node_order.py" "$(cport 1)" "$(cport 2)" "$(cport 3)"
rc=$?
check "node_order.py" 0 "$rc"
if [[ $failed -gt 0 ]]; then
    for i in 1 2 3; do echo "---- $tmp/log$i (tail)"; tail -5 "$tmp/log$i"; done
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

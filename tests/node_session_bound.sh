#!/usr/bin/env bash
#
# tests/node_session_bound.sh — members whose session bounds differ refuse each other at the
# peer handshake (protocol 4). Every replica evicts sessions by the same bound (node/README.md
# "Sessions": members x max-clients); a member started with another max-clients would apply the
# same log to a different state, so its peers refuse it, with the reason in both logs, while the
# members that agree keep serving.
#
# Usage: tests/node_session_bound.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_session_bound.sh PATH/TO/raftkv-node}
command -v redis-cli >/dev/null || { echo "node_session_bound: redis-cli not found" >&2; exit 1; }
port_offset=29
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# A new cluster starts once every voter has shown an empty log (node/README.md), so all three
# start alike; node 3 then comes back with another max-clients.
for i in 1 2 3; do start "$i"; done
leader=$(rk_wait_leader 150)
check "a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"
kill -9 "${pid[3]}"
wait "${pid[3]}" 2>/dev/null
start 3 --max-clients 500
leader=$(rk_wait_leader 150)
check "nodes 1 and 2 lead" yes "$([[ $leader == 1 || $leader == 2 ]] && echo yes || echo no)"
check "a write commits without node 3" OK "$(rk_cli "$leader" SET k v)"
# 3 members x 10000 (the default max-clients) against 3 x 500.
check "node 3 refuses its peers, saying why" yes \
    "$(rk_wait_log "$tmp/log3" "keeps at most 30000 sessions, this node 1500" 300 && echo yes || echo no)"
check "... and they refuse it" yes \
    "$(rk_wait_log "$tmp/log$leader" "node 3 keeps at most 1500 sessions, this node 30000" 300 && echo yes || echo no)"
check "node 3 knows no leader" 0 "$(timeout 10 redis-cli -p "$(cport 3)" INFO raft |
    tr -d '\r' | sed -n 's/^leader_id://p')"

if [[ $failed -gt 0 ]]; then
    for f in "$tmp"/log?; do
        echo "---- $f (tail)"
        tail -15 "$f"
    done
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

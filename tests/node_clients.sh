#!/usr/bin/env bash
#
# tests/node_clients.sh — client libraries against a raftkv cluster, as applications use them:
# three real raftkv-node processes on 127.0.0.1 with requirepass, and tests/node_clients.py
# (redis-py, Debian's python3-redis) and tests/node_clients.js (node-redis 4, Debian's node-redis)
# through every node: transactions (pipeline, WATCH), Lock(timeout=...), expiry, client name,
# password, db=1, scan iteration, auto-pipelining.
#
# Usage: tests/node_clients.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_clients.sh PATH/TO/raftkv-node}
# The Python that has redis-py (Debian's python3-redis is for /usr/bin/python3).
py=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import redis' 2>/dev/null; then
        py=$p
        break
    fi
done
[[ -n $py ]] || { echo "node_clients: no python3 with redis-py (ci/test installs python3-redis)" >&2; exit 1; }
command -v node >/dev/null || { echo "node_clients: no node (ci/test installs nodejs and node-redis)" >&2; exit 1; }
port_offset=17
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

pw=clients-secret
for i in 1 2 3; do
    "$node_bin" --id "$i" --peers "$peers" --client "127.0.0.1:$(cport "$i")" \
        --data-dir "$tmp/n$i" --requirepass "$pw" 2>>"$tmp/log$i" &
    pid[$i]=$!
done
leader_known() {
    for i in 1 2 3; do
        timeout 5 redis-cli -p "$(cport "$i")" -a "$pw" --no-auth-warning INFO raft 2>/dev/null |
            tr -d '\r' | grep -qx role:leader && return 0
    done
    return 1
}
ok=no
for _ in $(seq 1 300); do
    leader_known && { ok=yes; break; }
    sleep 0.1
done
check "a leader is elected" yes "$ok"
"$py" "$(dirname "${BASH_SOURCE[0]}")/node_clients.py" "$pw" "$(cport 1)" "$(cport 2)" "$(cport 3)"
rc=$?
check "node_clients.py (redis-py)" 0 "$rc"
# node-redis: Debian's node-redis puts it under /usr/share/nodejs, which a Node.js not built by
# Debian does not search by itself.
NODE_PATH=${NODE_PATH:+$NODE_PATH:}/usr/share/nodejs node "$(dirname "${BASH_SOURCE[0]}")/node_clients.js" \
    "$pw" "$(cport 1)" "$(cport 2)" "$(cport 3)"
rc=$?
check "node_clients.js (node-redis)" 0 "$rc"
if [[ $failed -gt 0 ]]; then
    for i in 1 2 3; do echo "---- $tmp/log$i (tail)"; tail -5 "$tmp/log$i"; done
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

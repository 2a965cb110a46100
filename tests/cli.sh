#!/usr/bin/env bash
#
# tests/cli.sh — raftkv-cli end to end against three real raftkv-node processes on 127.0.0.1:
# one-off commands and how their replies print (OK, a bulk string, (nil), (integer) N,
# (error) ...), `status --cluster` with every member up and with a follower killed (-9), and a
# connection failure that names the address.
#
# Usage: tests/cli.sh PATH/TO/raftkv-node PATH/TO/raftkv-cli
# Ports: a free block of 6 found by trying to connect, starting from a base derived from $$
# (tests/lib/cluster.sh, shared with tests/node_cluster.sh). Everything it starts is stopped.
set -uo pipefail

node_bin=${1:?usage: cli.sh PATH/TO/raftkv-node PATH/TO/raftkv-cli}
cli_bin=${2:?usage: cli.sh PATH/TO/raftkv-node PATH/TO/raftkv-cli}

port_offset=5 # node_cluster.sh searches from 0: the two can run at once
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# raftkv-cli on node $1 (it retries -TRYAGAIN itself); stdout and stderr together.
cli() {
    local i=$1
    shift
    timeout 10 "$cli_bin" -p "$(cport "$i")" "$@" 2>&1
}

# Polls every 0.1 s, up to $2 tenths, for a node among $1 that says it is the leader; prints it.
wait_leader() {
    local nodes=$1 tries=$2
    for _ in $(seq 1 "$tries"); do
        for i in $nodes; do
            if grep -qx 'role:leader' <<<"$(cli "$i" INFO | tr -d '\r')"; then
                echo "$i"
                return 0
            fi
        done
        sleep 0.1
    done
    return 1
}

for i in 1 2 3; do start "$i"; done

leader=$(wait_leader "1 2 3" 100) || leader=
check "a leader within 10 s" yes "$([[ -n $leader ]] && echo yes || echo no)"
[[ -n $leader ]] || { cat "$tmp"/log*; echo "$passed passed, $failed failed"; exit 1; }
follower=$((leader % 3 + 1))
other=$((follower % 3 + 1))

check "ping" PONG "$(cli 1 ping)"
check "set on one node" OK "$(cli "$follower" set a 1)"
check "get via another node" 1 "$(cli "$other" get a)"
check "get of a missing key" "(nil)" "$(cli "$leader" get missing)"
check "del of a present key" "(integer) 1" "$(cli "$leader" del a)"
out=$(cli 2 frobnicate x); rc=$?
check "unknown command prints the error" \
    "(error) ERR unknown command 'frobnicate', with args beginning with: 'x' " "$out"
check "unknown command exits 1" 1 "$rc"
info_out=$(cli "$leader" info)
check "info has role" yes "$(grep -q '^role:leader' <<<"$info_out" && echo yes || echo no)"

out=$(timeout 20 "$cli_bin" status --cluster "$members" 2>&1); rc=$?
echo "$out" | sed 's/^/     /'
check "status: exit 0 with all up" 0 "$rc"
check "status: 3 reachable rows" 3 "$(echo "$out" | grep -c ' yes$')"
check "status: exactly one leader" 1 "$(echo "$out" | awk '$3 == "leader" && $NF == "yes"' | wc -l)"

kill -KILL "${pid[$follower]}"
wait "${pid[$follower]}" 2>/dev/null
pid[$follower]=
out=$(timeout 20 "$cli_bin" status --cluster "$members" 2>&1); rc=$?
echo "$out" | sed 's/^/     /'
check "status after kill -9 of a follower: exit 0" 0 "$rc"
check "status: the killed follower is unreachable" yes \
    "$(grep -q "127.0.0.1:$(cport "$follower") .* no (" <<<"$out" && echo yes || echo no)"
check "status: 2 reachable rows" 2 "$(echo "$out" | grep -c ' yes$')"

out=$(timeout 20 "$cli_bin" -p "$(cport "$follower")" ping 2>&1); rc=$?
check "closed port: exit 1" 1 "$rc"
check "closed port: message names the address" yes \
    "$([[ $out == *"127.0.0.1:$(cport "$follower")"* ]] && echo yes || echo no)"
echo "     ($out)"
out=$("$cli_bin" 2>&1); rc=$?
check "no command: usage, exit 2" 2 "$rc"

if [[ $failed -gt 0 ]]; then
    for i in 1 2 3; do
        echo "---- node $i log (tail)"
        tail -20 "$tmp/log$i"
    done
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

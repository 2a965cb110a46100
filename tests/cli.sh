#!/usr/bin/env bash
#
# tests/cli.sh — raftkv-cli end to end against three real raftkv-node processes on 127.0.0.1:
# one-off commands and how their replies print (OK, a bulk string, (nil), (integer) N,
# (error) ...), `status --cluster` with every member up and with a follower killed (-9), and a
# connection failure that names the address.
#
# Usage: tests/cli.sh PATH/TO/raftkv-node PATH/TO/raftkv-cli
# Ports: a free block of 6 found by trying to connect, starting from a base derived from $$
# (the same helper as tests/node_cluster.sh). Everything it starts is stopped on exit.
set -uo pipefail

node_bin=${1:?usage: cli.sh PATH/TO/raftkv-node PATH/TO/raftkv-cli}
cli_bin=${2:?usage: cli.sh PATH/TO/raftkv-node PATH/TO/raftkv-cli}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/raftkv-cli-test.XXXXXX")
declare -A pid
passed=0
failed=0

cleanup() {
    for i in 1 2 3; do
        [[ -n ${pid[$i]:-} ]] && kill -TERM "${pid[$i]}" 2>/dev/null
    done
    for i in 1 2 3; do
        [[ -n ${pid[$i]:-} ]] && wait "${pid[$i]}" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# Copied from tests/node_cluster.sh: a port is taken if something accepts a connection on it.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Below the kernel's ephemeral range; a base 5 off node_cluster.sh's so the two can run at once.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
span=$(((${low:-32768} - 10000 - 1000) / 10))
[[ $span -gt 0 ]] || span=100
base=$((10005 + ($$ % span) * 10))
for _ in $(seq 1 50); do
    ok=1
    for off in 1 2 3 11 12 13; do
        port_free $((base + off)) || { ok=0; break; }
    done
    [[ $ok -eq 1 ]] && break
    base=$((base + 20))
done
peers="1=127.0.0.1:$((base + 11)),2=127.0.0.1:$((base + 12)),3=127.0.0.1:$((base + 13))"
cport() { echo $((base + $1)); }
members="127.0.0.1:$(cport 1),127.0.0.1:$(cport 2),127.0.0.1:$(cport 3)"

start() {
    "$node_bin" --id "$1" --peers "$peers" --client "127.0.0.1:$(cport "$1")" \
        --data-dir "$tmp/n$1" 2>>"$tmp/log$1" &
    pid[$1]=$!
}

# raftkv-cli on node $1 (it retries -TRYAGAIN itself); stdout and stderr together.
cli() {
    local i=$1
    shift
    timeout 10 "$cli_bin" -p "$(cport "$i")" "$@" 2>&1
}

check() {
    local what=$1 want=$2 got=$3
    if [[ "$got" == "$want" ]]; then
        passed=$((passed + 1))
        echo "ok   $what"
    else
        failed=$((failed + 1))
        echo "FAIL $what: want '$want', got '$got'"
    fi
}

# Polls every 0.1 s, up to $2 tenths, for a node among $1 that says it is the leader; prints it.
wait_leader() {
    local nodes=$1 tries=$2
    for _ in $(seq 1 "$tries"); do
        for i in $nodes; do
            if cli "$i" INFO | tr -d '\r' | grep -qx 'role:leader'; then
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
check "info has role" yes "$(cli "$leader" info | grep -q '^role:leader' && echo yes || echo no)"

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
    "$(echo "$out" | grep -q "127.0.0.1:$(cport "$follower") .* no (" && echo yes || echo no)"
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

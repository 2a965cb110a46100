#!/usr/bin/env bash
#
# tests/node_crash.sh — raftkv-node under crashes, driven by raftkv-load (issue 6's integration
# tests): three real processes on 127.0.0.1.
#   (a) kill -9 of the leader under write load: a new leader takes over, writes are acknowledged
#       after the kill, and no acknowledged write is lost (raftkv-load failover, then verify);
#   (b) kill -9 of every node mid-load, restart of all three: every acknowledged write is there;
#   (c) SIGSTOP of a follower while thousands of keys are written, SIGCONT: it catches up (its
#       applied_index reaches the leader's commit index, and a read on it sees the writes).
# Every wait polls a condition against a deadline; nothing relies on a fixed sleep.
#
# Usage: tests/node_crash.sh PATH/TO/raftkv-node PATH/TO/raftkv-load
# Ports: a free block found by tests/lib/cluster.sh. Everything it starts is stopped on exit.
set -uo pipefail

node_bin=${1:?usage: node_crash.sh PATH/TO/raftkv-node PATH/TO/raftkv-load}
load_bin=${2:?usage: node_crash.sh PATH/TO/raftkv-node PATH/TO/raftkv-load}
command -v redis-cli >/dev/null || {
    echo "node_crash: redis-cli not found (Debian package redis-tools; ci/test installs it)" >&2
    exit 1
}

port_offset=5 # search another block than node_cluster.sh and cli.sh when run in parallel
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

load_pid=
crash_cleanup() {
    # a stopped node would never act on cleanup's SIGTERM: continue it first
    for i in 1 2 3; do
        [[ -n ${pid[$i]:-} ]] && kill -CONT "${pid[$i]}" 2>/dev/null
    done
    [[ -n $load_pid ]] && kill -TERM "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
    cleanup
}
trap crash_cleanup EXIT

info_field() {
    timeout 2 redis-cli -p "$(cport "$1")" INFO 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# await SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds or SECONDS pass.
await() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    while ! "$@"; do
        [[ $(now_ms) -lt $deadline ]] || return 1
        sleep 0.1
    done
}

leader_among() {
    for i in $1; do
        if [[ $(info_field "$i" role) == leader ]]; then
            found_leader=$i
            return 0
        fi
    done
    return 1
}

# Waits for a leader among nodes $1 (up to $2 s); sets $leader.
wait_leader() {
    found_leader=
    if await "$2" leader_among "$1"; then leader=$found_leader; else leader=; fi
}

commit_above() { [[ $(info_field "$1" commit_index) -gt $2 ]] 2>/dev/null; }
applied_reaches() { [[ $(info_field "$1" applied_index) -ge $2 ]] 2>/dev/null; }
serves_get() { [[ $(timeout 2 redis-cli -p "$(cport "$1")" GET "$2" 2>/dev/null) == "$3" ]]; }

show_logs() {
    for i in 1 2 3; do
        echo "---- node $i log (tail)"
        tail -20 "$tmp/log$i"
    done
}

stop_node() { # $1: node; kill -9 and reap
    kill -KILL "${pid[$1]}" 2>/dev/null
    wait "${pid[$1]}" 2>/dev/null
    pid[$1]=
}

for i in 1 2 3; do start "$i"; done
wait_leader "1 2 3" 10
check "a leader within 10 s" yes "$([[ -n $leader ]] && echo yes || echo no)"
[[ -n $leader ]] || { show_logs; echo "$passed passed, $failed failed"; exit 1; }

# ---- (a) kill -9 of the leader under write load ------------------------------------------------
old=$leader
"$load_bin" failover --nodes "$members" --kill-pid "${pid[$old]}" --after 1000 --linger 1000 \
    --timeout 10 -c 6 -q --log "$tmp/a.log" >"$tmp/a.out" 2>"$tmp/a.err"
rc=$?
wait "${pid[$old]}" 2>/dev/null
pid[$old]=
check "(a) failover load exits 0" 0 "$rc"
[[ $rc -eq 0 ]] || cat "$tmp/a.err"
fo_ms=$(sed -n 's/.*failover_ms=\([0-9.]*\).*/\1/p' "$tmp/a.out")
after=$(sed -n 's/.*acks_after_kill=\([0-9]*\).*/\1/p' "$tmp/a.out")
echo "     (first ack after the kill: ${fo_ms:-none} ms; ${after:-0} acks after it)"
check "(a) writes acknowledged after the kill" yes "$([[ ${after:-0} -gt 0 ]] && echo yes || echo no)"
survivors=$(for i in 1 2 3; do [[ $i != "$old" ]] && printf '%s ' "$i"; done)
wait_leader "$survivors" 10
check "(a) a new leader among the survivors" yes \
    "$([[ -n $leader && $leader != "$old" ]] && echo yes || echo no)"
"$load_bin" verify --nodes "$members" --log "$tmp/a.log" --timeout 30 >"$tmp/a.verify" 2>&1
check "(a) verify: no acknowledged write lost" 0 "$?"
tail -1 "$tmp/a.verify" | sed 's/^/     /'

# ---- (b) kill -9 of every node mid-load, restart ------------------------------------------------
start "$old"
wait_leader "1 2 3" 10
base_commit=$(info_field "$leader" commit_index)
"$load_bin" write --nodes "$members" -c 8 -P 4 --duration 60 --timeout-ms 1000 -q \
    --log "$tmp/b.log" >"$tmp/b.out" 2>"$tmp/b.err" &
load_pid=$!
# mid-load: a few thousand writes committed (the commit index counts them)
if await 30 commit_above "$leader" $((${base_commit:-0} + 3000)); then loaded=yes; else loaded=no; fi
check "(b) writes under way before the crash" yes "$loaded"
for i in 1 2 3; do kill -KILL "${pid[$i]}" 2>/dev/null; done
for i in 1 2 3; do
    wait "${pid[$i]}" 2>/dev/null
    pid[$i]=
done
kill -TERM "$load_pid"
wait "$load_pid"
rc=$?
load_pid=
check "(b) write load exits 0 after SIGTERM" 0 "$rc"
acked_keys=$(grep -vc '^#' "$tmp/b.log" 2>/dev/null)
echo "     ($(sed -n 's/.*acks=\([0-9]*\).*/\1/p' "$tmp/b.out") writes acknowledged over ${acked_keys:-0} keys before the crash)"
for i in 1 2 3; do start "$i"; done
wait_leader "1 2 3" 15
check "(b) a leader after restarting all three" yes "$([[ -n $leader ]] && echo yes || echo no)"
"$load_bin" verify --nodes "$members" --log "$tmp/b.log" --timeout 30 >"$tmp/b.verify" 2>&1
check "(b) verify: every acknowledged write survived" 0 "$?"
tail -1 "$tmp/b.verify" | sed 's/^/     /'
grep -E '^(MISSING|LOWER)' "$tmp/b.verify" | head -5

# ---- (c) SIGSTOP of a follower, writes, SIGCONT --------------------------------------------------
wait_leader "1 2 3" 10
stopped=$((leader % 3 + 1))
others="127.0.0.1:$(cport "$leader"),127.0.0.1:$(cport $((6 - leader - stopped)))"
kill -STOP "${pid[$stopped]}"
"$load_bin" fill --nodes "$others" --keys 3000 --prefix stop --key-size 16 --value-size 10 \
    --timeout 60 -q >"$tmp/c.out" 2>"$tmp/c.err"
check "(c) 3000 keys written while a follower is stopped" 0 "$?"
target=$(info_field "$leader" commit_index)
kill -CONT "${pid[$stopped]}"
t0=$(now_ms)
if await 30 applied_reaches "$stopped" "${target:-999999999}"; then caught=yes; else caught=no; fi
echo "     (node $stopped applied index ${target:-?} $(($(now_ms) - t0)) ms after SIGCONT)"
check "(c) resumed follower applies up to the leader's commit index" yes "$caught"
if await 10 serves_get "$stopped" stop000000002999 abcdefghij; then seen=yes; else seen=no; fi
check "(c) a read on the resumed follower sees the writes" yes "$seen"
check "(c) the first, a middle and the last key on the resumed follower" 3 \
    "$(timeout 2 redis-cli -p "$(cport "$stopped")" EXISTS stop000000000000 stop000000001234 \
        stop000000002999)"

[[ $failed -gt 0 ]] && show_logs
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

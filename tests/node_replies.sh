#!/usr/bin/env bash
#
# tests/node_replies.sh — every request gets exactly one reply, in order (N3, node/server.h),
# over leadership changes: three real raftkv-node processes on 127.0.0.1 and
# tests/node_replies.py pipelining mixed commands (GET SET PTTL INCR MGET EXISTS DBSIZE KEYS
# DEL MSET, ECHO markers) at them.
#   1. a pipeline of 2000 on every node with a leader;
#   2. a node with no leader (the two others stopped with SIGSTOP): 3000 commands in one
#      pipeline, nearly all refused at once (-TRYAGAIN) while the node is still parsing the
#      pipeline. This lost a reply before the fix of 2026-12-08 (conn.c, item.dispatching: a
#      batch submitted in the middle of a command's dispatch collected that command's item
#      before it had a request: no bytes sent for it, the item recycled under it);
#   3. churn: a connection per node pipelining 50..400 commands again and again while the
#      leader is stopped (SIGSTOP) until another node leads, then continued, several times.
#
# Usage: tests/node_replies.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_replies.sh PATH/TO/raftkv-node}
command -v python3 >/dev/null || { echo "node_replies: python3 not found" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "node_replies: redis-cli not found" >&2; exit 1; }
port_offset=29
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"
py="$(dirname "${BASH_SOURCE[0]}")/node_replies.py"
rounds=${RAFTKV_REPLIES_ROUNDS:-4}

# A stopped node must be continued before cleanup's SIGTERM can stop it.
churn_pid=
cont_all() {
    [[ -n $churn_pid ]] && kill "$churn_pid" 2>/dev/null
    for i in 1 2 3; do [[ -n ${pid[$i]:-} ]] && kill -CONT "${pid[$i]}" 2>/dev/null; done
}
trap 'cont_all; cleanup' EXIT

for i in 1 2 3; do start "$i"; done
leader=$(rk_wait_leader 300)
check "a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"

# 1. With a leader.
for i in 1 2 3; do
    out=$(python3 "$py" once "$(cport "$i")" 2000 "$i")
    check "node $i: 2000 pipelined commands, 2000 replies in order" 2000 "${out%% *}"
    [[ $out == FAIL* ]] && echo "$out"
done

# 2. No leader: node s alone (the leader and the other follower stopped).
s=1
[[ $leader == 1 ]] && s=2
o=$((6 - s - leader))
kill -STOP "${pid[$leader]}" "${pid[$o]}"
noleader=no
for _ in $(seq 1 600); do
    # raft's leader is NONE once s has timed out and stands (pre-vote) for election
    r=$(timeout 10 redis-cli -p "$(cport "$s")" GET r:probe 2>&1)
    [[ $r == "TRYAGAIN no leader known"* ]] && { noleader=yes; break; }
    sleep 0.1
done
check "node $s knows no leader with the two others stopped" yes "$noleader"
out=$(python3 "$py" once "$(cport "$s")" 3000 7)
check "node $s without a leader: 3000 pipelined commands, 3000 replies in order" 3000 \
    "${out%% *}"
[[ $out == FAIL* ]] && echo "$out"
kill -CONT "${pid[$leader]}" "${pid[$o]}"
leader=$(rk_wait_leader 600)
check "a leader again once continued" yes "$([[ -n $leader ]] && echo yes || echo no)"

# 3. Churn: clients on every node while the leader is stopped and continued, $rounds times.
stop="$tmp/stop-churn"
python3 "$py" churn "$stop" 3 "$(cport 1)" "$(cport 2)" "$(cport 3)" >"$tmp/churn.out" 2>&1 &
churn_pid=$!
changes=0
for round in $(seq 1 "$rounds"); do
    leader=$(rk_wait_leader 600) || break
    kill -STOP "${pid[$leader]}"
    new=
    for _ in $(seq 1 600); do
        for i in 1 2 3; do
            [[ $i != "$leader" && $(rk_info "$i" role) == leader ]] && new=$i
        done
        [[ -n $new ]] && break
        sleep 0.1
    done
    kill -CONT "${pid[$leader]}"
    [[ -n $new ]] && changes=$((changes + 1))
    echo "round $round: leader $leader stopped, node ${new:-none} leads"
    sleep 1
done
check "the leader changed in every round" "$rounds" "$changes"
touch "$stop"
wait "$churn_pid"
rc=$?
churn_pid=
cat "$tmp/churn.out"
check "churn: every pipeline answered whole and in order on every node" 0 "$rc"
pipes=$(awk '/pipelines/ { s += $3 } END { print s + 0 }' "$tmp/churn.out")
check "churn: pipelines ran (more than the rounds)" yes "$([[ $pipes -gt $rounds ]] && echo yes || echo no)"

if [[ $failed -gt 0 ]]; then
    for i in 1 2 3; do echo "---- $tmp/log$i (tail)"; tail -5 "$tmp/log$i"; done
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

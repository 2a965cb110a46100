#!/usr/bin/env bash
#
# tests/node_damage.sh — an acknowledged write survives a flipped bit (issue #15): three real
# raftkv-node processes on 127.0.0.1.
#
#   1. Both records. One follower paused (SIGSTOP); SET last acked_value answered OK (committed
#      on the leader and the other follower, which has applied it); all three killed (-9). One
#      bit flipped in the value inside the last record of that follower's newest log segment
#      and of its newest Bitcask data file. That follower and the paused one restart while the
#      old leader stays down: the damaged one repairs (a durable promise, the damaged data cut
#      or discarded) and does not vote until a leader gives it back what it promised, so the
#      two elect no leader: GET last must never answer nil on either (an error or TRYAGAIN is
#      acceptable: the only intact copy is on the stopped node). Then the old leader restarts:
#      GET last = acked_value on every node.
#   2. The log record only: the same, with only the log segment's bit flipped.
#   3. A wiped follower: its data directory removed while it is down; restarted, it starts with
#      an unknown promise (a new directory cannot tell a new node from a wiped one: no vote until
#      a leader has caught it up, core/log/INTEGRITY.md), catches up under the leader (applied
#      index at the leader's commit index, awaited) and serves the values.
#
# Usage: tests/node_damage.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_damage.sh PATH/TO/raftkv-node}
command -v redis-cli >/dev/null || { echo "node_damage: redis-cli not found" >&2; exit 1; }
port_offset=17
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# Flips the lowest bit of the last byte of the last occurrence of $2 in file $1.
flip_last() {
    local file=$1 text=$2 off v
    off=$(grep -obUa -- "$text" "$file" | tail -1 | cut -d: -f1)
    [[ -n $off ]] || { echo "no '$text' in $file"; return 1; }
    off=$((off + ${#text} - 1))
    v=$(od -An -tu1 -j "$off" -N1 "$file" | tr -d ' ')
    printf "$(printf '\\%03o' $((v ^ 1)))" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none
    echo "flipped a bit at $(basename "$file") offset $off"
}

newest() { find "$1" -maxdepth 1 -name "$2" | sort | tail -1; }

kill_all() {
    for i in 1 2 3; do
        if [[ -n ${pid[$i]:-} ]]; then
            kill -KILL "${pid[$i]}" 2>/dev/null
            wait "${pid[$i]}" 2>/dev/null
            pid[$i]=
        fi
    done
}

# Polls GET $2 on node $1 (every 0.2 s, up to $3 times) until it answers $4; prints the last answer.
await_value() {
    local i=$1 key=$2 tries=$3 want=$4 got=
    for _ in $(seq 1 "$tries"); do
        got=$(timeout 5 redis-cli -p "$(cport "$i")" GET "$key" 2>&1)
        [[ $got == "$want" ]] && break
        sleep 0.2
    done
    printf '%s\n' "$got"
}

# One bit-flip run: $1 = "both" or "log".
flip_run() {
    local what=$1
    echo "--- bit flip: $what"
    kill_all
    rm -rf "$tmp"/n1 "$tmp"/n2 "$tmp"/n3
    for i in 1 2 3; do start "$i"; done
    local leader
    leader=$(rk_wait_leader 300)
    check "[$what] a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"
    [[ -n $leader ]] || return
    local damaged=$((leader % 3 + 1)) paused=$(((leader + 1) % 3 + 1))
    local ok=0
    for k in $(seq 1 20); do
        [[ $(rk_cli "$leader" SET "k$k" "v$k") == OK ]] && ok=$((ok + 1))
    done
    check "[$what] 20 values written" 20 "$ok"
    kill -STOP "${pid[$paused]}"
    check "[$what] SET last acked_value with node $paused paused" OK \
        "$(rk_cli "$leader" SET last acked_value)"
    # The write is committed on the leader and node $damaged; wait until $damaged applied it
    # too, so that its store holds the record.
    local target applied=0
    target=$(rk_info "$leader" commit_index)
    for _ in $(seq 1 300); do
        applied=$(rk_info "$damaged" applied_index)
        [[ -n $applied && $applied -ge ${target:-1} ]] && break
        sleep 0.1
    done
    check "[$what] node $damaged applied the acknowledged write" yes \
        "$([[ -n $applied && $applied -ge ${target:-1} ]] && echo yes || echo no)"
    kill_all
    flip_last "$(newest "$tmp/n$damaged/log" 'seg-*.log')" acked_value
    if [[ $what == both ]]; then
        flip_last "$(newest "$tmp/n$damaged/kv" '*.data')" acked_value
    fi
    echo "[$what] old leader $leader stays down; restarting $damaged (damaged) and $paused"
    start "$damaged"
    start "$paused"
    local nil=0 answers=0 value=0 out rc
    for _ in $(seq 1 25); do
        for i in "$damaged" "$paused"; do
            out=$(timeout 5 redis-cli -p "$(cport "$i")" GET last 2>&1)
            rc=$?
            answers=$((answers + 1))
            # redis-cli prints nothing for a nil reply (and exits 0; a timeout exits 124)
            [[ $rc -eq 0 && -z $out ]] && nil=$((nil + 1))
            [[ $out == acked_value ]] && value=$((value + 1))
        done
        sleep 0.2
    done
    echo "[$what] $answers GETs while the old leader is down: $value acked_value, $nil nil"
    check "[$what] GET last never answers nil while the old leader is down" 0 "$nil"
    check "[$what] node $damaged repaired its data directory" yes \
        "$(grep -q 'repaired the data directory' "$tmp/log$damaged" && echo yes || echo no)"
    start "$leader"
    for i in 1 2 3; do
        check "[$what] GET last on node $i once the old leader is back" acked_value \
            "$(await_value "$i" last 300 acked_value)"
    done
    check "[$what] the other values survive on node $damaged" v7 "$(await_value "$damaged" k7 100 v7)"
}

flip_run both
flip_run log

echo "--- a wiped follower"
kill_all
rm -rf "$tmp"/n1 "$tmp"/n2 "$tmp"/n3
for i in 1 2 3; do start "$i"; done
leader=$(rk_wait_leader 300)
check "[wiped] a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"
if [[ -n $leader ]]; then
    wiped=$((leader % 3 + 1))
    ok=0
    for k in $(seq 1 50); do
        [[ $(rk_cli "$leader" SET "w$k" "x$k") == OK ]] && ok=$((ok + 1))
    done
    check "[wiped] 50 values written" 50 "$ok"
    kill -KILL "${pid[$wiped]}"
    wait "${pid[$wiped]}" 2>/dev/null
    pid[$wiped]=
    rm -rf "$tmp/n$wiped"
    check "[wiped] a value written while node $wiped is down" OK "$(rk_cli "$leader" SET w51 x51)"
    start "$wiped"
    target=$(rk_info "$leader" commit_index)
    caught=no
    for _ in $(seq 1 600); do
        applied=$(rk_info "$wiped" applied_index)
        [[ -n $applied && $applied -ge ${target:-1} ]] && { caught=yes; break; }
        sleep 0.1
    done
    check "[wiped] node $wiped caught up (applied >= $target)" yes "$caught"
    check "[wiped] its empty directory did not vote as if it had promised nothing" yes \
        "$(grep -q 'promise unknown: waits for leader' "$tmp/log$wiped" && echo yes || echo no)"
    check "[wiped] node $wiped serves the values" x51 "$(await_value "$wiped" w51 100 x51)"
    check "[wiped] and the first ones" x1 "$(await_value "$wiped" w1 100 x1)"
    now=$(rk_wait_leader 50)
    echo "[wiped] leader before: $leader, after: ${now:-none}"
fi

echo "$passed passed, $failed failed"
if [[ $failed -ne 0 ]]; then
    for i in 1 2 3; do
        echo "--- log of node $i (last lines)"
        tail -15 "$tmp/log$i"
    done
fi
[[ $failed -eq 0 ]]

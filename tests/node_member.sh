#!/usr/bin/env bash
#
# tests/node_member.sh — membership changes with real processes (issue #17): five raftkv-node
# processes on 127.0.0.1 whose first configuration is nodes 1..3 (--voters 1,2,3); under
# raftkv-load writes, `raftkv-cli member add 4` and node 5 started with `--join` grow it to 5
# (each new node joins as a learner with an empty directory and is promoted automatically once
# caught up), the leader removes itself (a new leader takes over), another voter is removed
# (back to 3), a member is killed with -9 and replaced by a node with an empty directory
# (--join), and every acknowledged write is read back from the remaining members at the end.
#
# Usage: tests/node_member.sh PATH/TO/raftkv-node PATH/TO/raftkv-load PATH/TO/raftkv-cli
set -uo pipefail

node_bin=${1:?usage: node_member.sh RAFTKV-NODE RAFTKV-LOAD RAFTKV-CLI}
load_bin=${2:?usage: node_member.sh RAFTKV-NODE RAFTKV-LOAD RAFTKV-CLI}
cli_bin=${3:?usage: node_member.sh RAFTKV-NODE RAFTKV-LOAD RAFTKV-CLI}
command -v redis-cli >/dev/null || { echo "node_member: redis-cli not found" >&2; exit 1; }

port_offset=11 # another block than the other node tests when run in parallel
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# Five nodes: clients on base+1..5, peers on base+11..15 (the block's caller part: cluster.sh).
peers5=""
for i in 1 2 3 4 5; do peers5+="${peers5:+,}$i=127.0.0.1:$((base + 10 + i))"; done
all5=""
for i in 1 2 3 4 5; do all5+="${all5:+,}127.0.0.1:$(cport "$i")"; done

load_pid=
member_cleanup() {
    [[ -n $load_pid ]] && kill -TERM "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
    for i in 4 5; do
        [[ -n ${pid[$i]:-} ]] && kill -TERM "${pid[$i]}" 2>/dev/null && wait "${pid[$i]}" 2>/dev/null
    done
    cleanup
}
trap member_cleanup EXIT

start5() { # N [--join LIST]
    local i=$1
    shift
    "$node_bin" --id "$i" --peers "$peers5" --voters 1,2,3 --client "127.0.0.1:$(cport "$i")" \
        --data-dir "$tmp/n$i" "$@" 2>>"$tmp/log$i" &
    pid[$i]=$!
}

info_field() { timeout 2 redis-cli -p "$(cport "$1")" INFO 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
await() { # SECONDS COMMAND...: polls every 0.1 s
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    while ! "$@"; do
        [[ $(now_ms) -lt $deadline ]] || return 1
        sleep 0.1
    done
}
leader_among() {
    for i in $1; do
        [[ -n ${pid[$i]:-} && $(info_field "$i" role) == leader ]] && { found_leader=$i; return 0; }
    done
    return 1
}
# The voters in node $1's configuration, sorted, space-separated ("" if it cannot say).
voters_of() {
    timeout 2 redis-cli -p "$(cport "$1")" RAFTKV.MEMBER LIST 2>/dev/null |
        awk 'NR > 3 { v[++n] = $0 } END { for (i = 1; i + 1 <= n; i += 4) if (v[i + 1] == "voter") print v[i] }' |
        sort -n | tr '\n' ' ' | sed 's/ $//'
}
voters_are() { [[ $(voters_of "$1") == "$2" ]]; }
show_logs() {
    for i in 1 2 3 4 5; do
        echo "---- node $i log (tail)"
        tail -15 "$tmp/log$i" 2>/dev/null
    done
}
fail_out() { show_logs; echo "$passed passed, $failed failed"; exit 1; }

for i in 1 2 3 4; do start5 "$i"; done
found_leader=
await 20 leader_among "1 2 3"
leader=$found_leader
check "a leader among the first voters 1..3" yes "$([[ -n $leader ]] && echo yes || echo no)"
[[ -n $leader ]] || fail_out
check "the first configuration: voters 1 2 3" "1 2 3" "$(voters_of "$leader")"
check "node 4 is not a voter (it was never added)" "" "$(voters_of 4 | grep -w 4)"

"$load_bin" write --nodes "$all5" -c 6 -P 4 --duration 300 --timeout-ms 2000 -q \
    --log "$tmp/w.log" >"$tmp/w.out" 2>"$tmp/w.err" &
load_pid=$!
sleep 1

# ---- grow 3 -> 5 under load ------------------------------------------------------------------
"$cli_bin" --cluster "$all5" member add 4 >"$tmp/add4" 2>&1
check "member add 4" 0 "$?"
await 60 voters_are "$leader" "1 2 3 4"
check "node 4 promoted automatically once caught up" "1 2 3 4" "$(voters_of "$leader")"
# Node 5 asks to be added itself: an empty directory and --join with the members' addresses.
start5 5 --join "$members"
await 60 voters_are "$leader" "1 2 3 4 5"
check "node 5 joined (--join) and was promoted: five voters" "1 2 3 4 5" "$(voters_of "$leader")"
await 30 voters_are 5 "1 2 3 4 5"
check "node 5 itself holds the five-voter configuration" "1 2 3 4 5" "$(voters_of 5)"
check "INFO raft on node 5: member:voter" voter "$(info_field 5 member)"
# Every node logs each configuration it takes (event=config_change), as it logs role changes.
for i in 1 2 3 4 5; do
    check "node $i logged the five-voter configuration" yes \
        "$(for _ in $(seq 1 100); do grep -qE 'event=config_change .*voters=1,2,3,4,5 ' "$tmp/log$i" && { echo yes; break; }; sleep 0.1; done)"
done

# ---- remove the leader -----------------------------------------------------------------------
found_leader=
await 20 leader_among "1 2 3 4 5"
old=$found_leader
"$cli_bin" --cluster "$all5" member remove "$old" >"$tmp/rm1" 2>&1
check "member remove the leader ($old)" 0 "$?"
rest=$(for i in 1 2 3 4 5; do [[ $i != "$old" ]] && printf '%s ' "$i"; done)
found_leader=
await 20 leader_among "$rest"
leader=$found_leader
check "a new leader among the four others" yes "$([[ -n $leader && $leader != "$old" ]] && echo yes || echo no)"
[[ -n $leader ]] || fail_out
check "the removed leader no longer leads" follower "$(info_field "$old" role)"
check "INFO raft on the old leader: it is no voter" yes \
    "$([[ $(info_field "$old" member) != voter ]] && echo yes || echo no)"
want4=$(echo "$rest" | tr ' ' '\n' | grep . | sort -n | tr '\n' ' ' | sed 's/ $//')
await 20 voters_are "$leader" "$want4"
check "four voters without the old leader" "$want4" "$(voters_of "$leader")"
kill -TERM "${pid[$old]}" 2>/dev/null
wait "${pid[$old]}" 2>/dev/null
pid[$old]=

# ---- shrink back to 3 ------------------------------------------------------------------------
victim=$(for i in $rest; do [[ $i != "$leader" ]] && { echo "$i"; break; }; done)
"$cli_bin" --cluster "$all5" member remove "$victim" >"$tmp/rm2" 2>&1
check "member remove $victim" 0 "$?"
want3=$(echo "$want4" | tr ' ' '\n' | grep -vx "$victim" | tr '\n' ' ' | sed 's/ $//')
await 20 voters_are "$leader" "$want3"
check "three voters" "$want3" "$(voters_of "$leader")"
kill -TERM "${pid[$victim]}" 2>/dev/null
wait "${pid[$victim]}" 2>/dev/null
pid[$victim]=

# ---- replace a dead member (node/README.md): kill -9, remove it, add a node with an empty
# directory in its place (the old leader's id, removed before: its directory wiped) ----------
dead=$(for i in $want3; do [[ $i != "$leader" ]] && { echo "$i"; break; }; done)
kill -KILL "${pid[$dead]}" 2>/dev/null
wait "${pid[$dead]}" 2>/dev/null
pid[$dead]=
"$cli_bin" --cluster "$all5" member remove "$dead" >"$tmp/rm3" 2>&1
check "member remove $dead (killed)" 0 "$?"
want2=$(echo "$want3" | tr ' ' '\n' | grep -vx "$dead" | tr '\n' ' ' | sed 's/ $//')
rm -rf "$tmp/n$old"
start5 "$old" --join "$all5"
want3=$(echo "$want2 $old" | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')
await 60 voters_are "$leader" "$want3"
check "node $old, with an empty directory, joined and was promoted in place of $dead" "$want3" \
    "$(voters_of "$leader")"
sleep 2

kill -TERM "$load_pid"
wait "$load_pid"
rc=$?
load_pid=
check "write load exits 0" 0 "$rc"
echo "     ($(sed -n 's/.*acks=\([0-9]*\).*/\1/p' "$tmp/w.out") writes acknowledged)"
left=""
for i in $want3; do left+="${left:+,}127.0.0.1:$(cport "$i")"; done
"$load_bin" verify --nodes "$left" --log "$tmp/w.log" --timeout 30 >"$tmp/w.verify" 2>&1
check "verify on the three remaining members: no acknowledged write lost" 0 "$?"
tail -1 "$tmp/w.verify" | sed 's/^/     /'

[[ $failed -gt 0 ]] && show_logs
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

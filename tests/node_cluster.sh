#!/usr/bin/env bash
#
# tests/node_cluster.sh — raftkv-node end to end: three real processes on 127.0.0.1, driven with
# redis-cli. Write on one node and read on the others (followers serve linearizable reads), DEL,
# SET NX/XX, INCR/DECR/INCRBY/DECRBY, MSET/MGET, KEYS/SCAN/DBSIZE, CONFIG GET, the Redis-style
# unknown-command error, INFO sections, COMMAND, TYPE/STRLEN/GETRANGE, HELLO 3, CLIENT names,
# redis-cli --bigkeys and --stat, redis-benchmark as a client, kill -9 of the leader (a new leader within
# a bounded time, the value still readable), restart of the killed node (it catches up).
#
# Usage: tests/node_cluster.sh PATH/TO/raftkv-node
# Ports: a free block of 6 found by trying to connect, starting from a base derived from $$, so
# parallel runs do not collide. Everything it starts is stopped on exit (trap EXIT).
set -uo pipefail

node_bin=${1:?usage: node_cluster.sh PATH/TO/raftkv-node}
command -v redis-cli >/dev/null || {
    echo "node_cluster: redis-cli not found (Debian package redis-tools; ci/test installs it)" >&2
    exit 1
}

source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# One command; retried (up to 3 s) while the answer is -TRYAGAIN (an election is under way: the
# command certainly did not execute, so a retry is what any client would do).
cli() {
    local i=$1 out
    shift
    for _ in $(seq 1 30); do
        out=$(timeout 5 redis-cli -p "$(cport "$i")" "$@" 2>&1)
        [[ $out == TRYAGAIN* ]] || break
        sleep 0.1
    done
    printf '%s\n' "$out"
}

info_field() { cli "$1" INFO | tr -d '\r' | sed -n "s/^$2://p"; }

# Polls every 0.1 s, up to $2 tenths, for a node among $1 that says it is the leader; prints it.
wait_leader() {
    local nodes=$1 tries=$2
    for _ in $(seq 1 "$tries"); do
        for i in $nodes; do
            if [[ $(info_field "$i" role) == leader ]]; then
                echo "$i"
                return 0
            fi
        done
        sleep 0.1
    done
    return 1
}

# Polls until $1 answers `GET $2` with $3 (bounded: $4 tenths of a second).
wait_get() {
    for _ in $(seq 1 "$4"); do
        [[ $(cli "$1" GET "$2") == "$3" ]] && return 0
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

check "PING" PONG "$(cli 1 PING)"
check "SET on a follower" OK "$(cli "$follower" SET greeting hello)"
check "GET on the leader" hello "$(cli "$leader" GET greeting)"
check "GET on the other follower" hello "$(cli "$other" GET greeting)"
check "SET on the leader" OK "$(cli "$leader" SET k1 v1)"
check "DEL of a present key" 1 "$(cli "$other" DEL k1)"
check "DEL of a missing key" 0 "$(cli "$follower" DEL k1)"
check "GET of a deleted key" "" "$(cli "$leader" GET k1)"
check "EXISTS" 1 "$(cli "$follower" EXISTS greeting k1)"
check "unknown command" "ERR unknown command 'frobnicate', with args beginning with: 'a' 'b' " \
    "$(cli 2 frobnicate a b)"

# Issue 6 commands. redis-cli prints a nil reply as an empty line when not on a terminal.
check "SET NX of a missing key" OK "$(cli "$follower" SET nxkey first NX)"
check "SET NX of an existing key is nil" "" "$(cli "$other" SET nxkey second nx)"
check "SET NX left the value" first "$(cli "$leader" GET nxkey)"
check "SET XX of a missing key is nil" "" "$(cli "$leader" SET xxkey v XX)"
check "SET XX left the key missing" 0 "$(cli "$follower" EXISTS xxkey)"
check "SET XX of an existing key" OK "$(cli "$other" SET nxkey third XX)"
check "SET XX wrote" third "$(cli "$follower" GET nxkey)"
check "SET with EX (issue 16)" OK "$(cli "$leader" SET k v EX 100000)"
check "its TTL on a follower" yes "$(t=$(cli "$follower" TTL k); [[ $t -gt 99000 && $t -le 100000 ]] && echo yes || echo "no: $t")"
check "SET with NX and XX" "ERR syntax error" "$(cli "$leader" SET k v NX XX)"
check "INCR of a missing key" 1 "$(cli "$follower" INCR counter)"
check "INCRBY 10" 11 "$(cli "$other" INCRBY counter 10)"
check "DECR" 10 "$(cli "$leader" DECR counter)"
check "DECRBY -5" 15 "$(cli "$follower" DECRBY counter -5)"
check "GET of a counter" 15 "$(cli "$other" GET counter)"
check "SET of a non-integer" OK "$(cli "$leader" SET word abc)"
check "INCR of a non-integer" "ERR value is not an integer or out of range" "$(cli "$follower" INCR word)"
check "INCRBY with a bad increment" "ERR value is not an integer or out of range" \
    "$(cli "$leader" INCRBY counter +1)"
check "SET near the int64 limit" OK "$(cli "$leader" SET big 9223372036854775807)"
check "INCR past int64" "ERR increment or decrement would overflow" "$(cli "$other" INCR big)"

# MSET (one entry: all or nothing), MGET in order with nil for a missing key, KEYS, SCAN, DBSIZE.
check "MSET on a follower" OK "$(cli "$follower" MSET user:1 ann user:2 bob user:1 amy)"
check "MGET in order, nil for a missing key, a later pair winning" "$(printf 'amy\n\nbob')" \
    "$(cli "$other" MGET user:1 nokey user:2)"
check "MSET with an odd argument count" "ERR wrong number of arguments for 'mset' command" \
    "$(cli "$leader" MSET a 1 b)"
check "KEYS with a pattern" "$(printf 'user:1\nuser:2')" "$(cli "$other" KEYS 'user:*' | sort)"
check "KEYS with a class" "user:2" "$(cli "$follower" KEYS 'user:[2-9]')"
check "SCAN 0 MATCH returns cursor 0 and every match" "$(printf '0\nuser:1\nuser:2')" \
    "$(cli "$leader" SCAN 0 MATCH 'user:*' COUNT 10 | { read -r c; echo "$c"; sort; })"
check "SCAN with TYPE hash finds nothing" "0" "$(cli "$other" SCAN 0 TYPE hash)"
check "SCAN with a bad cursor" "ERR invalid cursor" "$(cli "$other" SCAN abc)"
check "redis-cli --scan" "$(printf 'user:1\nuser:2')" \
    "$(timeout 5 redis-cli -p "$(cport "$follower")" --scan --pattern 'user:*' | sort)"
want_keys=$(cli "$leader" KEYS '*' | wc -l)
check "DBSIZE counts what KEYS lists, on every node" "$want_keys $want_keys $want_keys" \
    "$(cli 1 DBSIZE) $(cli 2 DBSIZE) $(cli 3 DBSIZE)"
check "CONFIG GET appendonly" "$(printf 'appendonly\nyes')" "$(cli "$other" CONFIG GET appendonly)"
check "CONFIG SET is refused" "ERR CONFIG SET is not supported by raftkv" \
    "$(cli "$other" CONFIG SET appendonly no)"

# What tools and client libraries ask at connect or for reports (issue #16 points 3 and 5).
info_server=$(cli "$other" INFO server | tr -d '\r')
check "INFO server: a redis_version clients accept, and raftkv's" "7.0.0 yes" \
    "$(sed -n 's/^redis_version://p' <<<"$info_server") $(grep -c '^raftkv_version:' <<<"$info_server" | sed 's/^1$/yes/')"
check "INFO sections: the argument picks them" "# Clients|# Raft|" \
    "$(cli "$other" INFO clients raft | tr -d '\r' | grep '^#' | tr '\n' '|')"
check "INFO everything: every section" \
    "# Server|# Clients|# Memory|# Persistence|# Stats|# Replication|# CPU|# Modules|# Commandstats|# Errorstats|# Cluster|# Keyspace|# Raft|" \
    "$(cli "$other" INFO everything | tr -d '\r' | grep '^#' | tr '\n' '|')"
# commandstats and errorstats as Redis counts them: an arity error is a rejected call (not in
# calls), an error while running a failed one. The counts are this node's, since it started.
cli "$other" GET >/dev/null
cli "$other" SET cs:notint abc >/dev/null
cli "$other" INCR cs:notint >/dev/null
cli "$other" DEL cs:notint >/dev/null
cmdstats=$(cli "$other" INFO commandstats | tr -d '\r')
check "INFO commandstats: an arity error is a rejected GET" yes \
    "$(grep -Eq '^cmdstat_get:calls=[0-9]+,usec=[0-9]+,usec_per_call=[0-9.]+,rejected_calls=[1-9][0-9]*,failed_calls=0$' <<<"$cmdstats" && echo yes || echo "no: $cmdstats")"
check "INFO commandstats: INCR of a non-integer is a failed call" yes \
    "$(grep -Eq '^cmdstat_incr:calls=[1-9][0-9]*,.*,failed_calls=[1-9][0-9]*$' <<<"$cmdstats" && echo yes || echo "no: $cmdstats")"
check "INFO errorstats counts ERR" yes \
    "$(cli "$other" INFO errorstats | tr -d '\r' | grep -Eq '^errorstat_ERR:count=[1-9][0-9]*$' && echo yes || echo no)"
check "TIME: seconds and microseconds of the node's clock" yes \
    "$(cli "$other" TIME | { read -r s; read -r us; now=$(date +%s); [[ $s =~ ^[0-9]+$ && $us =~ ^[0-9]+$ && $us -lt 1000000 && $((now - s)) -le 5 && $((s - now)) -le 5 ]] && echo yes || echo "no: $s $us"; })"
check "INFO keyspace" "db0:keys=$want_keys,expires=1,avg_ttl=0" \
    "$(cli "$leader" INFO keyspace | tr -d '\r' | sed -n 's/^db0://p' | sed 's/^/db0:/')"
check "COMMAND COUNT from the table" yes "$([[ $(cli "$other" COMMAND COUNT) -ge 30 ]] && echo yes || echo no)"
check "COMMAND INFO get" "$(printf 'get\n2\nreadonly\nfast\n1\n1\n1')" \
    "$(cli "$other" COMMAND INFO get | head -7)"
check "TYPE, STRLEN, GETRANGE of a follower's write" "string 3 am" \
    "$(cli "$other" TYPE user:1) $(cli "$leader" STRLEN user:1) $(cli "$follower" GETRANGE user:1 0 1)"
hello3() { # the first bytes of HELLO 3's reply, then of a GET of a missing key, on one connection
    exec 3<>"/dev/tcp/127.0.0.1/$(cport "$other")"
    printf 'HELLO 3\r\nGET nokey\r\nQUIT\r\n' >&3
    timeout 5 cat <&3 | tr -d '\r' | awk '{a[NR] = $0} END {print a[1], a[NR - 1], a[NR]}'
    exec 3>&-
}
check "HELLO 3: a map, then RESP3 replies (a null is _)" "%7 _ +OK" "$(hello3)"
check "CLIENT SETNAME / GETNAME" "$(printf 'OK\nme')" \
    "$(printf 'CLIENT SETNAME me\nCLIENT GETNAME\n' | timeout 5 redis-cli -p "$(cport "$follower")")"
bigkeys=$(timeout 30 redis-cli -p "$(cport "$follower")" --bigkeys 2>&1)
check "redis-cli --bigkeys exits 0" 0 "$?"
check "redis-cli --bigkeys: every key sampled, all strings" "$want_keys $want_keys" \
    "$(sed -n 's/^Sampled \([0-9]*\) keys.*/\1/p' <<<"$bigkeys") $(sed -n 's/^\([0-9]*\) strings with.*/\1/p' <<<"$bigkeys")"
# --stat prints a row a second, to a terminal (script gives it one); two rows are enough.
stat=$(timeout 5 script -qc "redis-cli -p $(cport "$other") --stat -i 1" /dev/null 2>&1 | tr -d '\r')
check "redis-cli --stat: the key count" yes \
    "$(grep -qE "^$want_keys +[0-9.]+[BKMG] +[0-9]+ +0 +[0-9]+" <<<"$stat" && echo yes || echo no)"

# redis-benchmark as a real client: SET, GET, INCR, MSET, pipelined, through a follower; it
# stops at the first error reply, so four figures mean every request was answered well.
# redis-benchmark stops at its first error reply; -TRYAGAIN (a leadership change under a loaded
# machine: not executed, retry) is what a client retries, so the run is retried for it, up to
# six times, and any other error fails the check.
for attempt in 1 2 3 4 5 6; do
    bench_out=$(timeout 60 redis-benchmark -p "$(cport "$follower")" -t set,get,incr,mset \
        -n 2000 -c 10 -P 4 -r 100 -q 2>&1)
    bench_rc=$?
    [[ $bench_rc -ne 0 ]] && grep -q 'TRYAGAIN' <<<"$bench_out" || break
    echo "     (redis-benchmark run $attempt met -TRYAGAIN (a leadership change): run again)"
done
check "redis-benchmark exits 0" 0 "$bench_rc"
[[ $bench_rc -eq 0 ]] || tr '\r' '\n' <<<"$bench_out" | grep -i 'err' | head -3 # what it said
check "redis-benchmark: a figure per test, no error" "4 0" \
    "$(grep -c 'requests per second' <<<"$bench_out") $(grep -ci 'error' <<<"$bench_out")"
counter=$(cli "$other" KEYS 'counter:*' | head -1)
check "redis-benchmark's counters are readable on another node" yes \
    "$([[ -n $counter && $(cli "$other" GET "$counter") =~ ^[1-9][0-9]*$ ]] && echo yes || echo no)"

# kill -9 the leader: the two others elect a new one, and the value is still there.
kill -KILL "${pid[$leader]}"
wait "${pid[$leader]}" 2>/dev/null
pid[$leader]=
old=$leader
t0=$(date +%s%N)
new=$(wait_leader "$follower $other" 50) || new=
t1=$(date +%s%N)
check "a new leader within 5 s of kill -9" yes "$([[ -n $new && $new != "$old" ]] && echo yes || echo no)"
echo "     (new leader $new after $(((t1 - t0) / 1000000)) ms)"
check "value readable after failover" hello "$(cli "$follower" GET greeting)"
check "SET after failover" OK "$(cli "$other" SET after failover)"

# Restart the killed node: it catches up with what was written while it was down.
start "$old"
if wait_get "$old" after failover 100; then caught=yes; else caught=no; fi
check "restarted node catches up" yes "$caught"
check "restarted node reads old value" hello "$(cli "$old" GET greeting)"

if [[ $failed -gt 0 ]]; then
    for i in 1 2 3; do
        echo "---- node $i log (tail)"
        tail -20 "$tmp/log$i"
    done
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
#
# tests/node_redis_diff.sh — raftkv against a real redis-server, reply for reply: a three-node
# raftkv cluster and a redis-server (started here on a reserved 127.0.0.1 port, 16 databases,
# no persistence) get the same generated command sequences (tests/redis_diff.py, seeded: the
# same seed sends the same commands), in RESP2 and in RESP3, and every reply must be the same
# bytes, but for the intended deviations listed in node/DEVIATIONS.md.
#
# Usage: tests/node_redis_diff.sh PATH/TO/raftkv-node [SEED [SEQUENCES]]
set -uo pipefail

node_bin=${1:?usage: node_redis_diff.sh PATH/TO/raftkv-node [SEED [SEQUENCES]]}
seed=${2:-1}
sequences=${3:-200}
for tool in redis-server redis-cli python3; do
    command -v "$tool" >/dev/null || {
        echo "node_redis_diff: $tool not found (ci/test installs it)" >&2
        exit 1
    }
done
port_offset=7
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

redis_port=$((base + 4))
redis_pid=
stop_all() {
    [[ -n $redis_pid ]] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    cleanup
}
trap stop_all EXIT

mkdir -p "$tmp/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --databases 16 --save "" --appendonly no \
    --dir "$tmp/redis" --logfile "$tmp/redis.log" &
redis_pid=$!
for i in 1 2 3; do start "$i"; done

await() { # await TENTHS COMMAND...: runs COMMAND every 0.1 s until it succeeds
    local tries=$1
    shift
    for _ in $(seq 1 "$tries"); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
leader_known() {
    for i in 1 2 3; do
        timeout 5 redis-cli -p "$(cport "$i")" INFO raft 2>/dev/null | tr -d '\r' |
            grep -qx role:leader && return 0
    done
    return 1
}
check "redis-server up" yes "$(await 300 redis-cli -p "$redis_port" PING >/dev/null && echo yes || echo no)"
check "a raftkv leader" yes "$(await 300 leader_known && echo yes || echo no)"
# Every node has a leader to forward to before the first command goes to it.
for i in 1 2 3; do
    await 300 bash -c "[[ \$(redis-cli -p $(cport "$i") INFO raft | tr -d '\r' | sed -n 's/^leader_id://p') != 0 ]]"
done

python3 "$(dirname "${BASH_SOURCE[0]}")/redis_diff.py" --seed "$seed" --sequences "$sequences" \
    --raftkv "$(cport 1),$(cport 2),$(cport 3)" --redis "$redis_port" >"$tmp/diff.out" 2>&1
rc=$?
cat "$tmp/diff.out"
check "every reply the same as redis-server's (seed $seed)" 0 "$rc"

# ---- the same with requirepass on both: NOAUTH, WRONGPASS, AUTH, HELLO ... AUTH --------------
pw=diff-secret
for i in 1 2 3; do
    kill -TERM "${pid[$i]}"
    wait "${pid[$i]}"
    "$node_bin" --id "$i" --peers "$peers" --client "127.0.0.1:$(cport "$i")" \
        --data-dir "$tmp/n$i" --requirepass "$pw" 2>>"$tmp/log$i" &
    pid[$i]=$!
done
redis-cli -p "$redis_port" CONFIG SET requirepass "$pw" >/dev/null
check "raftkv with requirepass: NOAUTH before AUTH" "NOAUTH Authentication required." \
    "$(await 300 redis-cli -p "$(cport 1)" PING >/dev/null; redis-cli -p "$(cport 1)" GET x 2>&1)"
for i in 1 2 3; do
    await 300 bash -c "[[ \$(redis-cli -p $(cport "$i") -a $pw --no-auth-warning INFO raft | tr -d '\r' | sed -n 's/^leader_id://p') != 0 ]]"
done
python3 "$(dirname "${BASH_SOURCE[0]}")/redis_diff.py" --seed "$((seed + 1000))" \
    --sequences "$((sequences / 4))" --password "$pw" \
    --raftkv "$(cport 1),$(cport 2),$(cport 3)" --redis "$redis_port" >"$tmp/diff2.out" 2>&1
rc=$?
cat "$tmp/diff2.out"
check "every reply the same with requirepass (seed $((seed + 1000)))" 0 "$rc"

if [[ $failed -gt 0 ]]; then
    for f in "$tmp"/log*; do
        echo "---- $f (tail)"
        tail -5 "$f"
    done
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

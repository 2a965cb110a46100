# tests/lib/cluster.sh — sourced by the end-to-end tests that start real raftkv-node processes
# on 127.0.0.1 (tests/node_*.sh, tests/cli.sh, ci/bench): a temporary directory, a block of
# ports reserved for this test, start/stop of nodes 1..3, and a trap that stops everything.
#
# The caller sets node_bin (the raftkv-node binary) and, optionally, port_offset (so tests that
# run in parallel search different blocks), then sources this file. It provides: tmp, pid[],
# passed, failed, peers, cport N (a node's client port), members (host:port,...), start N [ARGS], and
# check WHAT WANT GOT (counts into passed/failed and prints one line), and for talking to the
# nodes: rk_cli N ARGS... (redis-cli, retried while -TRYAGAIN), rk_info N FIELD (one INFO field),
# rk_wait_leader TENTHS (prints the leader's id once one says so), and rk_wait_log FILE TEXT
# TENTHS (awaits a fixed string in a log).

tmp=$(mktemp -d "${TMPDIR:-/tmp}/raftkv-test.XXXXXX")

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

# A port is taken if something accepts a connection on it (bash's /dev/tcp). A node that still
# fails to bind (a race with another process) exits with "cannot listen", shown in its log.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Ports: a block of 20 (base+1 .. base+20) that no other test of this machine holds. Blocks are
# aligned (base = 10000 + 20k), each guarded by a lock file held (flock) until this shell exits,
# so tests running in parallel never pick overlapping ports; a block with a port something else
# listens on is passed over. Nodes use base+1..3 (clients) and base+11..13 (peers); the rest
# (base+4..10, base+14..20) is the caller's for extra processes. All of it lies below the
# kernel's ephemeral range (outgoing connections take ports from there, so a port in it could
# be taken between the check and the bind): 10000 .. 29999 with Linux's default 32768.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
blocks=$(((${low:-32768} - 10000 - 1000) / 20))
[[ $blocks -gt 0 ]] || blocks=50
lockdir=${TMPDIR:-/tmp}/raftkv-test-ports
mkdir -p "$lockdir"
k=$(((${port_offset:-0} * 97 + $$) % blocks))
base=
for _ in $(seq 1 200); do
    b=$((10000 + k * 20))
    exec {block_lock}>"$lockdir/$b.lock"
    if flock -n "$block_lock"; then
        ok=1
        for off in $(seq 1 20); do
            port_free $((b + off)) || { ok=0; break; }
        done
        if [[ $ok -eq 1 ]]; then
            base=$b
            break
        fi
        flock -u "$block_lock"
    fi
    exec {block_lock}>&-
    k=$(((k + 1) % blocks))
done
[[ -n $base ]] || { echo "cluster.sh: no free block of 20 ports" >&2; exit 1; }
peers="1=127.0.0.1:$((base + 11)),2=127.0.0.1:$((base + 12)),3=127.0.0.1:$((base + 13))"
cport() { echo $((base + $1)); }
members="127.0.0.1:$(cport 1),127.0.0.1:$(cport 2),127.0.0.1:$(cport 3)"

# start N [SETTING VALUE]...: node N, with these settings added (ci/bench: TLS).
start() {
    "$node_bin" --id "$1" --peers "$peers" --client "127.0.0.1:$(cport "$1")" \
        --data-dir "$tmp/n$1" "${@:2}" 2>>"$tmp/log$1" &
    pid[$1]=$!
}

# One command to node $1; retried (every 0.1 s, up to 10 s) while the answer is -TRYAGAIN: the
# command certainly did not execute (an election is under way), so retrying is what a client does.
rk_cli() {
    local i=$1 out
    shift
    for _ in $(seq 1 100); do
        out=$(timeout 10 redis-cli -p "$(cport "$i")" "$@" 2>&1)
        [[ $out == TRYAGAIN* ]] || break
        sleep 0.1
    done
    printf '%s\n' "$out"
}

# Waits up to $3 tenths of a second for the fixed string $2 to appear in file $1.
rk_wait_log() {
    for _ in $(seq 1 "$3"); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

rk_info() { timeout 5 redis-cli -p "$(cport "$1")" INFO 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }

# Polls every 0.1 s, up to $1 tenths, for a node that says it is the leader; prints its id.
rk_wait_leader() {
    for _ in $(seq 1 "$1"); do
        for i in 1 2 3; do
            [[ -n ${pid[$i]:-} && $(rk_info "$i" role) == leader ]] && { echo "$i"; return 0; }
        done
        sleep 0.1
    done
    return 1
}

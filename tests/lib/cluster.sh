# tests/lib/cluster.sh — sourced by the end-to-end tests that start real raftkv-node processes
# on 127.0.0.1 (tests/node_cluster.sh, tests/cli.sh): a temporary directory, a free block of
# ports, start/stop of nodes 1..3, and a trap that stops everything it started.
#
# The caller sets node_bin (the raftkv-node binary) and, optionally, port_offset (so tests that
# run in parallel search different blocks), then sources this file. It provides: tmp, pid[],
# passed, failed, peers, cport N (a node's client port), members (host:port,...), start N.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/raftkv-test.XXXXXX")
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

# Below the kernel's ephemeral range (outgoing connections take ports from it, so a port there
# can be taken between the check and the bind): 10000 .. 29999 with Linux's default 32768.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
span=$(((${low:-32768} - 10000 - 1000) / 10))
[[ $span -gt 0 ]] || span=100
base=$((10000 + ${port_offset:-0} + ($$ % span) * 10))
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

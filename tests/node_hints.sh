#!/usr/bin/env bash
#
# tests/node_hints.sh — a store that never merged restarts from hint files (issue 12, point 4;
# bitcask.h, ROLL HINTS): three real nodes on 127.0.0.1 with small data files
# (--store-file-bytes 65536) and merges off write 30,000 distinct keys (MSETs of 100 keys of about
# 100 bytes: some 4 MB over 50+ rolled files, no key ever overwritten, so no merge would be due).
# Every data file a node rolled away from must get its hint (INFO raftkv_roll_hints_written, the
# *.hint files on disk); a follower restarted must load those files from their hints and scan
# only the last one (INFO raftkv_open_hint_files_loaded, raftkv_open_data_files_scanned, the
# log), whose hint that start writes; a restart with one hint damaged and one removed scans just
# those two files, says so in its log, and every value still reads back.
#
# Usage: tests/node_hints.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_hints.sh PATH/TO/raftkv-node}
command -v redis-cli >/dev/null || { echo "node_hints: redis-cli not found" >&2; exit 1; }
port_offset=23
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# cluster.sh's start, with small data files and no merge (both triggers off).
start() {
    "$node_bin" --id "$1" --peers "$peers" --client "127.0.0.1:$(cport "$1")" \
        --data-dir "$tmp/n$1" --store-file-bytes 65536 --merge-frag-percent 0 \
        --merge-dead-bytes 0 2>>"$tmp/log$1" &
    pid[$1]=$!
}

batches=300
per=100
keys=$((batches * per))
value() { printf 'v%06d-%090d' "$1" 0; } # about 100 bytes

for i in 1 2 3; do start "$i"; done
leader=$(rk_wait_leader 150)
check "a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"

for b in $(seq 0 $((batches - 1))); do
    line="MSET"
    for k in $(seq $((b * per + 1)) $(((b + 1) * per))); do line+=" key$k $(value "$k")"; done
    echo "$line"
done >"$tmp/msets"
timeout 300 redis-cli -p "$(cport "$leader")" <"$tmp/msets" >"$tmp/msets.out" 2>&1
# An MSET that did not answer OK (an election on a loaded machine) again, one by one.
mapfile -t replies <"$tmp/msets.out"
missed=0
for b in $(seq 0 $((batches - 1))); do
    if [[ ${replies[$b]:-} != OK ]]; then
        missed=$((missed + 1))
        leader=$(rk_wait_leader 150)
        mapfile -t -s "$b" -n 1 one <"$tmp/msets"
        # shellcheck disable=SC2086 # the words of the MSET line are its arguments
        rk_cli "$leader" ${one[0]} >/dev/null
    fi
done
echo "$missed MSETs retried"

# Every node applies everything (awaited), and has rolled many files, each with its hint.
target=$(rk_info "$leader" commit_index)
follower=$((leader % 3 + 1))
for i in 1 2 3; do
    for _ in $(seq 1 600); do
        applied=$(rk_info "$i" applied_index)
        [[ -n $applied && $applied -ge ${target:-0} ]] && break
        sleep 0.1
    done
done
files=$(rk_info "$follower" raftkv_store_data_files)
# A hint is written by the store thread after the roll: awaited.
for _ in $(seq 1 300); do
    hints=$(rk_info "$follower" raftkv_roll_hints_written)
    [[ -n $hints && $hints -ge $((files - 1)) ]] && break
    sleep 0.1
done
echo "node $follower: $files data files, $hints roll hints written"
check "node $follower rolled over many data files (>= 40)" yes \
    "$([[ ${files:-0} -ge 40 ]] && echo yes || echo no)"
check "node $follower never merged" 0 "$(rk_info "$follower" raftkv_merges_done)"
check "every file it rolled away from has its hint (INFO)" yes \
    "$([[ ${hints:-0} -ge $((files - 1)) ]] && echo yes || echo no)"
on_disk=$(find "$tmp/n$follower/kv" -name '*.hint' | wc -l)
check "and on disk (*.hint files >= data files - 1)" yes \
    "$([[ $on_disk -ge $((files - 1)) ]] && echo yes || echo no)"

restart() {
    kill -TERM "${pid[$1]}"
    wait "${pid[$1]}"
    [[ -n ${2:-} ]] && $2
    start "$1"
    for _ in $(seq 1 300); do
        [[ -n $(rk_info "$1" raftkv_open_hint_files_loaded) ]] && return 0
        sleep 0.1
    done
    return 1
}

# A follower restarts: its store opens from the hint files, scanning only its last data file.
restart "$follower"
check "the restarted node answers" 0 $?
loaded=$(rk_info "$follower" raftkv_open_hint_files_loaded)
scanned=$(rk_info "$follower" raftkv_open_data_files_scanned)
echo "restart: $loaded data files from hints, $scanned scanned"
check "its store was loaded from hint files (INFO: >= data files - 1)" yes \
    "$([[ ${loaded:-0} -ge $((files - 1)) ]] && echo yes || echo no)"
check "it scanned only its last data file" 1 "$scanned"
check "its log says so" yes \
    "$(grep -Eq "store: [0-9]+ keys .*: $loaded from hint files, 1 scanned" "$tmp/log$follower" &&
        echo yes || echo no)"

# One hint damaged, one removed: those two files are scanned, the log says why, nothing lost.
damage() {
    mapfile -t h < <(find "$tmp/n$follower/kv" -name '*.hint' | sort)
    printf 'X' | dd of="${h[1]}" bs=1 seek=40 conv=notrunc status=none
    rm -f "${h[2]}"
}
restart "$follower" damage
check "the node restarted with a damaged and a missing hint answers" 0 $?
check "it scanned just those two data files (the last got its hint at the previous start)" 2 \
    "$(rk_info "$follower" raftkv_open_data_files_scanned)"
check "INFO counts the hint it ignored" 1 "$(rk_info "$follower" raftkv_open_hint_files_ignored)"
check "its log says which and why" yes \
    "$(grep -q "1 hint files did not check out, their data files scanned instead (the first: .*hint: offset" \
        "$tmp/log$follower" && echo yes || echo no)"

for _ in $(seq 1 300); do
    applied=$(rk_info "$follower" applied_index)
    [[ -n $applied && $applied -ge ${target:-0} ]] && break
    sleep 0.1
done
for k in $(seq 1 37 "$keys") "$keys"; do echo "GET key$k"; done >"$tmp/gets"
timeout 60 redis-cli -p "$(cport "$follower")" <"$tmp/gets" >"$tmp/gets.out" 2>&1
mapfile -t got <"$tmp/gets.out"
bad=0
n=0
for k in $(seq 1 37 "$keys") "$keys"; do
    want=$(value "$k")
    [[ ${got[$n]:-} == "$want" || $(rk_cli "$follower" GET "key$k") == "$want" ]] || bad=$((bad + 1))
    n=$((n + 1))
done
check "every sampled value reads back from the restarted node ($n keys)" 0 "$bad"
check "DBSIZE there" "$keys" "$(rk_cli "$follower" DBSIZE)"
grep -h "store: " "$tmp/log$follower" | tail -3
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

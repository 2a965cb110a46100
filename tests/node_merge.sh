#!/usr/bin/env bash
#
# tests/node_merge.sh — raftkv-node merges its Bitcask store in the background (issue 12): three
# real nodes on 127.0.0.1 with small data files (--store-file-bytes 131072) overwrite 200 keys
# of 4 KB twelve times (about 10 MB written for 0.8 MB live). The nodes must merge on their own
# (the dead-bytes trigger), which INFO shows (raftkv_merges_done), the store's files on disk
# must shrink to a small multiple of the live data and carry hint files, a restarted node must
# load them (INFO raftkv_open_hint_files_loaded and its log), and every value must read back,
# from every node.
#
# Usage: tests/node_merge.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_merge.sh PATH/TO/raftkv-node}
command -v redis-cli >/dev/null || { echo "node_merge: redis-cli not found" >&2; exit 1; }
port_offset=17
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

file_bytes=131072
# cluster.sh's start, with small data files and a merge that triggers on little dead data.
start() {
    "$node_bin" --id "$1" --peers "$peers" --client "127.0.0.1:$(cport "$1")" \
        --data-dir "$tmp/n$1" --store-file-bytes $file_bytes --merge-frag-percent 50 \
        --merge-min-dead-bytes 262144 2>>"$tmp/log$1" &
    pid[$1]=$!
}

keys=200
rounds=12
value() { printf 'r%02d-k%03d-%04000d' "$1" "$2" 0; } # 4 KB and a bit: round, key, padding

for i in 1 2 3; do start "$i"; done
leader=$(rk_wait_leader 150)
check "a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"

# Every round overwrites every key; one redis-cli per round (commands on its stdin).
for r in $(seq 1 "$rounds"); do
    for k in $(seq 1 "$keys"); do
        echo "SET key$k $(value "$r" "$k")"
    done >"$tmp/round"
    timeout 120 redis-cli -p "$(cport "$leader")" <"$tmp/round" >"$tmp/round.out" 2>&1
done
# The last round's SETs that did not answer OK (an election on a loaded machine) again, one by
# one, so that every key's value is known.
missed=0
mapfile -t replies <"$tmp/round.out"
for k in $(seq 1 "$keys"); do
    if [[ ${replies[$((k - 1))]:-} != OK ]]; then
        missed=$((missed + 1))
        leader=$(rk_wait_leader 150)
        rk_cli "$leader" SET "key$k" "$(value "$rounds" "$k")" >/dev/null
    fi
done
echo "the last round: $missed SETs retried"

# Each node merges on its own, in the background: await it (generous on a loaded machine).
merged=0
for _ in $(seq 1 600); do
    merged=0
    for i in 1 2 3; do
        [[ $(rk_info "$i" raftkv_merges_done) -ge 1 && $(rk_info "$i" raftkv_merge_in_progress) == 0 ]] &&
            merged=$((merged + 1))
    done
    [[ $merged -eq 3 ]] && break
    sleep 0.1
done
check "every node merged on its own (INFO raftkv_merges_done >= 1)" 3 "$merged"

written=$((keys * rounds * 4000))
for i in 1 2 3; do
    # A later merge may be under way (its new files beside the old ones until its cleanup):
    # the bound is awaited, not sampled once; the writes have stopped, so merges converge.
    for _ in $(seq 1 600); do
        live=$(rk_info "$i" raftkv_store_live_bytes)
        data=$(rk_info "$i" raftkv_store_data_bytes)
        disk=$(du -sb "$tmp/n$i/kv" | cut -f1)
        # Unmerged, the store would hold every value written; merged, the live data, what was
        # written since the last merge (less than what triggers one: half of the closed files,
        # the open file) and the hints.
        bound=$((3 * ${live:-0} + 4 * file_bytes))
        [[ ${live:-0} -gt 0 && $disk -le $bound && $disk -lt $((written / 3)) ]] && break
        sleep 0.1
    done
    echo "node $i: $written bytes of values written, store $data bytes ($live live), kv dir $disk bytes"
    check "node $i: the kv directory shrank to at most 3 x live + 4 files ($bound)" yes \
        "$([[ ${live:-0} -gt 0 && $disk -le $bound && $disk -lt $((written / 3)) ]] && echo yes || echo no)"
    check "node $i: the merged files have hint files" yes \
        "$(compgen -G "$tmp/n$i/kv/*.hint" >/dev/null && echo yes || echo no)"
    check "node $i: INFO's data bytes agree with the directory (within the hints)" yes \
        "$([[ -n $data && $data -le $disk ]] && echo yes || echo no)"
done

# A follower restarts: its store opens from the hint files.
follower=$((leader % 3 + 1))
kill -TERM "${pid[$follower]}"
wait "${pid[$follower]}"
start "$follower"
up=no
for _ in $(seq 1 300); do
    [[ -n $(rk_info "$follower" raftkv_open_hint_files_loaded) ]] && { up=yes; break; }
    sleep 0.1
done
check "the restarted node answers" yes "$up"
check "its store was loaded from hint files (INFO)" yes \
    "$([[ $(rk_info "$follower" raftkv_open_hint_files_loaded) -ge 1 ]] && echo yes || echo no)"
check "its log says so" yes \
    "$(grep -q "store: .* [1-9][0-9]* from hint files" "$tmp/log$follower" && echo yes || echo no)"

# Every value reads back, from every node (the restarted one once it has applied everything).
target=$(rk_info "$leader" commit_index)
for _ in $(seq 1 300); do
    applied=$(rk_info "$follower" applied_index)
    [[ -n $applied && $applied -ge ${target:-0} ]] && break
    sleep 0.1
done
for i in 1 2 3; do
    for k in $(seq 1 "$keys"); do echo "GET key$k"; done >"$tmp/gets"
    timeout 60 redis-cli -p "$(cport "$i")" <"$tmp/gets" >"$tmp/gets.out" 2>&1
    mapfile -t got <"$tmp/gets.out"
    bad=0
    for k in $(seq 1 "$keys"); do
        want=$(value "$rounds" "$k")
        # A reply that is not the value (an election's -TRYAGAIN) is asked again, one by one.
        [[ ${got[$((k - 1))]:-} == "$want" || $(rk_cli "$i" GET "key$k") == "$want" ]] ||
            bad=$((bad + 1))
    done
    check "node $i: every value reads back ($keys keys)" 0 "$bad"
done
echo "node $leader's merges:"
grep -h "merge: \|store: " "$tmp/log$leader" | tail -4
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

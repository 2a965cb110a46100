#!/usr/bin/env bash
#
# tests/node_backup.sh — backup and restore with real nodes (issue 17 point 5): a 3-node cluster
# gets 50k keys (raftkv-load fill), keys with a TTL and keys in other databases; a writer runs a
# known sequence of commands (SET w:i, DEL d:i, SET o:(i mod 100)) while `raftkv-cli backup`
# copies the cluster from a follower in small chunks (so the writes land between chunks); then
# `raftkv-tool restore` seeds three new members, which start as a new cluster on other ports.
# The restored cluster must serve exactly the static data (every key, value and whether it has
# a TTL, in every database), the writer's keys must be a consistent cut of its sequence that
# holds every step acknowledged before the backup started, and it takes new writes. Damaged
# backups (a flipped byte, a cut file, an unfinished one) are refused with what and where, and
# leave no directory; a failed backup leaves no file.
#
# Usage: tests/node_backup.sh RAFTKV-NODE RAFTKV-CLI RAFTKV-TOOL RAFTKV-LOAD [KEYS]
# KEYS (default $RAFTKV_BACKUP_KEYS, else 50000): the keys of the fill. ctest node_backup uses
# the default; node_backup_1m (label heavy) 1,000,000, as issue 17 asks. Each phase's time is
# printed (`time: PHASE S s`).
set -uo pipefail

node_bin=${1:?usage: node_backup.sh RAFTKV-NODE RAFTKV-CLI RAFTKV-TOOL RAFTKV-LOAD [KEYS]}
cli_bin=${2:?}
tool_bin=${3:?}
load_bin=${4:?}
keys=${5:-${RAFTKV_BACKUP_KEYS:-50000}}
phase_t0=$(date +%s%N)
phase() { # NAME: prints the time since the previous phase
    local t=$(date +%s%N)
    echo "time: $1 $(((t - phase_t0) / 1000000)) ms"
    phase_t0=$t
}
command -v redis-cli >/dev/null || { echo "node_backup: redis-cli not found" >&2; exit 1; }
py=$(dirname "${BASH_SOURCE[0]}")/node_backup.py
port_offset=17
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

D=20000 # the writer's steps at most (d: keys)
O=100   # o: keys

for i in 1 2 3; do start "$i"; done
leader=$(rk_wait_leader 300)
check "a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"
follower=$((leader % 3 + 1))
"$load_bin" fill --nodes "$members" --keys "$keys" --value-size 100 -q >"$tmp/fill.out" 2>&1
check "$keys keys written by raftkv-load fill" "keys=$keys written=$keys" \
    "$(grep '^keys=' "$tmp/fill.out")"
phase "fill ($keys keys)"
check "keys with a TTL" "OK OK" "$(rk_cli 1 SET t:1 one EX 3600) $(rk_cli 2 SET t:2 two PX 7200000)"
check "keys in databases 3 and 15" "OK OK" \
    "$(rk_cli 1 -n 3 SET db3 three) $(rk_cli 3 -n 15 SET db15 fifteen)"
python3 "$py" seed "$(cport "$leader")" $D $O
python3 "$py" writer "$(cport "$leader")" "$tmp/stop" "$tmp/steps" $D $O &
writer_pid=$!
acked=no
for _ in $(seq 1 600); do
    [[ $(rk_cli "$follower" EXISTS w:20) == 1 ]] && { acked=yes; break; }
    sleep 0.1
done
check "the writer acknowledged 20 steps before the backup" yes "$acked"

phase "seed and start the writer"
out=$("$cli_bin" -p "$(cport "$follower")" backup --chunk-bytes 16384 "$tmp/b.rkb" 2>"$tmp/backup.err")
rc=$?
phase "backup under the writer ($(stat -c %s "$tmp/b.rkb" 2>/dev/null) bytes)"
touch "$tmp/stop"
wait "$writer_pid"
echo "$out"
check "raftkv-cli backup from follower $follower exits 0" 0 "$rc"
check "the backup file is there, and no .part" "yes no" \
    "$([[ -s $tmp/b.rkb ]] && echo yes || echo no) $([[ -e $tmp/b.rkb.part ]] && echo yes || echo no)"
want_keys=$((keys + 4)) # fill, t:1, t:2, db3, db15 (and the writer's, counted apart)
echo "$out" | grep -Eq "index [0-9]+ term [0-9]+ cluster 1: [0-9]+ keys, [0-9]+ records, [0-9]+ bytes"
check "it prints the index, term, keys and bytes" 0 $?
echo "writer steps: $(cat "$tmp/steps")"

python3 "$py" dump "$(cport 1)" "$tmp/a.txt" >/dev/null
check "the static keys of the old cluster" "$want_keys" "$(wc -l <"$tmp/a.txt")"
phase "dump of the old cluster"

# A backup that cannot finish leaves nothing.
"$cli_bin" -p "$(($(cport 1) + 9))" backup "$tmp/none.rkb" 2>/dev/null
check "a failed backup exits 1 and leaves no file" "1 no no" \
    "$? $([[ -e $tmp/none.rkb ]] && echo yes || echo no) $([[ -e $tmp/none.rkb.part ]] && echo yes || echo no)"

# Damaged backups are refused with what and where, and leave no directory.
size=$(stat -c %s "$tmp/b.rkb")
cp "$tmp/b.rkb" "$tmp/flip.rkb"
printf '\xff' | dd of="$tmp/flip.rkb" bs=1 seek=$((size / 2)) conv=notrunc status=none
head -c $((size - 100)) "$tmp/b.rkb" >"$tmp/cut.rkb"
head -c 64 /dev/zero >"$tmp/part.rkb"
tail -c +65 "$tmp/b.rkb" >>"$tmp/part.rkb"
pb="1=127.0.0.1:$((base + 14)),2=127.0.0.1:$((base + 15)),3=127.0.0.1:$((base + 16))"
for bad in flip cut part; do
    msg=$("$tool_bin" restore "$tmp/$bad.rkb" --data-dir "$tmp/bad" --id 1 --peers "$pb" 2>&1)
    rc=$?
    echo "  $bad: $msg"
    check "restore refuses the $bad backup (exit 1, no directory)" "1 no" \
        "$rc $([[ -e $tmp/bad || -e $tmp/bad.restoring ]] && echo yes || echo no)"
done
msg=$("$tool_bin" restore "$tmp/flip.rkb" --data-dir "$tmp/bad" --id 1 --peers "$pb" 2>&1)
check "the flipped byte is named: its chunk and offset" yes \
    "$([[ $msg == *chunk*offset* ]] && echo yes || echo no)"

phase "damaged backups"
for i in 1 2 3; do
    "$tool_bin" restore "$tmp/b.rkb" --data-dir "$tmp/r$i" --id "$i" --peers "$pb" >"$tmp/restore$i.out" 2>&1
    check "restore member $i" 0 $?
done
phase "restore of three members"
cat "$tmp/restore1.out"
"$tool_bin" restore "$tmp/b.rkb" --data-dir "$tmp/r1" --id 1 --peers "$pb" >/dev/null 2>&1
check "restore refuses an existing directory" 2 $?
"$tool_bin" check "$tmp/r1" >"$tmp/check.out" 2>&1
check "raftkv-tool check says the restored directory is ok" "0 ok" "$? $(tail -1 "$tmp/check.out")"

# The old cluster goes; the new one starts from the restored directories on other ports.
for i in 1 2 3; do kill -TERM "${pid[$i]}"; done
for i in 1 2 3; do wait "${pid[$i]}"; done
cport() { echo $((base + 3 + $1)); }
for i in 1 2 3; do
    "$node_bin" --id "$i" --peers "$pb" --client "127.0.0.1:$(cport "$i")" \
        --data-dir "$tmp/r$i" 2>>"$tmp/logb$i" &
    pid[$i]=$!
done
leader=$(rk_wait_leader 300)
check "the restored cluster elects a leader" yes "$([[ -n $leader ]] && echo yes || echo no)"
phase "start of the restored cluster"
# Issue 17: the restored configuration records the new members' peer addresses (--peers).
check "the restored configuration records member 2's peer address" "127.0.0.1:$((base + 15))" \
    "$(timeout 5 redis-cli -p "$(cport 1)" RAFTKV.MEMBER LIST | awk 'NR > 3 { v[++n] = $0 } END { for (i = 1; i + 3 <= n; i += 4) if (v[i] == 2) print v[i + 2] }')"
python3 "$py" dump "$(cport 2)" "$tmp/b.txt" >/dev/null
cmp -s "$tmp/a.txt" "$tmp/b.txt"
check "it serves exactly the static keys, values and TTL flags of the backup" 0 $?
phase "dump and compare of the restored cluster"
[[ -s $tmp/b.txt ]] && diff "$tmp/a.txt" "$tmp/b.txt" | head -5
m=$(python3 "$py" cut "$(cport 3)" $D $O)
check "the writer's keys are a consistent cut holding every step acked before (>= 20)" yes \
    "$([[ $m =~ ^[0-9]+$ && $m -ge 20 ]] && echo yes || echo "no: $m")"
echo "the backup holds $m of the writer's steps"
ttl=$(python3 "$py" ttl "$(cport 1)" 0 t:1)
check "t:1 still expires, within its hour" yes \
    "$([[ $ttl -gt 0 && $ttl -le 3600000 ]] && echo yes || echo "no: $ttl")"
check "the restored cluster takes writes" "OK restore" "$(rk_cli 1 SET after restore) $(rk_cli 2 GET after)"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
# raftkv_tool.sh TOOL FIXTURE — raftkv-tool's contract, end to end, on a real data directory that
# FIXTURE (tests/raftkv_fixture.c) writes through fs_posix: check passes and modifies nothing;
# dump shows a known entry, a known key, a session and escapes; stats prints ratios; a byte
# flipped in a segment or in a data file makes check exit 1 naming that file and an offset at or
# before the byte; a torn tail is a note, not a problem; a flipped bit in synced data at the end
# of the newest segment is corruption; a store ahead of its log, every problem at once, format 1
# and a snapshot-installed directory (FIXTURE --snapshot); usage errors exit 2.
set -u
tool=$1 fixture=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    checks=$((checks + 1))
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}

# Flips the low bit of the byte at OFFSET of FILE in place.
flip() { # flip FILE OFFSET
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf %03o $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none
}

# The offset N of "offset N" on check's problem line.
problem_offset() { sed -n 's/^problem: .* offset \([0-9]*\):.*/\1/p' "$1"; }

# Checksums of every file of the data directory, to compare before and after.
digest() { (cd "$1" && find . -type f | sort | xargs sha256sum); }

dir=$tmp/data
"$fixture" "$dir"
check "fixture writes a data directory" test -d "$dir/log" -a -d "$dir/kv"
digest "$dir" >"$tmp/before"

# ---- check on the intact directory ----------------------------------------------------------
"$tool" check "$dir" >"$tmp/check" 2>"$tmp/check.err"
check "check exits 0" test $? -eq 0
check "check ends with ok" test "$(tail -1 "$tmp/check")" = ok
check "check counts the entries" grep -q '^  entries: 302, index 1..302, max term 2$' "$tmp/check"
check "check shows the hard state" grep -q '^  hard state: term 2, vote 1, commit 302$' "$tmp/check"
check "check counts segments" grep -Eq '^  segments: [2-9] \(' "$tmp/check"
check "check counts data files" grep -Eq '^  data files: [2-9] \(' "$tmp/check"
check "check counts keys and sessions" grep -Eq '^  live keys: [0-9]+ \([0-9]+ user keys, 4 sessions\)' "$tmp/check"
check "check counts hint files" grep -Eq '^  hint files: [1-9]' "$tmp/check"
check "check prints nothing on stderr" test ! -s "$tmp/check.err"

# ---- dump -----------------------------------------------------------------------------------
"$tool" dump "$dir" >"$tmp/dump" 2>&1
check "dump exits 0" test $? -eq 0
check "dump shows the no-op entry" grep -qx 'entry 1 term 1 noop' "$tmp/dump"
check "dump decodes a known entry" \
    grep -qx 'entry 302 term 2 normal PUT "known-key" = "known-value" (client 9, seq 1)' "$tmp/dump"
check "dump decodes a DEL" grep -qx 'entry 9 term 2 normal DEL "key-09" (client 1, seq 2)' "$tmp/dump"
check "dump decodes a PUT_IF" \
    grep -qx 'entry 50 term 2 normal PUT_IF "key-50" = "fifty" if absent (NX) (client 2, seq 13)' "$tmp/dump"
check "dump decodes an INCRBY" \
    grep -qx 'entry 51 term 2 normal INCRBY "counter" by -3 (client 3, seq 13)' "$tmp/dump"
check "dump decodes an MSET" \
    grep -qx 'entry 52 term 2 normal MSET 2 pairs: "m1" = "x", "m2" = "y" (no session)' "$tmp/dump"
check "dump decodes a generic command" \
    grep -qx 'entry 53 term 2 normal SET db 2 flags 0x100 num 10 "db2-key" "v" at 1000 ms (no session)' "$tmp/dump"
check "dump shows a key of db 2 with its deadline" \
    grep -qx 'key (db 2) "db2-key" = "v" (expires at 11000 ms)' "$tmp/dump"
check "dump escapes and cuts a binary value" \
    grep -q '^entry 100 term 2 normal PUT "key-03" = "\\x00bcdefg\\x07ij.*"\.\.\. (300 bytes) (no session)$' "$tmp/dump"
check "dump shows a known key" grep -qx 'key "known-key" = "known-value"' "$tmp/dump"
check "dump decodes a session" grep -qx 'session 9 last_seq 1 last_index 302 result PUT num 0' "$tmp/dump"
check "dump lists the log before the store" \
    test "$(grep -n '^# store' "$tmp/dump" | cut -d: -f1)" -gt "$(grep -n '^entry 302 ' "$tmp/dump" | cut -d: -f1)"
"$tool" dump "$dir" >"$tmp/dump2" 2>&1
check "dump is deterministic" cmp -s "$tmp/dump" "$tmp/dump2"
"$tool" dump --width 0 "$dir" >"$tmp/dumpw" 2>&1
check "dump --width 0 never cuts" bash -c "! grep -q '(300 bytes)' '$tmp/dumpw'"

# ---- stats ----------------------------------------------------------------------------------
"$tool" stats "$dir" >"$tmp/stats" 2>&1
check "stats exits 0" test $? -eq 0
check "stats gives files and bytes per directory" grep -Eq '^log: .*: [0-9]+ files, [0-9]+ bytes$' "$tmp/stats"
check "stats gives the live/dead ratio" grep -Eq '^  live/dead ratio: [0-9]+\.[0-9]{3}$' "$tmp/stats"
check "stats gives live and dead bytes" grep -Eq '^  live bytes: [0-9]+ \([0-9.]+%\), dead bytes: ' "$tmp/stats"
check "stats gives hint coverage" grep -Eq 'hint coverage: [1-9][0-9]* of [0-9]+ data files' "$tmp/stats"
check "stats gives log entries and bytes" grep -Eq '^  entries: 302, [0-9]+ bytes' "$tmp/stats"

digest "$dir" >"$tmp/after"
check "check, dump and stats modify nothing" cmp -s "$tmp/before" "$tmp/after"

# ---- a byte flipped in a segment (not the last: no torn-tail rule there) ---------------------
cp -a "$dir" "$tmp/seg"
seg=$(cd "$tmp/seg/log" && ls seg-*.log | head -1)
flip "$tmp/seg/log/$seg" 1000
"$tool" check "$tmp/seg" >"$tmp/c1" 2>&1
check "flipped segment byte: check exits 1" test $? -eq 1
check "flipped segment byte: names the file" grep -q "^problem: log/$seg offset " "$tmp/c1"
off=$(problem_offset "$tmp/c1")
check "flipped segment byte: offset at or before the byte" test -n "$off" -a "${off:-99999}" -le 1000
check "flipped segment byte: the report still counts" grep -q '^  hard state: ' "$tmp/c1"
"$tool" dump "$tmp/seg" >/dev/null 2>"$tmp/d1"
check "flipped segment byte: dump exits 1 too" test $? -eq 1
check "flipped segment byte: dump says where" grep -q "problem: log/$seg offset " "$tmp/d1"

# ---- a byte flipped in a data file (not the last) -----------------------------------------
cp -a "$dir" "$tmp/data2"
data=$(cd "$tmp/data2/kv" && ls *.data | head -1)
flip "$tmp/data2/kv/$data" 700
"$tool" check "$tmp/data2" >"$tmp/c2" 2>&1
check "flipped data byte: check exits 1" test $? -eq 1
check "flipped data byte: names the file" grep -q "^problem: kv/$data offset " "$tmp/c2"
off=$(problem_offset "$tmp/c2")
check "flipped data byte: offset at or before the byte" test -n "$off" -a "${off:-99999}" -le 700

# ---- a byte flipped in a hint file -----------------------------------------------------------
cp -a "$dir" "$tmp/hint"
hint=$(cd "$tmp/hint/kv" && ls *.hint | head -1)
flip "$tmp/hint/kv/$hint" 40
"$tool" check "$tmp/hint" >"$tmp/c3" 2>&1
check "flipped hint byte: check exits 1 naming the hint" grep -q "^problem: kv/$hint offset " "$tmp/c3"

# ---- a torn tail: a note, not a problem, and nothing is cut ---------------------------------
cp -a "$dir" "$tmp/torn"
last=$(cd "$tmp/torn/log" && ls seg-*.log | tail -1)
size=$(stat -c %s "$tmp/torn/log/$last")
printf 'garbage' >>"$tmp/torn/log/$last"
"$tool" check "$tmp/torn" >"$tmp/c4" 2>&1
check "torn tail: check exits 0" test $? -eq 0
check "torn tail: reported as torn" \
    grep -qx "note: log: torn tail at $last offset $size (would be cut on open)" "$tmp/c4"
check "torn tail: ok all the same" test "$(tail -1 "$tmp/c4")" = ok
check "torn tail: not cut" test "$(stat -c %s "$tmp/torn/log/$last")" -eq $((size + 7))

# ---- a flipped bit in the last record of the newest segment: synced, so corruption ----------
# (core/log/seglog.c, TORN OR CORRUPT: a commit record after it vouches for it)
cp -a "$dir" "$tmp/lastrec"
last=$(cd "$tmp/lastrec/log" && ls seg-*.log | tail -1)
size=$(stat -c %s "$tmp/lastrec/log/$last")
flip "$tmp/lastrec/log/$last" $((size - 41 - 3))
"$tool" check "$tmp/lastrec" >"$tmp/c5" 2>&1
check "flipped last record: check exits 1" test $? -eq 1
check "flipped last record: corruption in synced data, not a torn tail" \
    grep -q "^problem: log/$last offset .*(in synced data: a commit record after it checks out)" "$tmp/c5"
check "flipped last record: says what the node does and the acknowledged index" \
    grep -q '^repair: automatic (repair plan below): the log is whole up to index 301, .* acknowledged entries up to index 302' "$tmp/c5"
check "flipped last record: the repair plan cuts the log there and promises 302" \
    grep -q '^repair plan: log: cut at '"$last"' offset .*promise 302: no vote until it holds entries up to 302 again' "$tmp/c5"

# ---- the newest segment truncated: a tail cut, then the store is ahead of the log ----------
cp -a "$dir" "$tmp/trunc"
last=$(cd "$tmp/trunc/log" && ls seg-*.log | tail -1)
truncate -s -50 "$tmp/trunc/log/$last"
"$tool" check "$tmp/trunc" >"$tmp/c6" 2>&1
check "store ahead of the log: check exits 1" test $? -eq 1
check "store ahead of the log: names the applied index and the log" \
    grep -qx 'problem: store applied index 302 outside the log \[0, 301\]' "$tmp/c6"
check "store ahead of the log: a repair line" grep -q '^repair: automatic (repair plan below; raft: applied index outside the log)' "$tmp/c6"
check "store ahead of the log: the plan discards both and promises 302" \
    grep -q '^repair plan: .*the log and the store are discarded; promise 302' "$tmp/c6"

# ---- every problem, not only the first: a bad log and a bad store ------------------------
cp -a "$tmp/seg" "$tmp/both"
data=$(cd "$tmp/both/kv" && ls *.data | head -1)
flip "$tmp/both/kv/$data" 700
"$tool" check "$tmp/both" >"$tmp/c7" 2>&1
check "two problems: check exits 1" test $? -eq 1
check "two problems: both reported" test "$(grep -c '^problem: ' "$tmp/c7")" -eq 2
check "two problems: counted" grep -qx '2 problems: the node repairs at its next start (repair plan)' "$tmp/c7"

# ---- format 1 (no format file beside segments): refused by the node, a problem here -------
cp -a "$dir" "$tmp/fmt1"
rm "$tmp/fmt1/log/format"
"$tool" check "$tmp/fmt1" >"$tmp/c8" 2>&1
check "format 1: check exits 1" test $? -eq 1
check "format 1: says so" grep -q '^problem: log: .*format 1' "$tmp/c8"

# ---- a node that installed a snapshot: the store's 'm' metadata key -----------------------
"$fixture" --snapshot "$tmp/snap"
"$tool" check "$tmp/snap" >"$tmp/s1" 2>&1
check "snapshot-installed: check exits 0" test $? -eq 0
check "snapshot-installed: check ends with ok" test "$(tail -1 "$tmp/s1")" = ok
check "snapshot-installed: the log starts after the snapshot" \
    grep -q '^  entries: 52, index 251..302, max term 2$' "$tmp/s1"
"$tool" dump "$tmp/snap" >"$tmp/s2" 2>&1
check "snapshot-installed: dump exits 0" test $? -eq 0
check "snapshot-installed: dump decodes the snapshot metadata" \
    grep -qx 'meta snapshot index 250 term 2' "$tmp/s2"
"$tool" stats "$tmp/snap" >"$tmp/s3" 2>&1
check "snapshot-installed: stats exits 0" test $? -eq 0

# ---- usage ----------------------------------------------------------------------------------
"$tool" --help >"$tmp/h" 2>&1
check "--help exits 0 and shows usage" bash -c "[ $? -eq 0 ] && grep -q '^usage: raftkv-tool check DIR' '$tmp/h'"
"$tool" >/dev/null 2>"$tmp/u1"
check "no command exits 2" test $? -eq 2
"$tool" frobnicate "$dir" >/dev/null 2>"$tmp/u2"
check "unknown command exits 2 and says so" bash -c "[ $? -eq 2 ] && grep -q \"unknown command 'frobnicate'\" '$tmp/u2'"
"$tool" check >/dev/null 2>"$tmp/u3"
check "missing DIR exits 2" test $? -eq 2
"$tool" check "$dir" "$dir" >/dev/null 2>&1
check "two directories exit 2" test $? -eq 2
"$tool" check --bogus "$dir" >/dev/null 2>&1
check "unknown option exits 2" test $? -eq 2
"$tool" dump --width x "$dir" >/dev/null 2>&1
check "bad --width exits 2" test $? -eq 2
"$tool" check "$tmp/nonexistent" >/dev/null 2>"$tmp/u4"
check "a missing data directory exits 2 with a message" \
    bash -c "[ $? -eq 2 ] && grep -q 'nonexistent/log' '$tmp/u4'"

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]

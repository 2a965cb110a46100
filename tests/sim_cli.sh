#!/usr/bin/env bash
# sim_cli.sh SIM SCENARIOS_DIR TESTS_SCENARIOS_DIR — the sim command's contract, end to end:
# byte-identical stdout for one seed, the range summary, a failing run's report and exit
# status, and a positioned error for a bad scenario file.
set -u
sim=$1 scn=$2 tscn=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    checks=$((checks + 1))
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}

"$sim" --seed 7 --trace "$scn/partition.scn" >"$tmp/a" 2>/dev/null
"$sim" --seed 7 --trace "$scn/partition.scn" >"$tmp/b" 2>/dev/null
check "same seed, byte-identical trace" cmp -s "$tmp/a" "$tmp/b"
check "trace has one line per event" test "$(wc -l <"$tmp/a")" -gt 10000
check "trace ends with a PASS summary" grep -q '^seed 7: PASS' "$tmp/a"
"$sim" --seed 8 "$scn/partition.scn" >"$tmp/c" 2>/dev/null
check "another seed, another run" bash -c "! cmp -s <(tail -1 '$tmp/a') '$tmp/c'"

"$sim" --seeds 1..5 "$scn/leader_crash.scn" >"$tmp/r" 2>"$tmp/r.err"
check "range exits 0 when all pass" test $? -eq 0
check "range ends with 'N passed, N failed'" grep -qx '5 passed, 0 failed' "$tmp/r"
check "wall-clock figures go to stderr" grep -q 'real time' "$tmp/r.err"

"$sim" --seed 3 "$tscn/unmeetable.scn" >"$tmp/f" 2>/dev/null
rc=$?
check "failing run exits 1" test $rc -eq 1
check "failing run names the check" grep -q 'failed check: liveness: no leader' "$tmp/f"
check "failing run prints the replay command" \
    grep -q "replay: build/bin/sim --seed 3 $tscn/unmeetable.scn" "$tmp/f"
"$sim" --seeds 1..3 "$tscn/unmeetable.scn" >"$tmp/g" 2>/dev/null
check "range lists a replay command per failing seed" test "$(grep -c '^replay:' "$tmp/g")" -eq 3
check "range counts the failures" grep -qx '0 passed, 3 failed' "$tmp/g"

"$sim" --seed 1 "$tscn/bad_id.scn" >/dev/null 2>"$tmp/e"
rc=$?
check "bad scenario exits 2" test $rc -eq 2
check "bad scenario error names file, line and column" grep -q 'bad_id.scn:2:' "$tmp/e"
"$sim" --seed 1 /nonexistent.scn >/dev/null 2>"$tmp/e2"
check "missing file is an error, not a crash" test $? -eq 2
"$sim" --seeds 5..1 "$scn/partition.scn" >/dev/null 2>&1
check "a reversed range is refused" test $? -eq 2

check "the summary line has the unavailability figure" grep -q '; unavailable [0-9]*ms; ' "$tmp/c"

"$sim" --seeds 1..3 --stop-on-fail "$tscn/unmeetable.scn" >"$tmp/s" 2>/dev/null
check "--stop-on-fail exits 1" test $? -eq 1
check "--stop-on-fail stops at the first failing seed" grep -qx '0 passed, 1 failed' "$tmp/s"
check "--stop-on-fail says so" grep -q 'stopped at the first failing seed' "$tmp/s"

# --shrink: shrink_me.scn fails only because of its `isolate leader` (CheckQuorum off against
# `expect stepdown within 1 elections`); the shrunk file must keep that step, drop the others,
# parse, and fail again with the same check under the printed replay command.
"$sim" --seed 1 --shrink --shrink-out "$tmp/small.scn" "$tscn/shrink_me.scn" >"$tmp/k" 2>/dev/null
check "--shrink exits 1 (the seed failed)" test $? -eq 1
check "--shrink writes the scenario" test -s "$tmp/small.scn"
check "--shrink prints the replay command" grep -q "replay: build/bin/sim --seed [0-9]* $tmp/small.scn" "$tmp/k"
check "the shrunk scenario has fewer steps (13 -> 1)" test "$(grep -c '^at ' "$tmp/small.scn")" -eq 1
check "the shrunk scenario keeps the step that matters" grep -q '^at .* isolate leader' "$tmp/small.scn"
check "the shrunk scenario has fewer clients" grep -qx 'clients 1' "$tmp/small.scn"
seed=$(sed -n 's/.*replay: build\/bin\/sim --seed \([0-9]*\) .*/\1/p' "$tmp/k" | head -1)
"$sim" --seed "$seed" "$tmp/small.scn" >"$tmp/k2" 2>/dev/null
check "the shrunk scenario fails again when replayed" test $? -eq 1
check "... with the same check" grep -q 'failed check: stepdown:' "$tmp/k2"
"$sim" --seed 1 --shrink --shrink-out "$tmp/none.scn" "$scn/leader_crash.scn" >/dev/null 2>&1
check "--shrink of a passing seed writes nothing" test ! -e "$tmp/none.scn"

# --timeline: a self-contained SVG of the run, the same bytes for the same seed, the failure
# and the op its check names marked, and the report pointing at it.
"$sim" --seed 3 --timeline "$tmp/t1.svg" "$tscn/impatient.scn" >"$tmp/t" 2>/dev/null
check "--timeline on a failing run exits 1" test $? -eq 1
"$sim" --seed 3 --timeline "$tmp/t2.svg" "$tscn/impatient.scn" >/dev/null 2>&1
check "--timeline: same seed, same SVG bytes" cmp -s "$tmp/t1.svg" "$tmp/t2.svg"
check "--timeline writes an SVG document" grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' "$tmp/t1.svg"
check "the SVG ends" test "$(tail -1 "$tmp/t1.svg")" = "</svg>"
check "the SVG states the failure" grep -q 'FAIL: availability: client' "$tmp/t1.svg"
check "the SVG highlights the op the check names" grep -q 'named by the failed check' "$tmp/t1.svg"
check "the SVG draws every node's lane" test "$(grep -c '>n[1-5]</text>' "$tmp/t1.svg")" -eq 5
check "the failure report links the timeline" grep -q "timeline: $tmp/t1.svg" "$tmp/t"
if command -v xmllint >/dev/null; then
    check "the SVG is well-formed XML" xmllint --noout "$tmp/t1.svg"
fi
"$sim" --seeds 1..3 --stop-on-fail --timeline "$tmp/t3.svg" "$tscn/impatient.scn" >"$tmp/t3" 2>/dev/null
check "--seeds --timeline draws the first failing seed" grep -q "^timeline of seed 1: $tmp/t3.svg" "$tmp/t3"
check "... into the file" test -s "$tmp/t3.svg"

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]

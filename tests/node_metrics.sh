#!/usr/bin/env bash
#
# tests/node_metrics.sh — the /metrics endpoint and the log format (issue 18, points 3 and 4):
# three real raftkv-node processes on 127.0.0.1 with --metrics-addr (node 3 through --config
# FILE). Every node's scrape must parse as Prometheus text format 0.0.4 (HELP and TYPE before
# a family's samples, every sample `name{labels} value`, histogram buckets cumulative and ending
# with +Inf equal to _count); after a known workload the counters moved (SETs raise proposals,
# commands{command="set"} and the commit latency count) and agree with INFO; the leader says
# role leader, the followers name it; bad requests get 404, 405, 400 and 431 (the bad ones
# logged) and the node keeps serving. Every log line is `ts=... level=... node=N [event=...]
# ... msg="..."`, and the role changes are logged as events.
#
# Usage: tests/node_metrics.sh PATH/TO/raftkv-node
set -uo pipefail

node_bin=${1:?usage: node_metrics.sh PATH/TO/raftkv-node}
command -v redis-cli >/dev/null || { echo "node_metrics: redis-cli not found" >&2; exit 1; }
command -v python3 >/dev/null || { echo "node_metrics: python3 not found" >&2; exit 1; }
port_offset=17
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

mport() { echo $((base + 3 + $1)); } # base+4 .. base+6

# The helper: scrape, raw requests, the format check, and reading one sample.
cat >"$tmp/m.py" <<'EOF'
import json, math, re, socket, sys, urllib.error, urllib.request

def scrape(port, out):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10) as r:
            body = r.read().decode()
            ctype = r.headers.get("Content-Type", "")
            status = r.status
    except urllib.error.HTTPError as e:
        print(e.code); return
    except Exception as e:
        print("error %s" % e); return
    open(out, "w").write(body)
    # FILE.flat: one `name{labels}<TAB>value` a line, for get() in the shell.
    samples, _ = parse(out)
    with open(out + ".flat", "w") as f:
        for k, v in samples.items():
            f.write("%s\t%s\n" % (k, "%d" % v if v == int(v) else v))
    print(status, ctype)

def raw(port, data, half_close=False):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    try:
        s.sendall(data.encode().decode("unicode_escape").encode("latin-1"))
        if half_close:
            s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except Exception as e:
        got = got if got else ("error %s" % e).encode()
    finally:
        s.close()
    print(got.split(b"\r\n")[0].decode(errors="replace") or "<closed>")

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))

def parse(path):
    """Returns (samples {name{labels}: value}, problems)."""
    problems, samples, types, helps, order = [], {}, {}, set(), []
    hist = {}  # (family, labels without le) -> [(le, v)], and sums/counts
    counts = {}
    for no, line in enumerate(open(path).read().split("\n"), 1):
        if line == "":
            continue
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                problems.append("line %d: bad HELP" % no)
            elif parts[2] in helps:
                problems.append("line %d: second HELP for %s" % (no, parts[2]))
            helps.add(parts[2] if len(parts) > 2 else "")
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                problems.append("line %d: bad TYPE" % no); continue
            if parts[2] in types:
                problems.append("line %d: second TYPE for %s" % (no, parts[2]))
            if parts[2] not in helps:
                problems.append("line %d: TYPE before HELP for %s" % (no, parts[2]))
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append("line %d: not `name{labels} value`: %r" % (no, line)); continue
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        try:
            v = float(value)
        except ValueError:
            problems.append("line %d: bad value %r" % (no, value)); continue
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                family = name[: -len(suffix)]
        if family not in types:
            problems.append("line %d: sample of %s before its TYPE" % (no, family))
        if types.get(family) == "counter" and not name.endswith("_total"):
            problems.append("line %d: counter %s without _total" % (no, name))
        key = name + ("{%s}" % labels if labels else "")
        if key in samples:
            problems.append("line %d: duplicate sample %s" % (no, key))
        samples[key] = v
        if types.get(family) == "histogram":
            pairs = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels)
            rest = ",".join('%s="%s"' % (k, x) for k, x in pairs if k != "le")
            le = [x for k, x in pairs if k == "le"]
            if name.endswith("_bucket"):
                if len(le) != 1:
                    problems.append("line %d: bucket without le" % no); continue
                hist.setdefault((family, rest), []).append((math.inf if le[0] == "+Inf" else float(le[0]), v))
            elif name.endswith("_count"):
                counts[(family, rest)] = v
    for key, buckets in hist.items():
        les = [b[0] for b in buckets]
        vals = [b[1] for b in buckets]
        if les != sorted(les) or len(set(les)) != len(les):
            problems.append("%s: le not increasing" % (key,))
        if vals != sorted(vals):
            problems.append("%s: buckets not cumulative" % (key,))
        if not les or les[-1] != math.inf:
            problems.append("%s: no +Inf bucket" % (key,))
        elif counts.get(key) != vals[-1]:
            problems.append("%s: +Inf %s != _count %s" % (key, vals[-1], counts.get(key)))
    return samples, problems

cmd = sys.argv[1]
if cmd == "scrape":
    scrape(sys.argv[2], sys.argv[3])
elif cmd == "raw":
    raw(sys.argv[2], sys.argv[3], len(sys.argv) > 4 and sys.argv[4] == "half-close")
elif cmd == "hold":
    # N connections that say nothing, held until stdin closes (or 60 s).
    import select
    conns = [socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) for _ in range(int(sys.argv[3]))]
    print("holding %d" % len(conns), flush=True)
    select.select([sys.stdin], [], [], 60)
elif cmd == "check":
    samples, problems = parse(sys.argv[2])
    for p in problems[:10]:
        print(p)
    print("%d samples, %d problems" % (len(samples), len(problems)))
elif cmd == "dashboard":
    # Every raftkv_ metric an expression of the dashboard uses is a family of the scrape.
    dash = json.load(open(sys.argv[2]))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    text = open(sys.argv[3]).read()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    used = set(re.findall(r"raftkv_[a-z0-9_]+", " ".join(exprs)))
    missing = sorted(u for u in used if u not in families and re.sub(r"_bucket$", "", u) not in families)
    print("%d metrics used, missing: %s" % (len(used), " ".join(missing) or "none"))
elif cmd == "logcheck":
    line_re = re.compile(r'^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(debug|info|warn|error) node=\d+'
                         r'( event=[a-z_]+)?( [a-z_]+=(?:"(?:[^"\\]|\\.)*"|[^" ]*))* msg="(?:[^"\\]|\\.)*"$')
    bad = [l for l in open(sys.argv[2]).read().split("\n") if l and not line_re.match(l)]
    for l in bad[:5]:
        print("bad line: %r" % l)
    print("%d bad lines" % len(bad))
EOF

# Debian's python3 when there is one (a pyenv shim costs a second a call).
py=python3
[[ -x /usr/bin/python3 ]] && py=/usr/bin/python3
m() { timeout 30 "$py" "$tmp/m.py" "$@"; }

for i in 1 2; do
    "$node_bin" --id "$i" --peers "$peers" --client "127.0.0.1:$(cport "$i")" \
        --data-dir "$tmp/n$i" --metrics-addr "127.0.0.1:$(mport "$i")" 2>>"$tmp/log$i" &
    pid[$i]=$!
done
cat >"$tmp/n3.conf" <<EOF
id = 3
peers = $peers
client = 127.0.0.1:$(cport 3)
data-dir = $tmp/n3
metrics-addr = 127.0.0.1:$(mport 3)   # from the file
EOF
"$node_bin" --config "$tmp/n3.conf" 2>>"$tmp/log3" &
pid[3]=$!

leader=$(rk_wait_leader 150)
check "a leader is elected" yes "$([[ -n $leader ]] && echo yes || echo no)"
[[ -n $leader ]] || { cat "$tmp"/log*; echo "$passed passed, $failed failed"; exit 1; }
follower=$((leader % 3 + 1))

# ---- every node's scrape parses ----------------------------------------------------------------
for i in 1 2 3; do
    check "node $i: GET /metrics is 200 text/plain version 0.0.4" \
        "200 text/plain; version=0.0.4; charset=utf-8" "$(m scrape "$(mport "$i")" "$tmp/before$i")"
    check "node $i: the exposition parses" "0 problems" \
        "$(m check "$tmp/before$i" | tail -1 | sed 's/^[0-9]* samples, //')"
    m check "$tmp/before$i" | grep -v "problems$"
done

# ---- a known workload --------------------------------------------------------------------------
ok=0
for k in $(seq 1 20); do
    [[ $(rk_cli "$leader" SET "key$k" "value$k") == OK ]] && ok=$((ok + 1))
done
check "20 SETs on the leader" 20 "$ok"
check "a SET through a follower" OK "$(rk_cli "$follower" SET via follower)"
check "a GET through a follower (ReadIndex)" follower "$(rk_cli "$follower" GET via)"
rk_cli "$leader" NOSUCHCOMMAND >/dev/null
rk_cli "$leader" INCR key1 >/dev/null # not an integer: an ERR reply

for i in 1 2 3; do
    m scrape "$(mport "$i")" "$tmp/after$i" >/dev/null
    check "node $i: the exposition still parses after traffic" "0 problems" \
        "$(m check "$tmp/after$i" | tail -1 | sed 's/^[0-9]* samples, //')"
done
get() { awk -F'\t' -v k="$2" '$1 == k { print $2 }' "$tmp/$1.flat"; }
# The workload went to $wl (then the leader) and $wf (then a follower); the role checks use the
# leader as it is now (a loaded machine may have had an election meanwhile).
wl=$leader wf=$follower
leader=$(rk_wait_leader 100)
follower=$((leader % 3 + 1))
m scrape "$(mport "$leader")" "$tmp/role$leader" >/dev/null
m scrape "$(mport "$follower")" "$tmp/role$follower" >/dev/null
L=role$leader F=role$follower
check "the leader says role leader" 1 "$(get "$L" 'raftkv_raft_role{role="leader"}')"
check "the leader is not a follower" 0 "$(get "$L" 'raftkv_raft_role{role="follower"}')"
check "a follower says follower" 1 "$(get "$F" 'raftkv_raft_role{role="follower"}')"
check "a follower names the leader" "$leader" "$(get "$F" raftkv_raft_leader_id)"
check "node ids" "$leader $follower" "$(get "$L" raftkv_node_id) $(get "$F" raftkv_node_id)"
b=$(get "before$wl" raftkv_raft_proposals_total) a=$(get "after$wl" raftkv_raft_proposals_total)
check "the 20 SETs raised node $wl's proposals (${b} -> ${a})" yes \
    "$([[ -n $a && -n $b && $((a - b)) -ge 20 ]] && echo yes || echo no)"
b=$(get "before$wl" 'raftkv_commands_total{command="set"}')
a=$(get "after$wl" 'raftkv_commands_total{command="set"}')
check "commands{command=\"set\"} counts them (${b:-0} -> ${a})" yes \
    "$([[ -n $a && $((a - ${b:-0})) -ge 20 ]] && echo yes || echo no)"
check "... and so does its latency histogram" "$a" \
    "$(get "after$wl" 'raftkv_command_latency_seconds_count{command="set"}')"
b=$(get "before$wl" raftkv_commit_latency_seconds_count)
a=$(get "after$wl" raftkv_commit_latency_seconds_count)
check "commit latencies observed (${b} -> ${a})" yes \
    "$([[ -n $a && -n $b && $((a - b)) -ge 20 ]] && echo yes || echo no)"
check "the follower's GET went through ReadIndex" yes \
    "$([[ $(get "after$wf" raftkv_read_index_latency_seconds_count) -ge 1 ]] && echo yes || echo no)"
# (Unless an election made it the leader meanwhile: then it proposed the SET itself.)
fwd=$(get "after$wf" 'raftkv_peer_messages_sent_total{type="forward"}')
led=$(get "after$wf" raftkv_raft_became_leader_total)
check "the follower forwarded its SET (a forward frame sent)" yes \
    "$([[ ${fwd:-0} -ge 1 || ${led:-0} -ge 1 ]] && echo yes || echo no)"
check "errors by kind: ERR counted (unknown command, not an integer)" yes \
    "$([[ $(get "after$wl" 'raftkv_client_errors_total{kind="ERR"}') -ge 2 ]] && echo yes || echo no)"
check "the leader sent appends" yes \
    "$([[ $(get "$L" 'raftkv_peer_messages_sent_total{type="append"}') -ge 1 ]] && echo yes || echo no)"
check "the follower received them" yes \
    "$([[ $(get "$F" 'raftkv_peer_messages_received_total{type="append"}') -ge 1 ]] && echo yes || echo no)"
check "log syncs observed on the follower" yes \
    "$([[ $(get "$F" raftkv_log_sync_seconds_count) -ge 1 ]] && echo yes || echo no)"
check "the leader's peers are up" "1 1 2" \
    "$(get "$L" "raftkv_peer_up{peer=\"$follower\"}") $(get "$L" "raftkv_peer_up{peer=\"$((follower % 3 + 1))\"}") $(get "$L" raftkv_peers_connected)"
check "bytes sent to a peer" yes \
    "$([[ $(get "$L" "raftkv_peer_sent_bytes_total{peer=\"$follower\"}") -gt 0 ]] && echo yes || echo no)"
# Against INFO: the values that do not move while nothing is written.
info_keys=$(rk_info "$leader" keys)
check "keys agree with INFO" "$info_keys" "$(get "$L" raftkv_keys)"
m scrape "$(mport "$leader")" "$tmp/now" >/dev/null
check "commit index agrees with INFO" "$(rk_info "$leader" commit_index)" \
    "$(get now raftkv_raft_commit_index)"
check "term agrees with INFO" "$(rk_info "$leader" term)" "$(get now raftkv_raft_term)"
check "live store bytes agree with INFO" "$(rk_info "$leader" raftkv_store_live_bytes)" \
    "$(get now raftkv_store_live_bytes)"

dashboard=$(dirname "${BASH_SOURCE[0]}")/../node/grafana-raftkv.json
check "the Grafana dashboard uses only exposed metrics" "missing: none" \
    "$(m dashboard "$dashboard" "$tmp/$L" | sed 's/^.*, missing/missing/')"

# ---- bad requests ------------------------------------------------------------------------------
p=$(mport "$leader")
check "a request, then the client shuts down its side: answered" "HTTP/1.1 200 OK" \
    "$(m raw "$p" 'GET /metrics HTTP/1.0\r\n\r\n' half-close)"
check "another path: 404" "HTTP/1.1 404 Not Found" "$(m raw "$p" 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n')"
check "another method: 405" "HTTP/1.1 405 Method Not Allowed" \
    "$(m raw "$p" 'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n')"
check "garbage: 400" "HTTP/1.1 400 Bad Request" "$(m raw "$p" '*1\r\n$4\r\nPING\r\n')"
big=$(head -c 20000 /dev/zero | tr '\0' 'a')
check "a huge request head: 431" "HTTP/1.1 431 Request Header Fields Too Large" \
    "$(m raw "$p" "GET /metrics HTTP/1.1\r\nX-Big: $big\r\n\r\n")"
check "bad requests are logged" yes \
    "$(grep 'event=metrics_refused' "$tmp/log$leader" | grep -q 'msg="bad request"' && echo yes || echo no)"
# A connection that sends half a request, and 20 that stay silent (more than the 16 the
# endpoint keeps): neither keeps a scrape out nor holds the node up.
m raw "$p" 'GET /metr' >/dev/null &
half=$!
mkfifo "$tmp/hold.in"
m hold "$p" 20 <"$tmp/hold.in" >"$tmp/hold.out" &
holder=$!
exec 5>"$tmp/hold.in"
for _ in $(seq 1 100); do [[ -s $tmp/hold.out ]] && break; sleep 0.1; done
check "20 silent connections held" "holding 20" "$(cat "$tmp/hold.out")"
check "the node keeps serving /metrics" "200 text/plain; version=0.0.4; charset=utf-8" \
    "$(m scrape "$p" "$tmp/last")"
check "... and clients" PONG "$(rk_cli "$leader" PING)"
exec 5>&-
wait "$holder" "$half"
check "refused requests are counted (404, 405, 400, 431, idle ones closed)" yes \
    "$([[ $(get last raftkv_metrics_refused_total) -ge 8 ]] && echo yes || echo no)"

# ---- the log format ----------------------------------------------------------------------------
for i in 1 2 3; do
    check "node $i: every log line is ts= level= node= [event=] ... msg=\"...\"" "0 bad lines" \
        "$(m logcheck "$tmp/log$i" | tail -1)"
    m logcheck "$tmp/log$i" | grep "^bad line" | head -3
done
check "the leader's log has its role change" yes \
    "$(grep -q "level=info node=$leader event=role_change term=[0-9]* role=leader" "$tmp/log$leader" && echo yes || echo no)"
check "peer connections are events" yes \
    "$(grep -q "event=peer_connected peer=[0-9]" "$tmp/log$follower" && echo yes || echo no)"
check "the endpoint is logged" yes \
    "$(grep -q "event=metrics_listen addr=127.0.0.1:$(mport 3)" "$tmp/log3" && echo yes || echo no)"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

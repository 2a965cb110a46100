#!/usr/bin/env python3
"""
tests/node_replies.py — the client side of tests/node_replies.sh: every request gets exactly one
reply, in order, whatever the cluster does meanwhile (N3, node/server.h). A raw RESP2 socket
client that pipelines mixed commands (GET, SET, PTTL, INCR, MGET, EXISTS, DBSIZE, KEYS, DEL,
MSET, ECHO) and checks each reply against its command: the reply's type must be one the command
can answer (or an error: -TRYAGAIN, -TIMEOUT, ... while there is no leader), and every ECHO of
a marker must come back as that marker at its own position, so that a missing, extra or
reordered reply shows at the next marker at the latest. After the last reply a PING must answer
PONG (no reply left over).

  once PORT N SEED            one pipeline of N commands on one connection; prints the replies
                              counted and how many were errors
  churn STOP SEED PORT...     a connection per port, pipelines of 50..400 commands, again and
                              again until the file STOP exists; prints pipelines and replies
                              checked per port. Each pipeline must be answered whole within
                              REPLY_WAIT_S (a node stopped by the test answers when continued).

Exit status 0 when every check held, 1 otherwise (what failed is printed).
"""
import os
import random
import socket
import sys
import threading

REPLY_WAIT_S = 120  # a pipeline's replies, on a machine at load 20 with a node stopped meanwhile


class Short(Exception):
    pass


class Conn:
    def __init__(self, port):
        self.port = port
        self.s = socket.create_connection(("127.0.0.1", port), timeout=REPLY_WAIT_S)
        self.buf = b""
        self.pos = 0

    def _fill(self):
        try:
            data = self.s.recv(1 << 16)
        except socket.timeout:
            raise Short("no reply within %d s" % REPLY_WAIT_S)
        if not data:
            raise Short("connection closed")
        self.buf = self.buf[self.pos:] + data
        self.pos = 0

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        out = self.buf[self.pos:self.pos + n]
        self.pos += n + 2
        return out

    def reply(self):
        """One reply as (type, value): '+' str, '-' str, ':' int, '$' bytes or None, '*' list
        or None."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-"):
            return (t.decode(), rest.decode(errors="replace"))
        if t == b":":
            return (":", int(rest))
        if t == b"$":
            n = int(rest)
            return ("$", None if n < 0 else self._exact(n))
        if t == b"*":
            n = int(rest)
            return ("*", None if n < 0 else [self.reply() for _ in range(n)])
        raise ValueError("not a RESP reply: %r" % line[:80])

    def send(self, cmds):
        out = []
        for args in cmds:
            out.append(b"*%d\r\n" % len(args))
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))


# The reply types each command may answer besides an error.
SHAPES = {
    "GET": "$", "SET": "+", "PTTL": ":", "INCR": ":", "MGET": "*", "EXISTS": ":",
    "DBSIZE": ":", "KEYS": "*", "DEL": ":", "MSET": "+", "ECHO": "$", "PING": "+",
}


def workload(rng, n, tag):
    """n commands, an ECHO marker every few; keys are the caller's own (tag) so INCR stays an
    integer whatever other connections do."""
    cmds = []
    k = lambda: "r:%s:%d" % (tag, rng.randrange(20))
    c = lambda: "r:%s:c%d" % (tag, rng.randrange(4))
    for i in range(n):
        if i % 7 == 6:
            cmds.append(("ECHO", "m:%s:%d" % (tag, i)))
            continue
        r = rng.randrange(100)
        if r < 20:
            cmds.append(("GET", k()))
        elif r < 35:
            cmds.append(("SET", k(), "v%d" % i))
        elif r < 55:
            cmds.append(("PTTL", k()))
        elif r < 63:
            cmds.append(("INCR", c()))
        elif r < 71:
            cmds.append(("MGET", k(), k(), k()))
        elif r < 79:
            cmds.append(("EXISTS", k(), k()))
        elif r < 85:
            cmds.append(("DBSIZE",))
        elif r < 88:
            cmds.append(("KEYS", "r:%s:1*" % tag))
        elif r < 94:
            cmds.append(("DEL", k()))
        else:
            cmds.append(("MSET", k(), "a", k(), "b"))
    return cmds


def run_pipeline(conn, cmds):
    """Sends cmds, reads and checks their replies, then a PING. Returns (replies, errors);
    raises AssertionError (or Short) with what went wrong."""
    conn.send(list(cmds) + [("PING",)])
    errors = 0
    for i, args in enumerate(cmds):
        try:
            t, v = conn.reply()
        except Short as e:
            raise Short("port %d: reply %d of %d (%s): %s" % (conn.port, i, len(cmds), args[0], e))
        name = args[0]
        if t == "-":
            errors += 1
            if name in ("ECHO", "PING"):
                raise AssertionError("port %d: reply %d (%s) is an error: %s" %
                                     (conn.port, i, name, v))
            if not (v.startswith("TRYAGAIN") or v.startswith("TIMEOUT")):
                raise AssertionError("port %d: reply %d (%s): unexpected error %r" %
                                     (conn.port, i, name, v))
            continue
        if t != SHAPES[name]:
            raise AssertionError("port %d: reply %d of %d is %s %r, not a reply to %s (a reply "
                                 "lost or out of order)" % (conn.port, i, len(cmds), t,
                                                            str(v)[:60], args))
        if name == "ECHO" and v != args[1].encode():
            raise AssertionError("port %d: reply %d is %r, want the marker %r (a reply lost or "
                                 "out of order)" % (conn.port, i, v, args[1]))
    t, v = conn.reply()
    if (t, v) != ("+", "PONG"):
        raise AssertionError("port %d: after %d replies, %s %r instead of PONG (a reply too "
                             "many)" % (conn.port, len(cmds), t, str(v)[:60]))
    return len(cmds), errors


def once(port, n, seed):
    rng = random.Random(seed)
    conn = Conn(port)
    replies, errors = run_pipeline(conn, workload(rng, n, "o%d" % seed))
    print("%d %d" % (replies, errors))


def churn(stop, seed, ports):
    bad = []
    counts = {}

    def one(port, idx):
        rng = random.Random(seed * 100 + idx)
        conn = Conn(port)
        pipes = replies = 0
        try:
            while not os.path.exists(stop):
                n = rng.randrange(50, 400)
                got, _ = run_pipeline(conn, workload(rng, n, "c%d_%d" % (seed, idx)))
                pipes += 1
                replies += got
        except (AssertionError, Short, ValueError, OSError) as e:
            bad.append(str(e))
        counts[port] = (pipes, replies)

    threads = [threading.Thread(target=one, args=(p, i)) for i, p in enumerate(ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in ports:
        print("port %d: %d pipelines, %d replies checked" % (p, *counts.get(p, (0, 0))))
    for b in bad:
        print("FAIL %s" % b)
    return 1 if bad else 0


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "once":
        try:
            once(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        except (AssertionError, Short, ValueError, OSError) as e:
            print("FAIL %s" % e)
            return 1
        return 0
    if len(sys.argv) >= 5 and sys.argv[1] == "churn":
        return churn(sys.argv[2], int(sys.argv[3]), [int(p) for p in sys.argv[4:]])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""
tests/node_backup.py — the client side of tests/node_backup.sh, over a plain socket (RESP2):

  dump PORT OUT              every key of every database (SCAN, GET, PTTL) as sorted lines
                             "db key value ttl" (ttl: none, or "set"), skipping the writer's
                             keys (w: d: o:)
  ttl PORT DB KEY            prints the key's PTTL
  seed PORT D O              creates d:1..d:D and o:0..o:O-1 (value 0) for the writer
  writer PORT STOP OUT D O   until the file STOP exists (or D steps): step i is SET w:i i,
                             DEL d:i, SET o:(i mod O) i, each acknowledged before the next;
                             writes the number of steps done to OUT
  cut PORT D O               checks that the keys of the writer on PORT are the state after a
                             prefix of its command sequence (a consistent cut); prints the
                             number of whole steps in it
"""
import socket
import sys
import time


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.s.recv(1 << 16)
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            data = self.s.recv(1 << 16)
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("bad reply %r" % line)

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))

    def cmd(self, *args):
        """One command; retried while -TRYAGAIN (it certainly did not execute)."""
        for _ in range(600):
            self.send(*args)
            r = self.reply()
            if isinstance(r, RuntimeError) and str(r).startswith("TRYAGAIN"):
                time.sleep(0.05)
                continue
            if isinstance(r, RuntimeError):
                raise r
            return r
        raise RuntimeError("TRYAGAIN for 30 s: %r" % (args,))


WRITER = (b"w:", b"d:", b"o:")


def dump(port, out):
    c = Conn(port)
    lines = []
    for db in range(16):
        c.cmd("SELECT", db)
        cursor = b"0"
        keys = []
        while True:
            cursor, batch = c.cmd("SCAN", cursor, "COUNT", 1000)
            keys.extend(batch)
            if cursor == b"0":
                break
        keys = sorted(set(k for k in keys if not k.startswith(WRITER)))
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            vals = c.cmd("MGET", *part)
            for k in part:
                c.send("PTTL", k)
            ttls = [c.reply() for _ in part]
            for k, v, t in zip(part, vals, ttls):
                ttl = "none" if t == -1 else "set" if isinstance(t, int) and t > 0 else "?"
                lines.append("%d %s %s %s" % (db, k.hex(), (v or b"").hex(), ttl))
    with open(out, "w") as f:
        f.write("\n".join(sorted(lines)) + "\n")
    print(len(lines))


def seed(port, d, o):
    c = Conn(port)
    for i in range(1, d + 1, 500):
        args = []
        for j in range(i, min(i + 500, d + 1)):
            args += ["d:%d" % j, "x"]
        c.cmd("MSET", *args)
    c.cmd("MSET", *sum((["o:%d" % j, "0"] for j in range(o)), []))


def writer(port, stop, out, d, o):
    import os
    c = Conn(port)
    i = 0
    while i < d and not os.path.exists(stop):
        i += 1
        c.cmd("SET", "w:%d" % i, i)
        c.cmd("DEL", "d:%d" % i)
        c.cmd("SET", "o:%d" % (i % o), i)
    with open(out, "w") as f:
        f.write("%d\n" % i)


def cut(port, d, o):
    """The writer's commands in order: a(i) SET w:i, b(i) DEL d:i, c(i) SET o:(i%o) i. The
    state must be the one after some prefix: m = the last a() in it, then b(m), c(m) maybe."""
    c = Conn(port)
    w = c.cmd("MGET", *["w:%d" % i for i in range(1, d + 1)])
    m = 0
    while m < d and w[m] is not None:
        m += 1
    bad = [i + 1 for i in range(m, d) if w[i] is not None]
    if bad:
        sys.exit("FAIL w: keys after the first missing one (w:%d): %s" % (m + 1, bad[:5]))
    dv = c.cmd("MGET", *["d:%d" % i for i in range(1, d + 1)])
    ov = c.cmd("MGET", *["o:%d" % j for j in range(o)])
    b_m = m > 0 and dv[m - 1] is None
    for i in range(1, d + 1):
        want_absent = i < m or (i == m and b_m)
        if (dv[i - 1] is None) != want_absent:
            sys.exit("FAIL d:%d is %s with %d steps cut" % (i, dv[i - 1], m))
    c_m = m > 0 and ov[m % o] == str(m).encode()
    if c_m and not b_m:
        sys.exit("FAIL o:%d holds step %d's value but d:%d is still there" % (m % o, m, m))
    last = m if c_m else m - 1
    for j in range(o):
        want = 0
        for i in range(last, 0, -1):
            if i % o == j:
                want = i
                break
        if ov[j] != str(want).encode():
            sys.exit("FAIL o:%d is %r, want %d (cut after step %d)" % (j, ov[j], want, m))
    print(m)


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "dump":
        dump(port, sys.argv[3])
    elif cmd == "ttl":
        c = Conn(port)
        c.cmd("SELECT", sys.argv[3])
        print(c.cmd("PTTL", sys.argv[4]))
    elif cmd == "seed":
        seed(port, int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "writer":
        writer(port, sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif cmd == "cut":
        cut(port, int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("unknown command %s" % cmd)


if __name__ == "__main__":
    main()

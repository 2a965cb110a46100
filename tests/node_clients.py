#!/usr/bin/env python3
"""
tests/node_clients.py — a real client library against a raftkv cluster: redis-py (Debian's
python3-redis) used as an application would, through every node (leader and followers), with a
password, a client name and database 1 given at connect (AUTH, CLIENT SETNAME, SELECT 1):
transactions (pipeline(): MULTI ... EXEC; WATCH with a concurrent writer: WatchError, then a
retry that succeeds), Lock(timeout=...) (SET NX PX and the EVALSHA scripts: release, extend,
reacquire; a lock that times out is taken by another client), expiry (SET EX, TTL, PERSIST),
scan_iter over thousands of keys, databases kept apart, a wrong password refused.

Usage: node_clients.py PASSWORD PORT [PORT ...]     exit 0 when every check passed
"""
import sys
import time

import redis


failed = 0


def check(what, ok, detail=""):
    global failed
    if ok:
        print("ok   %s" % what)
    else:
        failed += 1
        print("FAIL %s %s" % (what, detail))


def until(cond, seconds=20.0):
    """Polls cond until it holds (True) or seconds pass (False): no fixed sleeps."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


class RetryingRedis(redis.Redis):
    """A command refused with TRYAGAIN (no leader known, or leadership changed before the write
    was proposed: certainly not applied, node/DEVIATIONS.md D13) is sent again, as an
    application does; redis-py raises it as a ResponseError. Elections happen on a loaded
    machine, so every command of this test, Lock's scripts included, goes through this."""

    def execute_command(self, *args, **options):
        for _ in range(200):
            try:
                return super().execute_command(*args, **options)
            except redis.ResponseError as e:
                if not str(e).startswith("TRYAGAIN"):
                    raise
                time.sleep(0.05)
        return super().execute_command(*args, **options)


def client(port, pw, **kw):
    return RetryingRedis(host="127.0.0.1", port=port, password=pw, socket_timeout=30, **kw)


def retry(fn):
    for _ in range(200):
        try:
            return fn()
        except redis.ResponseError as e:
            if not str(e).startswith("TRYAGAIN"):
                raise
            time.sleep(0.05)
    return fn()


def main():
    pw = sys.argv[1]
    ports = [int(p) for p in sys.argv[2:]]
    for i, port in enumerate(ports):
        tag = "node %d" % (i + 1)
        name = "smoke-%d" % i
        r = client(port, pw, db=1, client_name=name)
        other = client(port, pw, db=1)
        check("%s: client_name at connect" % tag, r.client_getname() == name)
        check("%s: CLIENT LIST shows the name and db=1" % tag,
              any(c.get("name") == name and c.get("db") == "1" for c in r.client_list()))

        # Transactions: pipeline() is MULTI ... EXEC, applied at once.
        k = "cl:%d:counter" % i
        with r.pipeline() as p:
            p.set(k, 10).incr(k).incrby(k, 5).get(k)
            res = retry(p.execute)
        check("%s: pipeline transaction" % tag, res == [True, 11, 16, b"16"], res)

        # WATCH: a write by another connection between WATCH and EXEC aborts the EXEC.
        with r.pipeline() as p:
            p.watch(k)
            v = int(p.get(k))
            retry(lambda: other.set(k, 100))
            p.multi()
            p.set(k, v + 1)
            try:
                p.execute()
                check("%s: WATCH aborts after a concurrent write" % tag, False, "EXEC ran")
            except redis.WatchError:
                check("%s: WATCH aborts after a concurrent write" % tag, True)
        # ... and the usual retry loop then succeeds.
        with r.pipeline() as p:
            while True:
                try:
                    p.watch(k)
                    v = int(p.get(k))
                    p.multi()
                    p.set(k, v + 1)
                    p.execute()
                    break
                except redis.WatchError:
                    continue
                except redis.ResponseError as e:  # EXEC refused by an election: not applied
                    if not str(e).startswith("TRYAGAIN"):
                        raise
                    p.reset()
        check("%s: WATCH retry loop" % tag, r.get(k) == b"101", r.get(k))

        # Lock(timeout=...): SET NX PX, then the Lua scripts (EVALSHA) for extend/release.
        lk = "cl:%d:lock" % i
        a = r.lock(lk, timeout=30)
        b = other.lock(lk, timeout=30)
        check("%s: Lock acquire" % tag, retry(lambda: a.acquire(blocking=False)))
        check("%s: a second Lock waits" % tag, not b.acquire(blocking=False))
        ttl = r.pttl(lk)
        check("%s: the lock has its timeout" % tag, 0 < ttl <= 30000, ttl)
        check("%s: Lock.extend adds time" % tag, a.extend(60) and r.pttl(lk) > 60000, r.pttl(lk))
        check("%s: Lock.extend(replace_ttl)" % tag,
              a.extend(20, replace_ttl=True) and r.pttl(lk) <= 20000, r.pttl(lk))
        check("%s: Lock.reacquire" % tag, a.reacquire() and r.pttl(lk) > 20000, r.pttl(lk))
        try:
            b.release()
            check("%s: another client cannot release it" % tag, False, "released")
        except redis.exceptions.LockError:
            check("%s: another client cannot release it" % tag, r.exists(lk) == 1)
        a.release()
        check("%s: Lock.release" % tag, r.exists(lk) == 0)
        # A lock whose holder never releases it times out, and another client takes it.
        short = r.lock(lk, timeout=0.3)
        check("%s: short Lock acquired" % tag, short.acquire(blocking=False))
        check("%s: it expires (through the log) and another takes it" % tag,
              until(lambda: b.acquire(blocking=False)))
        b.release()

        # Expiry.
        ek = "cl:%d:exp" % i
        retry(lambda: r.set(ek, "v", ex=100))
        ttl = r.ttl(ek)
        check("%s: SET EX then TTL" % tag, 0 < ttl <= 100, ttl)
        check("%s: PERSIST" % tag, r.persist(ek) and r.ttl(ek) == -1)
        retry(lambda: r.set(ek, "v", px=200))
        check("%s: a key with PX 200 goes" % tag, until(lambda: r.get(ek) is None))

        # scan_iter over db 1; db 0 does not see those keys.
        prefix = "cl:%d:s:" % i
        keys = {("%s%d" % (prefix, j)).encode() for j in range(3000)}
        retry(lambda: r.mset({key: b"x" for key in keys}))
        seen = set(r.scan_iter(match=prefix + "*", count=100))
        check("%s: scan_iter returns every key once" % tag, seen == keys, len(seen))
        d0 = client(port, pw, db=0)
        check("%s: db 0 does not see db 1's keys" % tag,
              not list(d0.scan_iter(match=prefix + "*")) and d0.get(k) is None)
        check("%s: INFO keyspace has db1" % tag, r.info("keyspace").get("db1", {}).get("keys", 0)
              >= 3000)
        # A cursor continues on any node, and a key present for the whole iteration is
        # returned whatever is written meanwhile (Redis's guarantee).
        nodes = [client(p_, pw, db=1) for p_ in ports]
        cursor, seen, page = 0, set(), 0
        while True:
            cursor, got = nodes[page % len(nodes)].scan(cursor, match=prefix + "*", count=1000)
            seen.update(got)
            retry(lambda: r.set("%sextra%d" % (prefix, page), "x"))  # new keys meanwhile
            retry(lambda: r.delete("%s%d" % (prefix, 2999 - page)))  # and some go
            page += 1
            if cursor == 0:
                break
        stable = {("%s%d" % (prefix, j)).encode() for j in range(3000 - page)}
        check("%s: a SCAN cursor continues on every node, under writes" % tag,
              stable <= seen and page > 1, (len(stable - seen), page))
        for c_ in nodes:
            c_.close()
        retry(lambda: r.delete(*keys))
        retry(lambda: r.delete(*["%sextra%d" % (prefix, j) for j in range(page)]))

        # A wrong password is refused.
        try:
            client(port, pw + "x").ping()
            check("%s: a wrong password is refused" % tag, False, "accepted")
        except (redis.AuthenticationError, redis.ResponseError) as e:
            # redis-py 4.3 raises WRONGPASS (Redis 6+'s word) as a ResponseError.
            check("%s: a wrong password is refused" % tag, "WRONGPASS" in str(e) or
                  isinstance(e, redis.AuthenticationError), e)
        for c in (r, other, d0):
            c.close()
    print("node_clients: %d failed" % failed)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

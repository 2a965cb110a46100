#!/usr/bin/env node
/*
 * tests/node_clients.js — node-redis (Debian's node-redis, the npm package `redis` 4.x) against a
 * raftkv cluster as an application uses it, through every node: connect with a password, a
 * client name and database 1 (AUTH, SELECT 1, CLIENT SETNAME at connect), commands auto-
 * pipelined by the library (it writes every command of a tick in one batch), multi().exec()
 * (MULTI ... EXEC), WATCH with a concurrent writer (WatchError, then a retry that succeeds),
 * expiry (SET EX, TTL, PERSIST), scanIterator over thousands of keys, databases kept apart, a
 * wrong password refused.
 *
 * Usage: node node_clients.js PASSWORD PORT [PORT ...]     exit 0 when every check passed
 */
'use strict';
const { createClient } = require('redis');

let failed = 0;
function check(what, ok, detail) {
    if (ok) {
        console.log('ok   ' + what);
    } else {
        failed++;
        console.log('FAIL ' + what + ' ' + (detail === undefined ? '' : JSON.stringify(detail)));
    }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* A write refused with TRYAGAIN (no leader known, an election) certainly did not execute:
 * an application retries it, and so does this test. */
async function retry(fn) {
    for (let i = 0; i < 200; i++) {
        try {
            return await fn();
        } catch (e) {
            if (!String(e.message).startsWith('TRYAGAIN')) throw e;
            await sleep(50);
        }
    }
    return fn();
}

async function client(port, pw, extra) {
    const c = createClient(Object.assign({
        socket: { host: '127.0.0.1', port, connectTimeout: 30000, reconnectStrategy: false },
        password: pw,
    }, extra || {}));
    c.on('error', () => {}); /* errors reach the awaiting call */
    await c.connect();
    return c;
}

async function main() {
    const pw = process.argv[2];
    const ports = process.argv.slice(3).map(Number);
    const prefix = 'njs:' + process.pid + ':';
    const all = [];
    for (const port of ports) {
        const tag = 'node ' + port;
        const c = await client(port, pw, { database: 1, name: 'njs-' + port });
        all.push(c);
        check(tag + ': CLIENT GETNAME is the name given at connect',
            (await c.sendCommand(['CLIENT', 'GETNAME'])) === 'njs-' + port);

        /* Auto-pipelining: 200 commands issued at once go out in one batch; each sees the
         * ones before it on this connection. */
        const k = prefix + port + ':counter';
        const replies = await retry(() => Promise.all(
            [c.set(k, '0')].concat(Array.from({ length: 199 }, () => c.incr(k)))));
        check(tag + ': 200 pipelined commands answer in order', replies[0] === 'OK' &&
            replies.slice(1).every((v, i) => v === i + 1), replies.slice(0, 5));
        check(tag + ': GET after them sees the last', (await c.get(k)) === '199');

        /* MULTI ... EXEC */
        const t = prefix + port + ':txn';
        const res = await retry(() => c.multi().set(t, '10').incrBy(t, 5).get(t).exec());
        check(tag + ': multi().exec() applies every command', JSON.stringify(res) ===
            JSON.stringify(['OK', 15, '15']), res);

        /* WATCH with a concurrent writer: the transaction is aborted (WatchError), a retry
         * after a fresh WATCH succeeds. */
        const w = prefix + port + ':watched';
        await retry(() => c.set(w, 'a'));
        const other = await client(ports[(ports.indexOf(port) + 1) % ports.length], pw,
            { database: 1 });
        await c.watch(w);
        await retry(() => other.set(w, 'b'));
        let aborted = false;
        try {
            await c.multi().set(w, 'c').exec();
        } catch (e) {
            aborted = e.constructor.name === 'WatchError';
        }
        check(tag + ': WATCH: a concurrent write aborts the transaction', aborted);
        await c.watch(w);
        const again = await retry(() => c.multi().set(w, 'd').exec());
        check(tag + ': WATCH: the retry commits', JSON.stringify(again) === '["OK"]' &&
            (await other.get(w)) === 'd', again);
        await other.quit();

        /* Expiry */
        const e = prefix + port + ':exp';
        await retry(() => c.set(e, 'v', { EX: 100 }));
        const ttl = await c.ttl(e);
        check(tag + ': SET EX then TTL', ttl > 90 && ttl <= 100, ttl);
        await retry(() => c.persist(e));
        check(tag + ': PERSIST clears the deadline', (await c.ttl(e)) === -1);
    }

    /* scanIterator over 3000 keys of db 1, written through one node, listed through another;
     * db 0 does not see them. */
    const c0 = all[0];
    const sp = prefix + 'scan:';
    const keys = new Set();
    for (let i = 0; i < 3000; i += 500) {
        const batch = [];
        for (let j = i; j < i + 500; j++) {
            keys.add(sp + j);
            batch.push(sp + j, String(j));
        }
        await retry(() => c0.mSet(batch));
    }
    const seen = new Set();
    let dup = 0;
    for await (const key of all[all.length - 1].scanIterator({ MATCH: sp + '*', COUNT: 100 })) {
        if (seen.has(key)) dup++;
        seen.add(key);
    }
    check('scanIterator returns every key once', seen.size === keys.size && dup === 0 &&
        [...keys].every((x) => seen.has(x)), { seen: seen.size, dup });
    const d0 = await client(ports[0], pw);
    check('database 0 does not see database 1', (await d0.get(sp + '1')) === null);
    await d0.quit();

    /* A wrong password is refused at connect: node-redis 4 reports the AUTH error as an
     * 'error' event (its connect() may not settle), so the test waits for either. */
    let refused = '';
    const bad = createClient({
        socket: { host: '127.0.0.1', port: ports[0], connectTimeout: 30000,
            reconnectStrategy: false },
        password: 'not-' + pw,
    });
    bad.on('error', (err) => { refused = refused || String(err.message); });
    bad.connect().catch((err) => { refused = refused || String(err.message); });
    for (let i = 0; i < 600 && refused === ''; i++) await sleep(50);
    check('a wrong password is refused', refused.startsWith('WRONGPASS'), refused);
    try {
        await bad.disconnect();
    } catch (err) {
        /* already closed */
    }

    for (const c of all) await c.quit();
}

main().then(() => {
    console.log(failed === 0 ? 'node_clients.js: all passed' : 'node_clients.js: ' + failed + ' failed');
    process.exit(failed === 0 ? 0 : 1);
}, (err) => {
    console.log('FAIL node_clients.js: ' + (err && err.stack || err));
    process.exit(1);
});

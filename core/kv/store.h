/*
 * store.h — the storage interface the kv state machine sits on.
 *
 * An implementation embeds struct kv_store as its FIRST member and points ops at a static table
 * (SQLite's VFS style): every op receives the struct kv_store it was called on and converts it
 * back. Implementations: the in-memory hash table (memstore.h) and, later, Bitcask.
 *
 * Contract for every implementation:
 *   S1  A failed put or del changes nothing: not the data, not applied_index. The caller may
 *       retry the same call.
 *   S2  applied_index is the highest index given to a put or del that succeeded, 0 if none.
 *       It never decreases.
 *   S3  scan's order is unspecified, but a deterministic function of the history of puts and
 *       dels, so that two replicas that applied the same log visit keys in the same order.
 *   S4  Keys and values are copied on put; nothing the caller passes is retained.
 *   S5  The puts and dels of one index form a batch, closed by end_batch(index); a durable
 *       store makes a batch durable all or nothing (a crash keeps whole batches only), and
 *       after a restart applied_index is the index of the last whole batch it kept. A failed
 *       end_batch or sync is fatal for a durable store: every later op fails until it is
 *       reopened (the replica stops, as after a crash).
 */
#ifndef RK_KV_STORE_H
#define RK_KV_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct kv_store;

struct kv_store_ops {
    /* RK_OK and *val, *val_len borrowed until the next mutating call; RK_ENOENT if absent. */
    int (*get)(struct kv_store *s, const uint8_t *key, uint32_t key_len, const uint8_t **val,
               uint32_t *val_len);
    /* index: the Raft log index that writes it (the store remembers the highest). Copies key
     * and value. RK_ENOMEM (or an I/O error) leaves the store unchanged (S1). */
    int (*put)(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
               const uint8_t *val, uint32_t val_len);
    /* Removes key if present; *existed says whether it was. Advances applied_index either way. */
    int (*del)(struct kv_store *s, uint64_t index, const uint8_t *key, uint32_t key_len,
               bool *existed);
    /* Number of live keys. */
    uint64_t (*count)(struct kv_store *s);
    /* Highest index given to put/del, 0 if none (S2). */
    uint64_t (*applied_index)(struct kv_store *s);
    /* Closes the batch of index (S5). */
    int (*end_batch)(struct kv_store *s, uint64_t index);
    /* Makes every closed batch durable (a no-op for a store in memory). A store with deferred
     * writes (bitcask.h, DEFERRED WRITES) only queues the sync: see durable_index. */
    int (*sync)(struct kv_store *s);
    /* Optional (NULL: applied_index once sync returned). The highest index whose batch is on
     * disk for sure (what log compaction may rely on); with deferred writes it lags the applied
     * index until the queued writes and sync are done. */
    uint64_t (*durable_index)(struct kv_store *s);
    /* Calls fn for each live key once; order unspecified but deterministic for a given history
     * (S3). Stops when fn returns false. key and val are borrowed for the duration of one call
     * of fn, which must not call a mutating op of the store being scanned. */
    int (*scan)(struct kv_store *s,
                bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                           uint32_t val_len),
                void *ctx);
    /* Optional (NULL: callers use scan). As scan, same keys in the same order, but val may be
     * NULL where reading the value would cost I/O (val_len is still its size); fn may call get
     * for the few values it needs. What a restart (kv_create) and a snapshot install use, so
     * that they do not read every value of a large store. */
    int (*scan_keys)(struct kv_store *s,
                     bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                const uint8_t *val, uint32_t val_len),
                     void *ctx);
    /* Optional (NULL: kv_scan_db_range passes over the whole store). As scan_keys, for the keys
     * whose kv_scan_hash is >= lo, in ascending (hash, key) order, stopping after `budget` keys
     * at the end of a hash or when fn returns false; *next: the hash to continue from, 0 after
     * the last key. */
    int (*scan_range)(struct kv_store *s, uint32_t lo, uint64_t budget,
                      bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                 const uint8_t *val, uint32_t val_len),
                      void *ctx, uint64_t *next);
    /* Optional (NULL: the store cannot back a view, kv/view.h). Resumable scan in the store's
     * canonical order, a function of the set of live keys alone (not of the history): calls fn
     * for every live key that sorts after (after, after_len) by key_order, or for every key
     * when after is NULL, in ascending order, with its value read; stops when fn returns
     * false. fn must not call a mutating op of the store. */
    int (*scan_after)(struct kv_store *s, const uint8_t *after, uint32_t after_len,
                      bool (*fn)(void *ctx, const uint8_t *key, uint32_t key_len,
                                 const uint8_t *val, uint32_t val_len),
                      void *ctx);
    /* Optional, with scan_after: the canonical order on two keys (<0, 0, >0). */
    int (*key_order)(const uint8_t *a, uint32_t a_len, const uint8_t *b, uint32_t b_len);
    /* Optional (NULL: nothing). A hint before a bulk load into a store that holds no key (a
     * snapshot install, after its deletes): room for n keys at once. The keys of a snapshot
     * come in scan's order, which for Bitcask is its keydir's (ascending hash): loaded into a
     * table sized for the keys so far they all crowd its first slots (quadratic). RK_OK (also
     * when the store holds keys: then nothing), or RK_ENOMEM (nothing changed). */
    int (*reserve)(struct kv_store *s, uint64_t n);
    /* Optional, all seven or none (NULL: a snapshot is installed as one batch of puts). A STAGED
     * REPLACEMENT of the whole store (bitcask.h): begin at index; put the new store's records
     * (unique keys), flush after each piece (queued to the disk: nothing of it is kept in memory);
     * commit queues the switch (RK_EBUSY: not now, nothing changed, call again later). From the
     * commit until stage_state is KV_STAGE_NONE again, puts and dels fail (RK_EBUSY) and the
     * store is the old one; then it is the new one, applied_index the stage's and durable.
     * abort (before the commit) drops the stage. A crash leaves the old store or the new one. */
    int (*stage_begin)(struct kv_store *s, uint64_t index);
    int (*stage_put)(struct kv_store *s, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                     uint32_t val_len);
    int (*stage_flush)(struct kv_store *s);
    int (*stage_commit)(struct kv_store *s);
    void (*stage_abort)(struct kv_store *s);
    int (*stage_state)(struct kv_store *s);
    /* Bytes staged and not yet on disk: a caller stages more only once they fall (flow
     * control: what is queued in memory stays bounded). */
    uint64_t (*stage_queued)(struct kv_store *s);
    /* Frees the store and everything it owns. */
    void (*destroy)(struct kv_store *s);
};

enum kv_stage_state { KV_STAGE_NONE = 0, KV_STAGE_FILLING, KV_STAGE_COMMITTING };

struct kv_store {
    const struct kv_store_ops *ops;
};

#endif

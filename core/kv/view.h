/*
 * view.h — pinned, copy-on-write views of a store: "the state machine at applied index I",
 * walked a bounded piece at a time while the store moves on. What a backup session
 * (RAFTKV.BACKUP), a snapshot streamed to a follower (core/replica) and a KEYS walk read.
 *
 * Plumbing: kv_views_wrap puts one wrapper store in front of the real one; everything that
 * writes the state machine (the replica) writes through the wrapper, which feeds every view
 * open on it. Any number of views may be open at once, each at its own index.
 *
 * How a view stays at I (as a fork-based snapshot does, without the fork): the walk visits the
 * keys in the store's canonical order (store op scan_after, a function of the set of keys
 * alone), remembering the last key it gave out (the cursor). The first write through the
 * wrapper at an index above I to a key the walk has not passed saves the key's value at I (or
 * "absent") in that view's overlay before the write goes through. The walk skips keys of the
 * overlay and gives out the overlay's present values merged into its order (a heap). So:
 *   V1  a key given out from the store was not written above I before the walk reached it
 *       (else it would be in the overlay), so its value is the one at I;
 *   V2  a key first written above I before the walk reached it is given out from the overlay
 *       with its value at I (absent: not at all);
 *   V3  every key live at I is given out exactly once, all of them in ascending canonical
 *       order (store op key_order), whatever is written meanwhile;
 *   V4  the overlay holds only keys written during the view's life and not yet passed; its
 *       bytes are bounded by the caller's overlay_max_bytes: past it the view fails
 *       (RK_ETOOBIG, with a message that says so) and stays failed. It never blocks a write.
 * Reads: kv_view_next reads the values it gives out (store I/O on the caller's thread),
 * bounded by its budget; a write that saves a value reads it once, whatever the number of views.
 *
 * Ownership: the wrapper owns nothing of the inner store but destroys it in its own destroy.
 * Views are owned by their opener and closed by kv_view_close (also after the wrapper is
 * destroyed: a view then fails, it does not dangle). No OS calls: pure core.
 */
#ifndef RK_KV_VIEW_H
#define RK_KV_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/err.h"
#include "kv/store.h"

struct kv_view;

/* The wrapper in front of inner (which must have the ops scan_after and key_order): NULL when
 * it lacks them or on allocation failure. Destroying the wrapper destroys inner. */
struct kv_store *kv_views_wrap(const struct rk_alloc *a, struct kv_store *inner);
/* Frees the wrapper but not its inner store (returned): for an owner that wrapped a store it
 * was lent. Views still open fail with RK_ESTALE; close them. */
struct kv_store *kv_views_unwrap(struct kv_store *wrapper);
/* Whether s is a wrapper made by kv_views_wrap. */
bool kv_views_is_wrapper(const struct kv_store *s);
/* Number of views open on the wrapper (for metrics and tests). */
uint32_t kv_views_open_count(const struct kv_store *wrapper);

/* Opens a view of the wrapper's store at its applied index now (store.h S2: its last write; a
 * state machine that applied later entries writing nothing has the same content at its own
 * applied index, which is the one to report). overlay_max_bytes bounds the
 * view's overlay (V4). RK_OK and *out; RK_EINVAL if wrapper is not one; RK_ENOMEM. */
int kv_view_open(struct kv_store *wrapper, uint64_t overlay_max_bytes, struct kv_view **out,
                 struct rk_errmsg *err);
/* The applied index the view is pinned at. */
uint64_t kv_view_index(const struct kv_view *v);
/* Bytes its overlay holds now. */
uint64_t kv_view_overlay_bytes(const struct kv_view *v);

/* Consumer of one record: key and val are borrowed for the call. false: the consumer failed
 * (out of memory): the view fails. */
typedef bool kv_view_fn(void *ctx, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                        uint32_t val_len);

/* Gives the next records, in ascending canonical order (V3), to fn, until their cost (key and
 * value bytes plus record_head_bytes each: the consumer's framing) reaches budget_bytes (at
 * least one record when any remains; the last may pass it) or none remains: then *done.
 * RK_OK; or the view's failure (RK_ETOOBIG: the overlay went over its bound; RK_ENOMEM; a
 * store read error; RK_ESTALE: the wrapper was destroyed) with err set. A failed view stays
 * failed; close it. */
int kv_view_next(struct kv_view *v, uint64_t budget_bytes, uint32_t record_head_bytes,
                 kv_view_fn *fn, void *ctx, bool *done, struct rk_errmsg *err);
/* Closes v (NULL: nothing) and frees its overlay. */
void kv_view_close(struct kv_view *v);

#endif

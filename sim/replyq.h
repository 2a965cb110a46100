/* replyq — a node's per-connection reply FIFOs as raftkv-node keeps them (node/conn.c, N3 of
 * node/server.h), for the simulator's connection clients (`pipeline`), and their checks.
 *
 * The node answers a connection's requests in the order it read them: each request gets one
 * entry at the tail of its connection's FIFO when it arrives; the replica's reply fills the
 * entry; a KEYS walk holds its entry until the walk is done (the node's item_hold: the replica
 * has answered the read, the keys are still being gathered); the FIFO's finished prefix leaves
 * for the client, in order, and nothing behind an unfinished entry leaves before it. A crash drops
 * every FIFO of the node (its connections die with the process); a connection the client gave
 * up (a timeout, a move) stays until its entries are finished, their replies thrown away, as the
 * node keeps a closed connection's items until its requests are answered (N4).
 *
 * Checks (the caller fails the run with the text):
 *   - exactly one reply per request: a reply for a request the node has no entry for, or a
 *     second reply for one, is refused (rq_reply);
 *   - none lost: every request a node received is answered by its replica within the request
 *     timeout (replica.h: a request still pending at its deadline gets TIMEOUT or TRYAGAIN),
 *     counted in the node's own ticks (a paused node does not tick), whatever the cluster
 *     does meanwhile: rq_check after each tick. So a reply dropped on a leadership change, a
 *     term change or a snapshot install fails the run at its deadline, where the client alone
 *     would only have seen a timeout. The client checks the order (sim.c conn_on_reply).
 */
#ifndef RK_SIM_REPLYQ_H
#define RK_SIM_REPLYQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct replyq;

/* Where a reply goes when its entry leaves the FIFO of an open connection, in order. rep is the
 * caller's (passed to rq_reply), owned by the callee from here on. */
typedef void (*rq_send_fn)(void *ctx, void *rep);

struct replyq *rq_new(rq_send_fn send, void *ctx);
/* Frees q and every reply it holds (free()). */
void rq_free(struct replyq *q);
/* The node crashed: every FIFO is dropped, the replies it holds freed. */
void rq_reset(struct replyq *q);

/* A request of connection session arrives at the node (it reads and parses it): its entry at
 * the tail, at the node's tick `tick`. closed: the client left that connection already. */
void rq_arrive(struct replyq *q, uint64_t session, uint64_t req_id, uint64_t tick, bool closed);
/* The replica's reply for req_id (rep: malloc'd, taken). false, with why, when no entry waits
 * for one (never received, or answered already): rep is freed. */
bool rq_reply(struct replyq *q, uint64_t req_id, void *rep, char *why, size_t cap);
/* A KEYS walk holds / releases its entry (node/cmd_keyspace.c: item_hold, item_release). */
void rq_hold(struct replyq *q, uint64_t req_id);
void rq_unhold(struct replyq *q, uint64_t req_id);
/* The client left connection session: what it still gets is thrown away. */
void rq_close(struct replyq *q, uint64_t session);
/* Sends every finished prefix (call after rq_reply, rq_unhold). */
void rq_flush(struct replyq *q);

/* After a tick of the node: false, with why, if a request it received at least timeout_ticks + 2
 * ticks ago still has no reply from its replica. */
bool rq_check(const struct replyq *q, uint64_t tick, uint64_t timeout_ticks, char *why, size_t cap);
/* Entries held (requests not yet answered to their client), over every connection. */
size_t rq_pending(const struct replyq *q);

#endif

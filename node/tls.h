/*
 * tls.h — TLS for the client port and the peer connections (node/tls.c, OpenSSL): the contexts
 * built from the tls-* settings (and rebuilt by node_tls_reload: CONFIG SET, SIGHUP), and the
 * non-blocking steps a connection takes (handshake, read, write). No call blocks: every step
 * returns TLS_WANT_READ or TLS_WANT_WRITE and the caller waits for that readiness in its epoll
 * loop, then calls the same step again (a write again with the same bytes).
 *
 * Connections hold their own reference to the context they were made from: a reload changes
 * what NEW connections present and accept, never a connection already up.
 */
#ifndef NODE_TLS_H
#define NODE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tls_conf.h"

struct node;
struct options;
struct ssl_st;

/* What a step needs before it can go on. */
enum tls_step { TLS_DONE = 0, TLS_WANT_READ, TLS_WANT_WRITE, TLS_CLOSED, TLS_FAILED };

/* With tls-port or tls-peers: the contexts from n->opt. 0, or -1 (logged: the node does not
 * start with certificates it cannot load). */
int node_tls_start(struct node *n);
void node_tls_stop(struct node *n);
/* Whether TLS is on for client connections on the tls-port, and for peer connections. */
bool node_tls_peers(const struct node *n);
/* Builds new contexts from o; on success they replace the current ones (new connections use
 * them), on failure nothing changes and why says what (at most cap bytes). 0 or -1. */
int node_tls_reload(struct node *n, const struct options *o, char *why, size_t cap);

/* A new TLS connection over the connected (or connecting) socket fd: `client_port` a Redis
 * client on the tls-port (its certificate asked for as tls-auth-clients says); otherwise a peer
 * connection, accepting (`dialer` false) or dialing, which always takes a certificate of the
 * configured CA from the other side. NULL: out of memory. */
struct ssl_st *node_tls_new(struct node *n, int fd, bool client_port, bool dialer);
void node_tls_free(struct ssl_st *ssl);
/* One step of the handshake. TLS_FAILED: why says why (a certificate error by its name);
 * TLS_CLOSED: the other side closed before sending anything (a port probe). */
enum tls_step node_tls_handshake(struct ssl_st *ssl, char *why, size_t cap);
/* Reads up to len bytes. > 0: bytes read; otherwise 0 and *st says why not (TLS_CLOSED: the
 * other side closed; TLS_FAILED: an error, why says it). */
size_t node_tls_read(struct ssl_st *ssl, void *p, size_t len, enum tls_step *st, char *why,
                     size_t cap);
/* Writes up to len bytes (partial writes on). A TLS_WANT_* must be retried with the same bytes
 * (they may move: the buffer may be compacted meanwhile). */
size_t node_tls_write(struct ssl_st *ssl, const void *p, size_t len, enum tls_step *st, char *why,
                      size_t cap);
/* Bytes read from the socket that a read has not returned yet (epoll cannot see them). */
bool node_tls_pending(struct ssl_st *ssl);
/* The other side's certificate carries `name` (SAN DNS, or CN without SANs). false: why. */
bool node_tls_name_ok(struct ssl_st *ssl, const char *name, char *why, size_t cap);
/* The other side's certificate subject, for logs ("-" without one). */
void node_tls_subject(struct ssl_st *ssl, char *out, size_t cap);

#endif

/*
 * tls.c — TLS for raftkv-node (tls.h), with OpenSSL 3 (Debian libssl-dev), the way Redis's
 * tls.c does it: one server context (the tls-port's clients and accepted peer connections) and
 * one client context (dialed peer connections), both built from tls-cert-file, tls-key-file,
 * tls-ca-cert-file and tls-protocols, and swapped whole by a reload.
 *
 * Invariants:
 *   T1  a peer connection is mutual TLS in both directions: each side presents tls-cert-file
 *       and accepts only a certificate chain that verifies against tls-ca-cert-file; with
 *       tls-peer-names, also only the name listed for the member (checked by the caller once
 *       it knows which member the other side is: peer.c).
 *   T2  every SSL call is non-blocking: SSL_ERROR_WANT_READ/WRITE come back to the loop as
 *       TLS_WANT_*, the error queue is cleared before each call so that SSL_get_error speaks
 *       of that call only.
 *   T3  partial writes and moving write buffers are on: a write retried after TLS_WANT_WRITE
 *       carries the same bytes, which may have moved (a compacted buffer, conn.c/peer.c).
 *   T4  a reload builds both contexts before it replaces either: on any error the node keeps
 *       the ones it has (and says why); connections keep the context they were made from.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/assert.h"
#include "server.h"
#include "tls.h"

struct node_tls {
    SSL_CTX *server; /* the tls-port's clients, accepted peers */
    SSL_CTX *client; /* dialed peers */
    enum tls_auth auth;
};

/* The reason of the oldest error queued, or fallback. */
static void err_text(const char *fallback, char *why, size_t cap)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(why, cap, "%s", r != NULL ? r : fallback);
    ERR_clear_error();
}

static int ctx_protocols(SSL_CTX *ctx, unsigned mask)
{
    int min = (mask & TLS_PROTO_12) ? TLS1_2_VERSION : TLS1_3_VERSION;
    int max = (mask & TLS_PROTO_13) ? TLS1_3_VERSION : TLS1_2_VERSION;
    return SSL_CTX_set_min_proto_version(ctx, min) == 1 &&
                   SSL_CTX_set_max_proto_version(ctx, max) == 1
               ? 0
               : -1;
}

/* One context from the settings o (server or client side). NULL with why. */
static SSL_CTX *ctx_build(const struct options *o, bool server, char *why, size_t cap)
{
    unsigned protos = 0;
    if (!tls_parse_protocols(o->tls_protocols, &protos)) {
        snprintf(why, cap, "tls-protocols: '%s' (TLSv1.2 and/or TLSv1.3)", o->tls_protocols);
        return NULL;
    }
    if (o->tls_cert_file[0] == 0 || o->tls_key_file[0] == 0 || o->tls_ca_cert_file[0] == 0) {
        snprintf(why, cap, "tls-cert-file, tls-key-file and tls-ca-cert-file are all required");
        return NULL;
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        err_text("SSL_CTX_new failed", why, cap);
        return NULL;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read ahead: one read(2) takes what the socket has (not a record header, then its body);
     * the bytes beyond the record returned stay in OpenSSL, which node_tls_pending reports. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* No renegotiation (a write never has to wait for a read); EOF without close_notify is an
     * EOF, as redis-cli and most clients end a connection. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (ctx_protocols(ctx, protos) != 0) {
        err_text("cannot set tls-protocols", why, cap);
        goto err_free_ctx;
    }
    char what[2 * PATH_MAX + 64];
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert_file) != 1) {
        snprintf(what, sizeof(what), "tls-cert-file %s", o->tls_cert_file);
        goto err_file;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof(what), "tls-key-file %s", o->tls_key_file);
        goto err_file;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "tls-key-file %s does not match tls-cert-file %s",
                 o->tls_key_file, o->tls_cert_file);
        goto err_file;
    }
    if (SSL_CTX_load_verify_locations(ctx, o->tls_ca_cert_file, NULL) != 1) {
        snprintf(what, sizeof(what), "tls-ca-cert-file %s", o->tls_ca_cert_file);
        goto err_file;
    }
    if (server) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->tls_ca_cert_file);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx, names);
        /* Sessions resumed across a reload would skip the new CA's check: no cache. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;

err_file : {
    char reason[256];
    err_text(strerror(errno), reason, sizeof(reason));
    snprintf(why, cap, "%s: %s", what, reason);
}
err_free_ctx:
    SSL_CTX_free(ctx);
    return NULL;
}

int node_tls_reload(struct node *n, const struct options *o, char *why, size_t cap)
{
    RK_ASSERT(n->tls != NULL);
    enum tls_auth auth = TLS_AUTH_YES;
    if (!tls_parse_auth(o->tls_auth_clients, &auth)) {
        snprintf(why, cap, "tls-auth-clients: '%s' (yes, no or optional)", o->tls_auth_clients);
        return -1;
    }
    SSL_CTX *server = ctx_build(o, true, why, cap);
    if (server == NULL)
        return -1;
    SSL_CTX *client = ctx_build(o, false, why, cap);
    if (client == NULL) {
        SSL_CTX_free(server);
        return -1;
    }
    SSL_CTX_free(n->tls->server); /* connections up keep their reference (T4) */
    SSL_CTX_free(n->tls->client);
    n->tls->server = server;
    n->tls->client = client;
    n->tls->auth = auth;
    return 0;
}

int node_tls_start(struct node *n)
{
    if (n->opt.tls_port == 0 && !n->opt.tls_peers)
        return 0;
    n->tls = calloc(1, sizeof(*n->tls));
    if (n->tls == NULL)
        return -1;
    char why[PATH_MAX + 512];
    if (node_tls_reload(n, &n->opt, why, sizeof(why)) != 0) {
        char msg[PATH_MAX + 600];
        snprintf(msg, sizeof(msg), "cannot start TLS: %s", why);
        node_event("error", "tls_error", msg, "op=start");
        node_tls_stop(n);
        return -1;
    }
    return 0;
}

void node_tls_stop(struct node *n)
{
    if (n->tls == NULL)
        return;
    SSL_CTX_free(n->tls->server);
    SSL_CTX_free(n->tls->client);
    free(n->tls);
    n->tls = NULL;
}

bool node_tls_peers(const struct node *n)
{
    return n->tls != NULL && n->opt.tls_peers;
}

struct ssl_st *node_tls_new(struct node *n, int fd, bool client_port, bool dialer)
{
    RK_ASSERT(n->tls != NULL);
    RK_ASSERT(!(client_port && dialer));
    ERR_clear_error();
    SSL *ssl = SSL_new(dialer ? n->tls->client : n->tls->server);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    if (dialer) {
        SSL_set_connect_state(ssl);
        return ssl;
    }
    int mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT; /* peers: T1 */
    if (client_port && n->tls->auth == TLS_AUTH_NO)
        mode = SSL_VERIFY_NONE;
    else if (client_port && n->tls->auth == TLS_AUTH_OPTIONAL)
        mode = SSL_VERIFY_PEER;
    SSL_set_verify(ssl, mode, NULL);
    SSL_set_accept_state(ssl);
    return ssl;
}

void node_tls_free(struct ssl_st *ssl)
{
    if (ssl == NULL)
        return;
    /* No close_notify: the socket is non-blocking and about to close; the other side sees EOF
     * (Redis's connTLSClose does the same when the connection is not established). */
    SSL_set_quiet_shutdown(ssl, 1);
    SSL_free(ssl);
    ERR_clear_error();
}

/* What a failed call (ret <= 0) means (T2). */
static enum tls_step step_of(SSL *ssl, int ret, char *why, size_t cap)
{
    int e = SSL_get_error(ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(why, cap, "closed by the other side");
        ERR_clear_error();
        return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (errno == 0) {
                snprintf(why, cap, "closed by the other side");
                return TLS_CLOSED;
            }
            snprintf(why, cap, "%s", strerror(errno));
            return TLS_FAILED;
        }
        break;
    default:
        break;
    }
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        snprintf(why, cap, "certificate verify failed: %s", X509_verify_cert_error_string(v));
        ERR_clear_error();
        return TLS_FAILED;
    }
    err_text("TLS error", why, cap);
    return TLS_FAILED;
}

enum tls_step node_tls_handshake(struct ssl_st *ssl, char *why, size_t cap)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return TLS_DONE;
    enum tls_step st = step_of(ssl, r, why, cap);
    if (st == TLS_CLOSED && BIO_number_read(SSL_get_rbio(ssl)) == 0) {
        /* Not one byte of a handshake: a port probe (a health check, a scanner), not a
         * refusal worth a warning. */
        snprintf(why, cap, "closed before a TLS handshake");
        return TLS_CLOSED;
    }
    if (st == TLS_CLOSED) {
        snprintf(why, cap, "closed during the TLS handshake");
        return TLS_FAILED;
    }
    return st;
}

size_t node_tls_read(struct ssl_st *ssl, void *p, size_t len, enum tls_step *st, char *why,
                     size_t cap)
{
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(ssl, p, len, &got);
    if (r == 1) {
        *st = TLS_DONE;
        return got;
    }
    *st = step_of(ssl, 0, why, cap);
    return 0;
}

size_t node_tls_write(struct ssl_st *ssl, const void *p, size_t len, enum tls_step *st, char *why,
                      size_t cap)
{
    size_t put = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(ssl, p, len, &put);
    if (r == 1) {
        *st = TLS_DONE;
        return put;
    }
    *st = step_of(ssl, 0, why, cap);
    return 0;
}

bool node_tls_pending(struct ssl_st *ssl)
{
    return ssl != NULL && SSL_has_pending(ssl) == 1;
}

bool node_tls_name_ok(struct ssl_st *ssl, const char *name, char *why, size_t cap)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL) {
        snprintf(why, cap, "no certificate");
        return false;
    }
    if (X509_check_host(cert, name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1)
        return true;
    char subject[256];
    node_tls_subject(ssl, subject, sizeof(subject));
    snprintf(why, cap, "certificate of %s does not name %s", subject, name);
    ERR_clear_error();
    return false;
}

void node_tls_subject(struct ssl_st *ssl, char *out, size_t cap)
{
    X509 *cert = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    snprintf(out, cap, "-");
    if (cert == NULL || cap == 0)
        return;
    X509_NAME_oneline(X509_get_subject_name(cert), out, (int)cap);
    for (char *p = out; *p != 0; p++)
        if (*p == ' ' || *p == '"')
            *p = '_'; /* a log value without spaces or quotes */
}

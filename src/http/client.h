/* The upstream HTTP/1.1 client: one request/response exchange at a time per
 * connection, connections kept alive in a per-worker pool keyed by target,
 * TLS with verification, connect and first-byte timeouts, and read pausing
 * so a slow client slows the upstream instead of filling memory. */
#ifndef MG_HTTP_CLIENT_H
#define MG_HTTP_CLIENT_H

#include "core/list.h"
#include "http/parser.h"
#include "net/stream.h"

struct mg_client_target {
    const char *host; /* name or IP literal (IPv6 without brackets) */
    uint16_t port;
    SSL_CTX *ssl_ctx; /* NULL: plain */
    const char *sni;  /* TLS server name and the name verified */
    bool verify;
    const char *unix_path; /* non-NULL: connect to this Unix socket instead */
};

struct mg_client_cbs {
    /* The response head (1xx responses are skipped). Return 1 to skip the body. */
    int (*on_head)(void *ud, const struct mg_http_head *head);
    void (*on_body)(void *ud, const char *data, size_t len);
    /* The exchange ended: 0 after a complete response, else MG_ETIMEDOUT
     * (connect or first byte), MG_EIO (cannot connect), MG_EPROTO (bad
     * response), MG_ECLOSED (the upstream closed mid-response), MG_ETLS. */
    void (*on_done)(void *ud, int status);
};

struct mg_client_pool {
    uv_loop_t *loop;
    struct mg_list idle; /* idle connections, most recent last */
    size_t n_idle, max_idle;
    uint64_t idle_timeout_ms;
    size_t max_response_head;
    size_t n_open; /* open upstream connections */
    bool closing;
};

struct mg_client_req;

void mg_client_pool_init(struct mg_client_pool *p, uv_loop_t *loop, size_t max_response_head);
/* Closes idle connections; active ones close when their exchange ends. */
void mg_client_pool_close(struct mg_client_pool *p);

struct mg_client_opts {
    uint64_t connect_timeout_ms;
    uint64_t first_byte_timeout_ms;
    bool head_request; /* the request is HEAD: the response has no body */
    bool wipe;         /* head or body carry secrets: cleanse the copies before freeing */
};

/* Sends head (the complete request head ending in CRLFCRLF) and body to the
 * target. Copies both. On success the callbacks run later, on_done exactly
 * once (unless cancelled); on failure nothing runs. */
int mg_client_request(struct mg_client_pool *p, const struct mg_client_target *t, const char *head,
                      size_t head_len, const char *body, size_t body_len,
                      const struct mg_client_opts *opts, const struct mg_client_cbs *cbs, void *ud,
                      struct mg_client_req **out);
/* Abandons the exchange: no callback runs afterwards; the connection closes. */
void mg_client_cancel(struct mg_client_req *r);
void mg_client_pause(struct mg_client_req *r);
void mg_client_resume(struct mg_client_req *r);
/* Nanoseconds from the request's start to the response head (0 if none yet). */
uint64_t mg_client_first_byte_ns(const struct mg_client_req *r);

#endif

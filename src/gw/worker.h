/* A worker: one thread, one libuv loop, its own SO_REUSEPORT listener, HTTP
 * server and upstream pool. The main thread talks to it only through
 * mg_worker_post_* (a mutex-guarded mailbox plus uv_async). */
#ifndef MG_GW_WORKER_H
#define MG_GW_WORKER_H

#include "gw/gw.h"
#include "http/client.h"
#include "http/server.h"

#include <pthread.h>

struct mg_audit_port;

/* A worker's hold on one configuration. Requests count here, on the worker's
 * thread only, instead of on the configuration's shared reference count: two
 * atomic operations per request on a line every worker writes were a
 * measurable share of a request (bench/RESULTS.md). The hold keeps one
 * reference, given back when the worker has moved to a newer configuration
 * and its last request on this one is done. */
struct mg_gw_hold {
    struct mg_gw *gw;
    size_t n;     /* requests holding it */
    bool retired; /* the worker has moved on */
};

struct mg_worker {
    int id;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_tcp_t listener;
    int listen_fd;
    bool listener_open;
    struct mg_http_server http;
    struct mg_client_pool pool;
    struct mg_gw *gw; /* current configuration (its hold's reference) */
    struct mg_gw_hold *hold;
    SSL_CTX *ssl_ctx; /* listener TLS, NULL = plain */
    uv_async_t wake;
    uv_timer_t drain_timer;
    pthread_mutex_t mu;
    struct mg_gw *next_gw; /* mailbox: a new configuration */
    bool want_drain;       /* mailbox: stop accepting, finish, exit */
    bool draining;
    bool done;
    struct mg_audit_port *audit_port; /* completions of audit.sync records, on this loop */
};

/* Binds a listening socket with SO_REUSEPORT (one per worker). */
int mg_worker_listen_fd(const char *address, int *fd, struct mg_buf *err);
/* Starts the thread. Takes a reference to gw. */
int mg_worker_start(struct mg_worker *w, int id, int fd, struct mg_gw *gw, SSL_CTX *ssl_ctx);
/* Hands a new configuration over (takes a reference). */
void mg_worker_post_config(struct mg_worker *w, struct mg_gw *gw);
void mg_worker_post_drain(struct mg_worker *w);
void mg_worker_join(struct mg_worker *w);
/* A request's hold on the worker's current configuration (w->gw), and its
 * release; both on the worker's thread. */
struct mg_gw_hold *mg_worker_hold_gw(struct mg_worker *w);
void mg_worker_release_gw(struct mg_gw_hold *h);

/* The proxy handler used by workers (proxy.c). */
extern const struct mg_http_handler mg_proxy_handler;

#endif

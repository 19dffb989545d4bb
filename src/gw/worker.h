/* A worker: one thread, one libuv loop, its own SO_REUSEPORT listener, HTTP
 * server and upstream pool. The main thread talks to it only through
 * mg_worker_post_* (a mutex-guarded mailbox plus uv_async).
 *
 * Connections are balanced by count: the kernel's SO_REUSEPORT hash spreads
 * a few dozen connections unevenly (22 against 11 for wrk's 32 was common),
 * and long-lived connections keep that split: with a core each, the busier
 * worker would limit the gateway (on the shared 2-core benchmark machine it
 * made no measurable difference, bench/RESULTS.md). A worker that accepts a connection while
 * another has fewer open passes the socket to that one through the same mailbox, before reading a
 * byte of it (as Envoy's exact connection balancer and HAProxy's
 * multi-queue accept do). */
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

/* A connection on its way from the worker that accepted it to another. */
struct mg_worker_handoff {
    int fd;
    struct sockaddr_storage peer;
};

#define MG_WORKER_INBOX 64 /* connections waiting to be taken over, per worker */

struct mg_worker;

/* All the workers of a process. Only the first n_started are looked at by
 * other threads; the main thread raises it after each start. */
struct mg_worker_group {
    struct mg_worker *all;
    _Atomic int n_started;
};

struct mg_worker {
    int id;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_poll_t listener; /* readable: connections to accept on listen_fd */
    int listen_fd;
    bool listener_open;
    uv_timer_t accept_pause; /* accepting paused after EMFILE and the like */
    uint64_t accept_warned_ms;
    struct mg_worker_group *group;
    _Atomic(long long) n_open;            /* the HTTP server's connections (its load gauge) */
    _Atomic(long long) n_incoming;        /* handed to this worker, not yet taken over */
    _Atomic bool accepting;               /* running and not draining: takes handoffs */
    _Atomic(unsigned long long) n_handed; /* connections it accepted and passed on */
    bool short_slice;                     /* worker_yield: a 0.1 ms scheduler slice asked for */
    struct mg_http_server http;
    struct mg_client_pool pool;
    struct mg_gw *gw; /* current configuration (its hold's reference) */
    struct mg_gw_hold *hold;
    SSL_CTX *ssl_ctx; /* listener TLS, NULL = plain */
    uv_async_t wake;
    uv_timer_t drain_timer;
    pthread_mutex_t mu;
    struct mg_gw *next_gw;                           /* mailbox: a new configuration */
    bool want_drain;                                 /* mailbox: stop accepting, finish, exit */
    struct mg_worker_handoff inbox[MG_WORKER_INBOX]; /* mailbox: connections */
    size_t n_inbox;
    bool inbox_closed; /* draining: no more connections */
    bool draining;
    bool done;
    struct mg_audit_port *audit_port; /* completions of audit.sync records, on this loop */
};

/* Binds a listening socket with SO_REUSEPORT (one per worker). */
int mg_worker_listen_fd(const char *address, int *fd, struct mg_buf *err);
/* Starts the thread. Takes a reference to gw; w is group->all[id], and the
 * caller raises group->n_started once this returns 0. */
int mg_worker_start(struct mg_worker *w, int id, int fd, struct mg_gw *gw, SSL_CTX *ssl_ctx,
                    struct mg_worker_group *group);
/* Hands a new configuration over (takes a reference). */
void mg_worker_post_config(struct mg_worker *w, struct mg_gw *gw);
void mg_worker_post_drain(struct mg_worker *w);
void mg_worker_join(struct mg_worker *w);
/* Appends the per-worker gauges in Prometheus text format (any thread). */
void mg_worker_render_metrics(struct mg_worker_group *g, struct mg_buf *out);
/* A request's hold on the worker's current configuration (w->gw), and its
 * release; both on the worker's thread. */
struct mg_gw_hold *mg_worker_hold_gw(struct mg_worker *w);
void mg_worker_release_gw(struct mg_gw_hold *h);

/* The proxy handler used by workers (proxy.c). */
extern const struct mg_http_handler mg_proxy_handler;

#endif

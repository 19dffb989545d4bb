/* Worker threads; see worker.h. */
#include "gw/worker.h"

#include "audit/audit.h"
#include "core/log.h"
#include "gw/metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int mg_worker_listen_fd(const char *address, int *out, struct mg_buf *err)
{
    /* The same parser the config loader validated the address with. */
    char *host = NULL;
    uint16_t port = 0;
    if (mg_hostport_parse(address, &host, &port) < 0) {
        mg_buf_appendf(err, "address %s: expected host:port", address);
        return MG_EINVAL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host[0] ? host : "0.0.0.0";
    int bad = uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss) != 0 &&
              uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss) != 0;
    free(host);
    if (bad) {
        mg_buf_appendf(err, "address %s: host must be an IP address or localhost", address);
        return MG_EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mg_buf_appendf(err, "socket: %s", strerror(errno));
        return MG_EIO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* One listening socket per worker; the kernel spreads connections. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    socklen_t len =
        ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        mg_buf_appendf(err, "cannot listen on %s: %s", address, strerror(errno));
        close(fd);
        return MG_EIO;
    }
    *out = fd;
    return 0;
}

static void limits_from(const struct mg_conf *c, struct mg_http_limits *l)
{
    l->max_header_bytes = c->max_header_bytes;
    l->max_body_bytes = c->max_body_bytes;
    l->header_timeout_ms = c->header_timeout_ms;
    l->body_timeout_ms = c->body_timeout_ms;
    l->idle_timeout_ms = c->idle_timeout_ms;
    l->send_timeout_ms = c->send_timeout_ms;
    /* The connection cap is per gateway: workers check the shared gauge. */
    l->max_connections = c->max_connections;
}

/* --- accepting and balancing ------------------------------------------------------------ */

#define ACCEPT_BATCH    64  /* accepts per readiness callback: other events get their turn */
#define ACCEPT_PAUSE_MS 100 /* after EMFILE and the like, as nginx does */
#define ACCEPT_WARN_MS  10000

static long long load_of(struct mg_worker *w)
{
    return atomic_load_explicit(&w->n_open, memory_order_relaxed) +
           atomic_load_explicit(&w->n_incoming, memory_order_relaxed);
}

/* The worker with the fewest connections, open or on their way; self on a
 * tie, so that balanced workers pass nothing. */
static struct mg_worker *least_loaded(struct mg_worker *self)
{
    int n = atomic_load_explicit(&self->group->n_started, memory_order_acquire);
    struct mg_worker *best = self;
    long long min = load_of(self);
    for (int i = 0; i < n; i++) {
        struct mg_worker *o = &self->group->all[i];
        if (o == self || !atomic_load_explicit(&o->accepting, memory_order_relaxed))
            continue;
        long long l = load_of(o);
        if (l < min) {
            min = l;
            best = o;
        }
    }
    return best;
}

/* Puts a freshly accepted socket in to's mailbox; false if it is full or
 * closed (to is draining). The connection counts toward the gateway's cap
 * and to's load from here on. */
static bool hand_over(struct mg_worker *from, struct mg_worker *to, int fd,
                      const struct sockaddr_storage *peer)
{
    bool ok = false;
    atomic_fetch_add(&to->n_incoming, 1);
    pthread_mutex_lock(&to->mu);
    if (!to->inbox_closed && to->n_inbox < MG_WORKER_INBOX) {
        to->inbox[to->n_inbox].fd = fd;
        to->inbox[to->n_inbox].peer = *peer;
        to->n_inbox++;
        if (from->http.conn_gauge)
            atomic_fetch_add(from->http.conn_gauge, 1);
        /* Under the lock: to closes its wake handle only after it closed the
         * mailbox, which it does under this lock. */
        uv_async_send(&to->wake);
        ok = true;
    }
    pthread_mutex_unlock(&to->mu);
    if (!ok)
        atomic_fetch_sub(&to->n_incoming, 1);
    return ok;
}

static void on_listener(uv_poll_t *p, int status, int events);

static void on_accept_resume(uv_timer_t *t)
{
    struct mg_worker *w = t->data;
    if (w->listener_open)
        uv_poll_start(&w->listener, UV_READABLE, on_listener);
}

static void on_listener(uv_poll_t *p, int status, int events)
{
    struct mg_worker *w = p->data;
    MG_UNUSED(events);
    for (int i = 0; i < ACCEPT_BATCH && status == 0; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd =
            accept4(w->listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            struct mg_worker *to = least_loaded(w);
            if (to != w && hand_over(w, to, fd, &peer)) {
                atomic_fetch_add_explicit(&w->n_handed, 1, memory_order_relaxed);
                continue;
            }
            mg_http_server_adopt(&w->http, fd, &peer, false);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        /* accept(2), Linux notes: errors of the new connection itself; the
         * next one may be fine. */
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH: continue;
        default: status = -errno; break;
        }
    }
    if (status == 0)
        return; /* a full batch: the level-triggered poll calls again */
    /* Out of descriptors or memory, or a listener error: polling on would
     * spin on the same error. Connections wait in the backlog meanwhile. */
    uint64_t now = uv_now(&w->loop);
    if (w->accept_warned_ms == 0 || now - w->accept_warned_ms >= ACCEPT_WARN_MS) {
        mg_log_warn("worker %d: accept: %s; not accepting for %d ms", w->id, uv_strerror(status),
                    ACCEPT_PAUSE_MS);
        w->accept_warned_ms = now;
    }
    uv_poll_stop(&w->listener);
    uv_timer_start(&w->accept_pause, on_accept_resume, ACCEPT_PAUSE_MS, 0);
}

/* Takes over the connections other workers passed; with drain, closes the
 * mailbox first so that no more come. */
static void take_inbox(struct mg_worker *w, bool close_it)
{
    struct mg_worker_handoff in[MG_WORKER_INBOX];
    pthread_mutex_lock(&w->mu);
    size_t n = w->n_inbox;
    memcpy(in, w->inbox, n * sizeof in[0]);
    w->n_inbox = 0;
    if (close_it)
        w->inbox_closed = true;
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        mg_http_server_adopt(&w->http, in[i].fd, &in[i].peer, true);
        atomic_fetch_sub(&w->n_incoming, 1);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    struct mg_worker *w = h->data;
    close(w->listen_fd);
    w->listen_fd = -1;
}

static void close_listener(struct mg_worker *w)
{
    if (!w->listener_open)
        return;
    w->listener_open = false;
    uv_timer_stop(&w->accept_pause);
    uv_close((uv_handle_t *)&w->listener, on_listener_closed);
}

void mg_worker_render_metrics(struct mg_worker_group *g, struct mg_buf *o)
{
    int n = atomic_load_explicit(&g->n_started, memory_order_acquire);
    mg_buf_appendf(o, "# HELP mcpgate_worker_connections Client connections open now, per worker "
                      "thread.\n# TYPE mcpgate_worker_connections gauge\n");
    for (int i = 0; i < n; i++)
        mg_buf_appendf(o, "mcpgate_worker_connections{worker=\"%d\"} %lld\n", i,
                       load_of(&g->all[i]));
    mg_buf_appendf(o, "# HELP mcpgate_worker_handoffs_total Connections a worker accepted and "
                      "passed to one with fewer.\n# TYPE mcpgate_worker_handoffs_total counter\n");
    for (int i = 0; i < n; i++)
        mg_buf_appendf(o, "mcpgate_worker_handoffs_total{worker=\"%d\"} %llu\n", i,
                       atomic_load_explicit(&g->all[i].n_handed, memory_order_relaxed));
}

/* --- cooperative scheduling ------------------------------------------------------------- */

/* struct sched_attr, SCHED_ATTR_SIZE_VER0 (glibc 2.36 has no wrapper). */
struct sched_attr_v0 {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};

#define YIELD_SLICE_NS 100000 /* the shortest slice EEVDF grants (0.1 ms) */

/* worker_yield: the worker yields after writing (stream.c) and asks the
 * scheduler for a short time slice. A yield moves the thread's EEVDF
 * virtual deadline one slice later; with the default slice (0.75 ms and up)
 * that let the other runnable threads go first for long enough to raise
 * p99 by ~20% on the benchmark, with 0.1 ms it costs nothing measurable
 * (bench/RESULTS.md, issue 4 section 7). Linux 6.12 and later honour the
 * slice; older kernels accept and ignore it. The thread's policy and nice
 * value are kept, and real-time or idle policies set by an operator are
 * left alone. */
static void set_cooperative(struct mg_worker *w, bool on)
{
    mg_stream_loop_yield_after_flush(on);
    if (w->short_slice == on)
        return;
    int policy = sched_getscheduler(0);
    if (policy != SCHED_OTHER && policy != SCHED_BATCH)
        return;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0); /* this thread's, on Linux */
    if (nice == -1 && errno != 0)
        return;
    struct sched_attr_v0 a = {.size = sizeof a,
                              .sched_policy = (uint32_t)policy,
                              .sched_nice = nice,
                              .sched_runtime = on ? YIELD_SLICE_NS : 0};
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0) {
        mg_log_debug("worker %d: sched_setattr: %s (the default time slice stays)", w->id,
                     strerror(errno));
        return;
    }
    w->short_slice = on;
}

static void on_closed_noop(uv_handle_t *h)
{
    MG_UNUSED(h);
}

static void finish_worker(struct mg_worker *w)
{
    if (w->done)
        return;
    w->done = true;
    mg_client_pool_close(&w->pool);
    mg_stream_loop_fini();
    if (w->audit_port) {
        /* Draining waited for every request, and each for its records. */
        mg_audit_port_close(w->audit_port);
        w->audit_port = NULL;
    }
    /* The mailbox closed when draining began; anything in it was taken. */
    pthread_mutex_lock(&w->mu);
    MG_ASSERT(w->inbox_closed && w->n_inbox == 0);
    pthread_mutex_unlock(&w->mu);
    uv_close((uv_handle_t *)&w->wake, on_closed_noop);
    uv_close((uv_handle_t *)&w->drain_timer, on_closed_noop);
    uv_close((uv_handle_t *)&w->accept_pause, on_closed_noop);
}

static void on_empty(struct mg_http_server *srv)
{
    struct mg_worker *w = srv->data;
    if (w->draining)
        finish_worker(w);
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct mg_worker *w = t->data;
    mg_log_warn("worker %d: drain timeout, closing %zu connections", w->id, w->http.n_conns);
    mg_http_server_close_all(&w->http);
}

static struct mg_gw_hold *hold_new(struct mg_gw *gw)
{
    struct mg_gw_hold *h = mg_xcalloc(1, sizeof *h);
    h->gw = gw; /* takes the caller's reference */
    return h;
}

static void hold_retire(struct mg_gw_hold *h)
{
    h->retired = true;
    if (h->n == 0) {
        mg_gw_unref(h->gw);
        free(h);
    }
}

struct mg_gw_hold *mg_worker_hold_gw(struct mg_worker *w)
{
    w->hold->n++;
    return w->hold;
}

void mg_worker_release_gw(struct mg_gw_hold *h)
{
    MG_ASSERT(h->n > 0);
    if (--h->n == 0 && h->retired) {
        mg_gw_unref(h->gw);
        free(h);
    }
}

static void on_wake(uv_async_t *a)
{
    struct mg_worker *w = a->data;
    pthread_mutex_lock(&w->mu);
    struct mg_gw *next = w->next_gw;
    bool drain = w->want_drain;
    w->next_gw = NULL;
    pthread_mutex_unlock(&w->mu);
    if (next) {
        /* Requests in flight keep the configuration they started with. */
        struct mg_gw_hold *old = w->hold;
        w->hold = hold_new(next);
        w->gw = next;
        limits_from(next->conf, &w->http.limits);
        set_cooperative(w, next->conf->worker_yield);
        hold_retire(old);
    }
    if (drain && !w->draining)
        atomic_store(&w->accepting, false); /* others stop choosing this worker */
    take_inbox(w, drain);
    if (drain && !w->draining) {
        w->draining = true;
        close_listener(w);
        uv_timer_start(&w->drain_timer, on_drain_timeout, w->gw->conf->drain_timeout_ms, 0);
        mg_http_server_drain(&w->http);
    }
}

static void worker_main(void *arg)
{
    struct mg_worker *w = arg;
    const struct mg_conf *c = w->gw->conf;
    struct mg_http_limits limits;
    limits_from(c, &limits);
    mg_http_server_init(&w->http, &w->loop, &mg_proxy_handler, w, w->ssl_ctx, &limits);
    w->http.on_empty = on_empty;
    w->http.conn_gauge = &mg_metrics.open_connections;
    w->http.load_gauge = &w->n_open;
    mg_client_pool_init(&w->pool, &w->loop, c->max_response_header_bytes);
    uv_timer_init(&w->loop, &w->accept_pause);
    w->accept_pause.data = w;
    int rc = uv_poll_init(&w->loop, &w->listener, w->listen_fd);
    w->listener.data = w;
    if (rc == 0)
        rc = uv_poll_start(&w->listener, UV_READABLE, on_listener);
    if (rc < 0) {
        mg_log_error("worker %d: listen: %s", w->id, uv_strerror(rc));
        abort();
    }
    w->listener_open = true;
    if (mg_audit_port_new(&w->loop, &w->audit_port) < 0) {
        mg_log_error("worker %d: cannot create the audit completion port", w->id);
        abort();
    }
    set_cooperative(w, c->worker_yield);
    atomic_store(&w->accepting, true);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Everything is closed; let close callbacks run, then release. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    hold_retire(w->hold); /* every request is done: this gives the reference back */
    w->hold = NULL;
    w->gw = NULL;
    if (uv_loop_close(&w->loop) != 0)
        mg_log_warn("worker %d: handles left open at exit", w->id);
    mg_http_parser_thread_fini();
}

int mg_worker_start(struct mg_worker *w, int id, int fd, struct mg_gw *gw, SSL_CTX *ssl_ctx,
                    struct mg_worker_group *group)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->group = group;
    w->listen_fd = fd;
    w->ssl_ctx = ssl_ctx;
    mg_gw_ref(gw);
    w->gw = gw;
    w->hold = hold_new(gw);
    pthread_mutex_init(&w->mu, NULL);
    if (uv_loop_init(&w->loop) != 0)
        return MG_EIO;
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    if (uv_thread_create(&w->thread, worker_main, w) != 0)
        return MG_EIO;
    return 0;
}

void mg_worker_post_config(struct mg_worker *w, struct mg_gw *gw)
{
    mg_gw_ref(gw);
    pthread_mutex_lock(&w->mu);
    struct mg_gw *old = w->next_gw;
    w->next_gw = gw;
    pthread_mutex_unlock(&w->mu);
    mg_gw_unref(old);
    uv_async_send(&w->wake);
}

void mg_worker_post_drain(struct mg_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->want_drain = true;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}

void mg_worker_join(struct mg_worker *w)
{
    uv_thread_join(&w->thread);
    pthread_mutex_lock(&w->mu);
    struct mg_gw *left = w->next_gw;
    w->next_gw = NULL;
    pthread_mutex_unlock(&w->mu);
    mg_gw_unref(left);
    pthread_mutex_destroy(&w->mu);
}

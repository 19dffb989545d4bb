/* Upstream HTTP/1.1 client with a keep-alive pool; see client.h.
 *
 * A pooled connection may have been closed by the upstream just as we reuse
 * it. When that happens before a single response byte arrives, the request is
 * sent once more on a fresh connection (what Go's transport and nginx's
 * proxy_next_upstream do for a failed reused connection); a failure on a fresh
 * connection is reported as is. */
#include "http/client.h"
#include "net/timer.h"

#include <inttypes.h>
#include <openssl/crypto.h>

enum conn_state { CC_CONNECTING, CC_ACTIVE, CC_IDLE, CC_CLOSED };

struct client_conn {
    struct mg_stream s;
    struct mg_client_pool *pool;
    char *key;
    struct mg_list link; /* in pool->idle while idle */
    struct mg_http_parser parser;
    struct mg_timer timer;
    struct mg_client_req *req;
    enum conn_state state;
    bool reused, got_bytes, message_done, skip_message, timer_closed, stream_closed;
};

struct resolve {
    uv_getaddrinfo_t gai;
    struct mg_client_req *req; /* NULL once the request is cancelled */
};

struct mg_client_req {
    struct mg_client_pool *pool;
    struct client_conn *conn;
    struct resolve *resolving;
    /* These point into the request's own block (see mg_client_request). */
    char *key;
    char *host, *sni, *unix_path;
    uint16_t port;
    SSL_CTX *ssl_ctx;
    bool verify;
    char *head;
    size_t head_len;
    char *body;
    size_t body_len;
    struct mg_client_opts opts;
    const struct mg_client_cbs *cbs;
    void *ud;
    uint64_t start_ns, first_byte_ns;
    bool retried, paused, head_seen;
    bool starting; /* inside mg_client_request: failures are returned, not called back */
    int sync_status;
};

static void conn_close(struct client_conn *c);
static void start_connect(struct mg_client_req *r);

static void free_req(struct mg_client_req *r)
{
    if (r->opts.wipe) {
        OPENSSL_cleanse(r->head, r->head_len);
        if (r->body)
            OPENSSL_cleanse(r->body, r->body_len);
    }
    free(r); /* with its key, names, head and body (mg_client_request) */
}

/* Ends the exchange: detaches, reports, frees. */
static void finish(struct mg_client_req *r, int status)
{
    if (r->conn) {
        r->conn->req = NULL;
        r->conn = NULL;
    }
    if (r->starting) {
        /* libuv's promise: a call that fails never runs its callback. */
        r->sync_status = status < 0 ? status : MG_EIO;
        return;
    }
    const struct mg_client_cbs *cbs = r->cbs;
    void *ud = r->ud;
    free_req(r);
    cbs->on_done(ud, status);
}

/* --- connection lifetime ---------------------------------------------------------------- */

static void maybe_free_conn(struct client_conn *c)
{
    if (!c->timer_closed || !c->stream_closed)
        return;
    mg_http_parser_fini(&c->parser);
    free(c->key);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct client_conn *c = h->data;
    c->timer_closed = true;
    maybe_free_conn(c);
}

static void on_stream_closed(struct mg_stream *s)
{
    struct client_conn *c = s->data;
    c->stream_closed = true;
    maybe_free_conn(c);
}

static void conn_close(struct client_conn *c)
{
    if (c->state == CC_CLOSED)
        return;
    if (c->state == CC_IDLE) {
        mg_list_remove(&c->link);
        c->pool->n_idle--;
    }
    c->state = CC_CLOSED;
    c->pool->n_open--;
    mg_timer_close(&c->timer, on_timer_closed);
    mg_stream_close(&c->s);
}

static void on_idle_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void to_pool(struct client_conn *c)
{
    struct mg_client_pool *p = c->pool;
    if (p->closing || p->n_idle >= p->max_idle) {
        conn_close(c);
        return;
    }
    mg_http_parser_release_head(&c->parser);
    mg_http_parser_resume(&c->parser);
    c->state = CC_IDLE;
    c->got_bytes = false;
    c->message_done = false;
    mg_list_push(&p->idle, &c->link);
    p->n_idle++;
    mg_stream_read_start(&c->s); /* notice the upstream closing it */
    mg_timer_start(&c->timer, on_idle_timeout, p->idle_timeout_ms, 0);
}

/* --- timers ----------------------------------------------------------------------------- */

static void on_exchange_timeout(uv_timer_t *t)
{
    struct client_conn *c = t->data;
    struct mg_client_req *r = c->req;
    conn_close(c);
    if (r)
        finish(r, MG_ETIMEDOUT);
}

/* --- response parsing ------------------------------------------------------------------- */

static int on_resp_head(void *ud, const struct mg_http_head *h)
{
    struct client_conn *c = ud;
    struct mg_client_req *r = c->req;
    if (r == NULL)
        return -1;
    if (h->status < 200) {
        /* 1xx interim responses (103 Early Hints, a stray 100) are not
         * forwarded; the final response follows on the same connection. */
        c->skip_message = true;
        return 0;
    }
    c->skip_message = false;
    mg_timer_stop(&c->timer);
    r->head_seen = true;
    r->first_byte_ns = mg_now_ns();
    int rc = r->cbs->on_head(r->ud, h);
    if (c->req == NULL)
        return -1; /* cancelled from the callback */
    if (rc == 1 || r->opts.head_request)
        return 1;
    return rc < 0 ? -1 : 0;
}

static int on_resp_body(void *ud, const char *data, size_t len)
{
    struct client_conn *c = ud;
    if (c->req == NULL)
        return -1;
    c->req->cbs->on_body(c->req->ud, data, len);
    return c->req == NULL ? -1 : 0;
}

static int on_resp_complete(void *ud)
{
    struct client_conn *c = ud;
    c->message_done = true;
    return 0;
}

static const struct mg_http_parser_cbs resp_cbs = {
    .on_head = on_resp_head,
    .on_body = on_resp_body,
    .on_complete = on_resp_complete,
};

/* --- stream callbacks ------------------------------------------------------------------- */

static void on_read(struct mg_stream *s, const char *data, size_t len)
{
    struct client_conn *c = s->data;
    if (c->state == CC_IDLE) {
        conn_close(c); /* an idle upstream must not talk: drop it */
        return;
    }
    if (c->state != CC_ACTIVE || c->req == NULL)
        return;
    c->got_bytes = true;
    while (len > 0 && c->state == CC_ACTIVE && c->req) {
        size_t used = 0;
        int rc = mg_http_parser_execute(&c->parser, data, len, &used);
        if (c->state != CC_ACTIVE || c->req == NULL)
            return; /* cancelled inside a callback */
        if (rc < 0) {
            struct mg_client_req *r = c->req;
            conn_close(c);
            finish(r, MG_EPROTO);
            return;
        }
        data += used;
        len -= used;
        if (c->message_done) {
            if (c->skip_message) {
                mg_http_parser_release_head(&c->parser);
                mg_http_parser_resume(&c->parser);
                c->message_done = false;
                c->skip_message = false;
                continue;
            }
            struct mg_client_req *r = c->req;
            bool keep = c->parser.head && c->parser.head->keep_alive && len == 0;
            c->req = NULL;
            r->conn = NULL;
            if (keep)
                to_pool(c);
            else
                conn_close(c);
            finish(r, 0);
            return;
        }
    }
}

static void on_end(struct mg_stream *s, int status)
{
    struct client_conn *c = s->data;
    struct mg_client_req *r = c->req;
    if (r == NULL) {
        conn_close(c);
        return;
    }
    if (!c->got_bytes && c->reused && !r->retried) {
        /* The pooled connection was already dead: try once on a new one. */
        r->retried = true;
        c->req = NULL;
        r->conn = NULL;
        conn_close(c);
        start_connect(r);
        return;
    }
    int st = MG_ECLOSED;
    if (status == 0 && c->got_bytes && mg_http_parser_finish(&c->parser) == 0 && c->message_done)
        st = 0; /* a body delimited by the connection's close */
    else if (!r->head_seen)
        st = status == MG_ETLS ? MG_ETLS : MG_EIO;
    conn_close(c);
    finish(r, st);
}

static void send_request(struct client_conn *c)
{
    struct mg_client_req *r = c->req;
    uv_buf_t bufs[2] = {uv_buf_init(r->head, (unsigned)r->head_len),
                        uv_buf_init(r->body ? r->body : "", (unsigned)r->body_len)};
    if (mg_stream_writev(&c->s, bufs, r->body_len ? 2 : 1) < 0) {
        conn_close(c);
        finish(r, MG_EIO);
        return;
    }
    mg_timer_start(&c->timer, on_exchange_timeout, r->opts.first_byte_timeout_ms, 0);
    if (r->paused)
        mg_stream_read_stop(&c->s);
}

static void on_connect(struct mg_stream *s, int status)
{
    struct client_conn *c = s->data;
    struct mg_client_req *r = c->req;
    if (status < 0) {
        conn_close(c);
        if (r)
            finish(r, status == MG_ETIMEDOUT ? MG_ETIMEDOUT : status == MG_ETLS ? MG_ETLS : MG_EIO);
        return;
    }
    if (r == NULL) { /* cancelled while connecting: keep the connection for later */
        c->state = CC_ACTIVE;
        to_pool(c);
        return;
    }
    c->state = CC_ACTIVE;
    mg_timer_stop(&c->timer);
    send_request(c);
}

static const struct mg_stream_cbs stream_cbs = {
    .on_read = on_read,
    .on_end = on_end,
    .on_connect = on_connect,
    .on_close = on_stream_closed,
};

/* --- connecting ------------------------------------------------------------------------- */

static struct client_conn *new_conn(struct mg_client_req *r)
{
    struct client_conn *c = mg_xcalloc(1, sizeof *c);
    struct mg_client_pool *p = r->pool;
    int rc = r->unix_path ? mg_stream_init_pipe(&c->s, p->loop, &stream_cbs, c)
                          : mg_stream_init_tcp(&c->s, p->loop, &stream_cbs, c);
    MG_ASSERT(rc == 0);
    c->pool = p;
    c->key = mg_xstrdup(r->key);
    mg_list_init(&c->link);
    mg_timer_init(p->loop, &c->timer, c);
    mg_http_parser_init(&c->parser, MG_HTTP_RESPONSE, p->max_response_head, 0, &resp_cbs, c);
    c->state = CC_CONNECTING;
    c->req = r;
    r->conn = c;
    p->n_open++;
    mg_timer_start(&c->timer, on_exchange_timeout, r->opts.connect_timeout_ms, 0);
    return c;
}

static void connect_addr(struct mg_client_req *r, const struct sockaddr *addr)
{
    struct client_conn *c = new_conn(r);
    if (mg_stream_connect(&c->s, addr, r->ssl_ctx, r->sni, r->verify) < 0) {
        conn_close(c);
        finish(r, MG_EIO);
    }
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct resolve *rs = (struct resolve *)gai;
    struct mg_client_req *r = rs->req;
    free(rs);
    if (r == NULL) { /* cancelled meanwhile */
        uv_freeaddrinfo(res);
        return;
    }
    r->resolving = NULL;
    if (status < 0 || res == NULL) {
        uv_freeaddrinfo(res);
        finish(r, MG_EIO);
        return;
    }
    connect_addr(r, res->ai_addr);
    uv_freeaddrinfo(res);
}

static void start_connect(struct mg_client_req *r)
{
    if (r->unix_path) {
        struct client_conn *c = new_conn(r);
        mg_stream_connect_pipe(&c->s, r->unix_path);
        return;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(r->host, r->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(r->host, r->port, (struct sockaddr_in6 *)&ss) == 0) {
        connect_addr(r, (struct sockaddr *)&ss);
        return;
    }
    struct resolve *rs = mg_xcalloc(1, sizeof *rs);
    rs->req = r;
    char port[8];
    snprintf(port, sizeof port, "%u", r->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(r->pool->loop, &rs->gai, on_resolved, r->host, port, &hints) < 0) {
        free(rs);
        finish(r, MG_EIO);
        return;
    }
    r->resolving = rs;
}

/* --- public ----------------------------------------------------------------------------- */

void mg_client_pool_init(struct mg_client_pool *p, uv_loop_t *loop, size_t max_response_head)
{
    memset(p, 0, sizeof *p);
    p->loop = loop;
    mg_list_init(&p->idle);
    p->max_idle = 256;
    p->idle_timeout_ms = 30000;
    p->max_response_head = max_response_head;
}

void mg_client_pool_close(struct mg_client_pool *p)
{
    p->closing = true;
    while (!mg_list_empty(&p->idle)) {
        struct client_conn *c = mg_list_entry(p->idle.next, struct client_conn, link);
        conn_close(c);
    }
}

static int started(struct mg_client_req *r, struct mg_client_req **out)
{
    r->starting = false;
    if (r->sync_status == 0)
        return 0;
    int rc = r->sync_status;
    *out = NULL;
    free_req(r);
    return rc;
}

/* v in decimal, without printf; returns the length (no NUL). */
static size_t dec(char out[24], uint64_t v)
{
    char t[MG_U64_DEC];
    const char *d = mg_u64_dec(t, v);
    size_t n = (size_t)(t + sizeof t - d);
    memcpy(out, d, n);
    return n;
}

int mg_client_request(struct mg_client_pool *p, const struct mg_client_target *t, const char *head,
                      size_t head_len, const char *body, size_t body_len,
                      const struct mg_client_opts *opts, const struct mg_client_cbs *cbs, void *ud,
                      struct mg_client_req **out)
{
    /* One block for the request and everything it copies: the pool's key
     * (host|port|tls context|sni|verify|socket path), the target's names,
     * the head and the body. This runs for every proxied request. */
    char port_s[24], ctx_s[24];
    size_t port_n = dec(port_s, t->port), ctx_n = dec(ctx_s, (uint64_t)(uintptr_t)t->ssl_ctx);
    const char *host = t->host ? t->host : "", *sni = t->sni ? t->sni : "";
    const char *path = t->unix_path ? t->unix_path : "";
    size_t host_n = strlen(host), sni_n = strlen(sni), path_n = strlen(path);
    size_t key_n = host_n + 1 + port_n + 1 + ctx_n + 1 + sni_n + 3 + path_n;
    size_t total = sizeof(struct mg_client_req) + (key_n + 1) + (host_n + 1) + (sni_n + 1) +
                   (path_n + 1) + head_len + body_len;
    struct mg_client_req *r = mg_xmalloc(total);
    memset(r, 0, sizeof *r);
    char *o = (char *)(r + 1);
    r->key = o;
    o = mempcpy(o, host, host_n);
    *o++ = '|';
    o = mempcpy(o, port_s, port_n);
    *o++ = '|';
    o = mempcpy(o, ctx_s, ctx_n);
    *o++ = '|';
    o = mempcpy(o, sni, sni_n);
    o = mempcpy(o, t->verify ? "|1|" : "|0|", 3);
    o = mempcpy(o, path, path_n);
    *o++ = '\0';
    r->host = t->host ? o : NULL;
    o = mempcpy(o, host, host_n + 1);
    r->sni = t->sni ? o : NULL;
    o = mempcpy(o, sni, sni_n + 1);
    r->unix_path = t->unix_path ? o : NULL;
    o = mempcpy(o, path, path_n + 1);
    r->pool = p;
    r->port = t->port;
    r->ssl_ctx = t->ssl_ctx;
    r->verify = t->verify;
    r->head = o;
    memcpy(r->head, head, head_len);
    r->head_len = head_len;
    if (body_len) {
        r->body = o + head_len;
        memcpy(r->body, body, body_len);
        r->body_len = body_len;
    }
    r->opts = *opts;
    if (r->opts.connect_timeout_ms == 0)
        r->opts.connect_timeout_ms = 5000;
    if (r->opts.first_byte_timeout_ms == 0)
        r->opts.first_byte_timeout_ms = 300000;
    r->cbs = cbs;
    r->ud = ud;
    r->start_ns = mg_now_ns();
    r->starting = true;
    *out = r;

    /* Most recently used first: the connection least likely to have timed out. */
    struct mg_list *pos;
    for (pos = p->idle.prev; pos != &p->idle; pos = pos->prev) {
        struct client_conn *c = mg_list_entry(pos, struct client_conn, link);
        if (strcmp(c->key, r->key) != 0)
            continue;
        mg_list_remove(&c->link);
        p->n_idle--;
        mg_timer_stop(&c->timer);
        c->state = CC_ACTIVE;
        c->reused = true;
        c->req = r;
        r->conn = c;
        send_request(c);
        return started(r, out);
    }
    start_connect(r);
    return started(r, out);
}

void mg_client_cancel(struct mg_client_req *r)
{
    if (r->resolving) {
        r->resolving->req = NULL;
        uv_cancel((uv_req_t *)&r->resolving->gai);
    }
    if (r->conn) {
        struct client_conn *c = r->conn;
        c->req = NULL;
        r->conn = NULL;
        if (c->state != CC_CONNECTING)
            conn_close(c);
    }
    free_req(r);
}

void mg_client_pause(struct mg_client_req *r)
{
    r->paused = true;
    if (r->conn && r->conn->state == CC_ACTIVE)
        mg_stream_read_stop(&r->conn->s);
}

void mg_client_resume(struct mg_client_req *r)
{
    r->paused = false;
    if (r->conn && r->conn->state == CC_ACTIVE)
        mg_stream_read_start(&r->conn->s);
}

uint64_t mg_client_first_byte_ns(const struct mg_client_req *r)
{
    return r->first_byte_ns ? r->first_byte_ns - r->start_ns : 0;
}

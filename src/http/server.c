/* HTTP/1.1 server connections; see server.h. One request at a time per
 * connection: the parser pauses at the end of each message, bytes that arrive
 * meanwhile wait in a bounded buffer, and the next request is parsed only when
 * the current response is finished (pipelining is safe and bounded). Every
 * state has a timer: header and body timeouts against slow clients, the idle
 * keep-alive timeout, and a send-progress watchdog that never fires on a
 * stream that is merely quiet. */
#include "http/server.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <unistd.h>

#define LINGER_MS 2000

static void conn_close(struct mg_http_conn *c);
static void process_pending(struct mg_http_conn *c);

const char *mg_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static void timer_set(struct mg_http_conn *c, uint64_t ms, uint64_t repeat, uv_timer_cb cb)
{
    mg_timer_start(&c->timer, cb, ms, repeat);
}

static void free_req(struct mg_http_req *req)
{
    if (req == NULL)
        return;
    mg_buf_fini(&req->body);
    free(req->target); /* path lives in the same block */
    free(req);
}

static void log_req(struct mg_http_conn *c, struct mg_http_req *req)
{
    if (c->srv->handler->on_log)
        c->srv->handler->on_log(req);
}

static struct mg_http_req *new_req(struct mg_http_conn *c)
{
    struct mg_http_req *req = mg_xcalloc(1, sizeof *req);
    req->conn = c;
    req->start_ns = mg_now_ns();
    mg_buf_init(&req->body, c->srv->limits.max_body_bytes);
    return req;
}

/* --- timers ------------------------------------------------------------------------------ */

static void on_linger_timeout(uv_timer_t *t)
{
    struct mg_http_conn *c = t->data;
    conn_close(c);
}

static void on_read_timeout(uv_timer_t *t)
{
    struct mg_http_conn *c = t->data;
    if (c->state == CONN_HEAD && !c->got_bytes) {
        conn_close(c); /* idle keep-alive or a connection that never spoke */
        return;
    }
    /* A slow client: 408 then close (RFC 9110 §15.5.9). */
    if (c->req == NULL)
        c->req = new_req(c);
    c->state = CONN_HANDLING;
    c->req->close_after = true;
    c->req->error = "request timeout";
    mg_http_reply_jsonrpc_error(c->req, 408, NULL, -32600, "request timed out", NULL);
}

static void on_send_watchdog(uv_timer_t *t)
{
    struct mg_http_conn *c = t->data;
    if (c->s.queued > 0 && c->s.n_written == c->last_written) {
        /* The client stopped reading: nothing moved for a whole period. */
        conn_close(c);
        return;
    }
    c->last_written = c->s.n_written;
}

static void on_resume_timer(uv_timer_t *t)
{
    struct mg_http_conn *c = t->data;
    process_pending(c);
}

/* --- parser callbacks -------------------------------------------------------------------- */

static int on_head(void *ud, const struct mg_http_head *h)
{
    struct mg_http_conn *c = ud;
    struct mg_http_req *req = new_req(c);
    c->req = req;
    req->head = h;
    req->method = h->method;
    /* The target and its path in one block. */
    size_t tlen = strnlen(h->url, h->url_len);
    req->target = mg_xmalloc(2 * tlen + 2);
    memcpy(req->target, h->url, tlen);
    req->target[tlen] = '\0';
    size_t plen = strcspn(req->target, "?#");
    req->path = req->target + tlen + 1;
    memcpy(req->path, req->target, plen);
    req->path[plen] = '\0';
    req->head_only = h->method == HTTP_HEAD;
    req->http10 = h->http_major == 1 && h->http_minor == 0;
    req->close_after = !h->keep_alive || c->srv->draining;
    c->state = CONN_BODY;
    if (c->srv->limits.body_timeout_ms)
        timer_set(c, c->srv->limits.body_timeout_ms, 0, on_read_timeout);
    /* RFC 9110 §10.1.1: answer 100-continue only when we will read the body. */
    const struct mg_http_header *ex = mg_http_head_get(h, MG_HDR_EXPECT);
    if (ex && mg_str_ieq(ex->value, ex->value_len, "100-continue") && h->http_minor >= 1 &&
        (h->chunked || h->content_length > 0)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        mg_stream_write(&c->s, cont, sizeof cont - 1);
    }
    return 0;
}

static int on_body(void *ud, const char *data, size_t len)
{
    struct mg_http_conn *c = ud;
    if (mg_buf_append(&c->req->body, data, len) < 0) {
        c->parser.error_status = 413;
        c->parser.error_reason = "request body too large";
        return MG_ELIMIT;
    }
    return 0;
}

static const struct mg_http_parser_cbs parser_cbs = {
    .on_head = on_head,
    .on_body = on_body,
    .on_complete = NULL,
};

/* --- input ------------------------------------------------------------------------------- */

static void protocol_error(struct mg_http_conn *c, int status, const char *reason)
{
    if (c->req == NULL)
        c->req = new_req(c);
    c->state = CONN_HANDLING;
    mg_timer_stop(&c->timer);
    c->req->close_after = true;
    c->req->error = reason;
    const char *msg = reason ? reason : mg_http_status_text(status);
    /* An HTTP-level refusal: the message never got as far as JSON. */
    mg_http_reply_jsonrpc_error(c->req, status, NULL, -32600, msg, NULL);
}

static void dispatch(struct mg_http_conn *c)
{
    struct mg_http_req *req = c->req;
    c->state = CONN_HANDLING;
    c->n_requests++;
    mg_timer_stop(&c->timer);
    if (c->srv->limits.send_timeout_ms) {
        c->last_written = c->s.n_written;
        timer_set(c, c->srv->limits.send_timeout_ms, c->srv->limits.send_timeout_ms,
                  on_send_watchdog);
    }
    c->srv->handler->on_request(req);
}

/* Parses as much of data as belongs to the current request; keeps the rest. */
static void feed(struct mg_http_conn *c, const char *data, size_t len)
{
    while (len > 0 && (c->state == CONN_HEAD || c->state == CONN_BODY)) {
        if (!c->got_bytes) {
            c->got_bytes = true;
            if (c->srv->limits.header_timeout_ms)
                timer_set(c, c->srv->limits.header_timeout_ms, 0, on_read_timeout);
        }
        size_t used = 0;
        int rc = mg_http_parser_execute(&c->parser, data, len, &used);
        if (rc < 0) {
            protocol_error(c, c->parser.error_status ? c->parser.error_status : 400,
                           c->parser.error_reason);
            return;
        }
        data += used;
        len -= used;
        if (c->parser.paused) {
            if (len > 0 && mg_buf_append(&c->pending, data, len) < 0)
                mg_stream_read_stop(&c->s);
            dispatch(c);
            return;
        }
    }
}

static void process_pending(struct mg_http_conn *c)
{
    if (c->state != CONN_HEAD || c->pending.len == 0)
        return;
    /* Move the bytes out first: feed() may park new leftovers in pending. */
    size_t n = 0;
    char *data = mg_buf_steal(&c->pending, &n);
    mg_buf_init(&c->pending, c->srv->limits.max_header_bytes + 65536);
    feed(c, data, n);
    free(data);
    mg_stream_read_start(&c->s);
}

static void on_stream_read(struct mg_stream *s, const char *data, size_t len)
{
    struct mg_http_conn *c = s->data;
    switch (c->state) {
    case CONN_HEAD:
    case CONN_BODY: feed(c, data, len); break;
    case CONN_HANDLING:
        /* A pipelined request: keep it (bounded) for later. */
        if (mg_buf_append(&c->pending, data, len) < 0)
            mg_stream_read_stop(&c->s);
        break;
    case CONN_LINGER:
    case CONN_CLOSED: break;
    }
}

static void on_stream_end(struct mg_stream *s, int status)
{
    MG_UNUSED(status);
    struct mg_http_conn *c = s->data;
    conn_close(c);
}

static void on_stream_drain(struct mg_stream *s)
{
    struct mg_http_conn *c = s->data;
    if (c->state == CONN_HANDLING && c->req && c->srv->handler->on_drain)
        c->srv->handler->on_drain(c->req);
}

/* --- closing ----------------------------------------------------------------------------- */

static void maybe_free(struct mg_http_conn *c)
{
    if (!c->timer_closed || !c->stream_closed)
        return;
    struct mg_http_server *srv = c->srv;
    mg_list_remove(&c->link);
    srv->n_conns--;
    if (srv->conn_gauge)
        atomic_fetch_sub(srv->conn_gauge, 1);
    if (srv->load_gauge)
        atomic_fetch_sub(srv->load_gauge, 1);
    mg_http_parser_fini(&c->parser);
    mg_buf_fini(&c->pending);
    free(c);
    if (srv->draining && srv->n_conns == 0 && srv->on_empty)
        srv->on_empty(srv);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mg_http_conn *c = h->data;
    c->timer_closed = true;
    maybe_free(c);
}

static void on_stream_closed(struct mg_stream *s)
{
    struct mg_http_conn *c = s->data;
    c->stream_closed = true;
    maybe_free(c);
}

static void conn_close(struct mg_http_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    enum mg_http_conn_state prev = c->state;
    c->state = CONN_CLOSED;
    struct mg_http_req *req = c->req;
    c->req = NULL;
    if (req) {
        if (!req->finished) {
            req->aborted = true;
            if (req->status == 0)
                req->status = 499; /* nginx's "client closed request" */
            if (prev == CONN_HANDLING && c->srv->handler->on_abort)
                c->srv->handler->on_abort(req);
            log_req(c, req);
        }
        free_req(req);
    }
    mg_timer_close(&c->timer, on_timer_closed);
    mg_stream_close(&c->s);
}

static const struct mg_stream_cbs stream_cbs = {
    .on_read = on_stream_read,
    .on_end = on_stream_end,
    .on_drain = on_stream_drain,
    .on_close = on_stream_closed,
};

/* --- public ------------------------------------------------------------------------------ */

void mg_http_server_init(struct mg_http_server *srv, uv_loop_t *loop,
                         const struct mg_http_handler *handler, void *data, SSL_CTX *ssl_ctx,
                         const struct mg_http_limits *limits)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->handler = handler;
    srv->data = data;
    srv->ssl_ctx = ssl_ctx;
    srv->is_tls = ssl_ctx != NULL;
    srv->limits = *limits;
    mg_list_init(&srv->conns);
}

/* A new connection's state, counted; its stream is initialised, not yet
 * bound to a socket. NULL if the handle cannot be created. */
static struct mg_http_conn *conn_new(struct mg_http_server *srv, bool pipe, bool counted)
{
    struct mg_http_conn *c = mg_xcalloc(1, sizeof *c);
    int rc = pipe ? mg_stream_init_pipe(&c->s, srv->loop, &stream_cbs, c)
                  : mg_stream_init_tcp(&c->s, srv->loop, &stream_cbs, c);
    if (rc < 0) {
        free(c);
        return NULL;
    }
    c->srv = srv;
    mg_list_push(&srv->conns, &c->link);
    srv->n_conns++;
    if (srv->conn_gauge && !counted)
        atomic_fetch_add(srv->conn_gauge, 1);
    if (srv->load_gauge)
        atomic_fetch_add(srv->load_gauge, 1);
    mg_timer_init(srv->loop, &c->timer, c);
    mg_http_parser_init(&c->parser, MG_HTTP_REQUEST, srv->limits.max_header_bytes,
                        srv->limits.max_body_bytes, &parser_cbs, c);
    mg_buf_init(&c->pending, srv->limits.max_header_bytes + 65536);
    c->state = CONN_HEAD;
    return c;
}

static void set_peer(struct mg_http_conn *c, const struct sockaddr_storage *ss)
{
    c->peer_addr = *ss;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, c->peer, sizeof c->peer);
        c->peer_port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, c->peer, sizeof c->peer);
        c->peer_port = ntohs(a->sin6_port);
    }
}

/* The connection is bound to its socket: enforce the cap, then serve. */
static int conn_start(struct mg_http_conn *c)
{
    struct mg_http_server *srv = c->srv;
    /* The cap is for the whole gateway: with a shared gauge, count across workers. */
    size_t open = srv->conn_gauge ? (size_t)atomic_load(srv->conn_gauge) : srv->n_conns;
    if (srv->limits.max_connections && open > srv->limits.max_connections) {
        /* Over the cap: answer 503 and close rather than queue without bound. */
        c->req = new_req(c);
        c->state = CONN_HANDLING;
        c->req->close_after = true;
        c->req->error = "too many connections";
        if (mg_stream_start_server(&c->s, srv->ssl_ctx) < 0) {
            conn_close(c);
            return MG_ETLS;
        }
        mg_http_reply_jsonrpc_error(c->req, 503, NULL, -32000, "too many connections", NULL);
        return 0;
    }
    if (mg_stream_start_server(&c->s, srv->ssl_ctx) < 0) {
        conn_close(c);
        return MG_ETLS;
    }
    timer_set(c, srv->limits.header_timeout_ms ? srv->limits.header_timeout_ms : 10000, 0,
              on_read_timeout);
    return 0;
}

int mg_http_server_accept(struct mg_http_server *srv, uv_stream_t *listener)
{
    bool pipe = listener->type == UV_NAMED_PIPE;
    struct mg_http_conn *c = conn_new(srv, pipe, false);
    if (!c)
        return MG_EIO;
    if (uv_accept(listener, &c->s.h.stream) < 0) {
        conn_close(c);
        return MG_EIO;
    }
    if (!pipe) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (uv_tcp_getpeername(&c->s.h.tcp, (struct sockaddr *)&ss, &len) == 0)
            set_peer(c, &ss);
    } else {
        snprintf(c->peer, sizeof c->peer, "unix");
    }
    return conn_start(c);
}

int mg_http_server_adopt(struct mg_http_server *srv, int fd, const struct sockaddr_storage *peer,
                         bool counted)
{
    struct mg_http_conn *c = conn_new(srv, false, counted);
    if (!c) {
        close(fd);
        if (srv->conn_gauge && counted)
            atomic_fetch_sub(srv->conn_gauge, 1);
        return MG_EIO;
    }
    if (uv_tcp_open(&c->s.h.tcp, fd) < 0) {
        close(fd); /* not the handle's: uv_tcp_open failed */
        conn_close(c);
        return MG_EIO;
    }
    set_peer(c, peer);
    return conn_start(c);
}

void mg_http_server_drain(struct mg_http_server *srv)
{
    srv->draining = true;
    struct mg_list *pos, *tmp;
    mg_list_each(pos, tmp, &srv->conns)
    {
        struct mg_http_conn *c = mg_list_entry(pos, struct mg_http_conn, link);
        if (c->state == CONN_HEAD && !c->got_bytes)
            conn_close(c);
        else if (c->req)
            c->req->close_after = true;
    }
    if (srv->n_conns == 0 && srv->on_empty)
        srv->on_empty(srv);
}

void mg_http_server_close_all(struct mg_http_server *srv)
{
    struct mg_list *pos, *tmp;
    mg_list_each(pos, tmp, &srv->conns)
    {
        struct mg_http_conn *c = mg_list_entry(pos, struct mg_http_conn, link);
        conn_close(c);
    }
}

/* A fixed buffer on the stack for the short lines around a head: every
 * piece written into it is a constant or a number, and it is sized for the
 * longest combination (asserted). */
struct mg_wbuf {
    char *p;
    size_t len, cap;
};

static void wput_n(struct mg_wbuf *w, const char *s, size_t n)
{
    MG_ASSERT(n <= w->cap - w->len);
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void wput(struct mg_wbuf *w, const char *s)
{
    wput_n(w, s, strlen(s));
}

static void wput_u64(struct mg_wbuf *w, uint64_t v)
{
    char tmp[MG_U64_DEC];
    const char *d = mg_u64_dec(tmp, v);
    wput_n(w, d, (size_t)(tmp + sizeof tmp - d));
}

int mg_http_begin(struct mg_http_req *req, int status, const char *headers, size_t headers_len,
                  int64_t content_length)
{
    struct mg_http_conn *c = req->conn;
    MG_ASSERT(!req->started);
    req->started = true;
    req->status = status;
    if (c->srv->draining)
        req->close_after = true;
    bool http10 = req->http10;
    bool no_body = req->head_only || status == 204 || status == 304 || status < 200;
    /* The status line and the framing headers around the caller's headers,
     * written to the connection without assembling the head first. */
    char pre[64], post[128];
    struct mg_wbuf a = {pre, 0, sizeof pre}, z = {post, 0, sizeof post};
    wput(&a, "HTTP/1.1 ");
    wput_u64(&a, (uint64_t)status);
    wput(&a, " ");
    wput(&a, mg_http_status_text(status));
    wput(&a, "\r\n");
    if (content_length >= 0) {
        if (status != 204 && status != 304) {
            wput(&z, "Content-Length: ");
            wput_u64(&z, (uint64_t)content_length);
            wput(&z, "\r\n");
        }
    } else if (!no_body) {
        if (http10) {
            req->close_after = true; /* HTTP/1.0: the body ends at close */
        } else {
            req->chunked = true;
            wput(&z, "Transfer-Encoding: chunked\r\n");
        }
    }
    if (req->close_after)
        wput(&z, "Connection: close\r\n");
    else if (http10)
        wput(&z, "Connection: keep-alive\r\n");
    wput(&z, "\r\n");
    uv_buf_t parts[3] = {uv_buf_init(pre, (unsigned)a.len),
                         uv_buf_init((char *)headers, (unsigned)headers_len),
                         uv_buf_init(post, (unsigned)z.len)};
    int rc = mg_stream_writev(&c->s, parts, 3);
    req->bytes_out += a.len + headers_len + z.len;
    return rc;
}

int mg_http_write(struct mg_http_req *req, const void *data, size_t len)
{
    struct mg_http_conn *c = req->conn;
    if (len == 0 || req->head_only)
        return 0;
    req->bytes_out += len;
    if (!req->chunked)
        return mg_stream_write(&c->s, data, len);
    char size[24];
    int n = snprintf(size, sizeof size, "%zx\r\n", len);
    uv_buf_t bufs[3] = {uv_buf_init(size, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                        uv_buf_init("\r\n", 2)};
    return mg_stream_writev(&c->s, bufs, 3);
}

void mg_http_finish(struct mg_http_req *req)
{
    struct mg_http_conn *c = req->conn;
    MG_ASSERT(req->started && !req->finished && c->req == req);
    if (req->chunked && !req->head_only)
        mg_stream_write(&c->s, "0\r\n\r\n", 5);
    req->finished = true;
    log_req(c, req);
    bool close_after = req->close_after || c->parser.error_status != 0 || c->s.err;
    c->req = NULL;
    free_req(req);
    mg_timer_stop(&c->timer);
    if (close_after) {
        c->state = CONN_LINGER;
        mg_stream_shutdown(&c->s);
        mg_stream_read_start(&c->s); /* read (and drop) until the client's FIN */
        timer_set(c, LINGER_MS, 0, on_linger_timeout);
        return;
    }
    mg_http_parser_release_head(&c->parser);
    mg_http_parser_resume(&c->parser);
    c->state = CONN_HEAD;
    c->got_bytes = false;
    if (c->pending.len > 0) {
        timer_set(c, 0, 0, on_resume_timer);
    } else {
        mg_stream_read_start(&c->s);
        timer_set(c, c->srv->limits.idle_timeout_ms ? c->srv->limits.idle_timeout_ms : 60000, 0,
                  on_read_timeout);
    }
}

void mg_http_abort(struct mg_http_req *req)
{
    struct mg_http_conn *c = req->conn;
    if (req->status == 0)
        req->status = 502;
    conn_close(c);
}

void mg_http_reply(struct mg_http_req *req, int status, const char *content_type,
                   const char *extra_headers, const void *body, size_t len)
{
    struct mg_buf h;
    mg_buf_init(&h, 16384);
    if (content_type)
        mg_buf_appendf(&h, "Content-Type: %s\r\n", content_type);
    if (extra_headers)
        mg_buf_appends(&h, extra_headers);
    mg_http_begin(req, status, h.data ? h.data : "", h.len, (int64_t)len);
    mg_buf_fini(&h);
    mg_http_write(req, body, len);
    mg_http_finish(req);
}

void mg_http_reply_jsonrpc_error(struct mg_http_req *req, int status, const char *id_json, int code,
                                 const char *message, const char *extra_headers)
{
    struct mg_buf b;
    mg_buf_init(&b, 8192);
    mg_buf_appendf(&b, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":",
                   id_json ? id_json : "null", code);
    mg_buf_append_json_str(&b, message, strlen(message));
    mg_buf_appends(&b, "}}");
    mg_http_reply(req, status, "application/json", extra_headers, b.data, b.len);
    mg_buf_fini(&b);
}

bool mg_http_congested(const struct mg_http_req *req)
{
    return mg_stream_is_congested(&req->conn->s);
}

void mg_http_release_head(struct mg_http_req *req)
{
    req->head = NULL;
    mg_http_parser_release_head(&req->conn->parser);
}

/* The Streamable HTTP transport (see http.h). One loop, keep-alive, and
 * pipelining handled by pausing llhttp after each request: a request is
 * answered before the next one is parsed, and while a slow_count reply is
 * outstanding the connection stops reading, so replies always leave in
 * request order (RFC 9112 §9.3.2) and the unparsed bytes stay bounded.
 * Responses are written with uv_try_write first, so the common small reply
 * costs no allocation and no extra loop turn. */
#include "http.h"

#include <errno.h>
#include <llhttp.h>
#include <sys/random.h>

#include "exchange.h"

#define READ_CHUNK       (64 << 10)
#define URL_CAP          2048
#define FIELD_CAP        256
#define HEADER_BYTES_CAP (16 << 10)
#define HEADER_VALUE_CAP (8 << 10)
#define BODY_CAP         MG_MSQ_MAX_MESSAGE
#define OUT_CAP          (64u << 20)
#define KEEP_CAP         (256 << 10) /* buffers above this are freed after use */
#define WQUEUE_CAP       (4 << 20)   /* unsent reply bytes before we stop reading */
#define CONN_CAP         4096
#define IDLE_MS          60000
#define LINGER_MS        2000
#define SWEEP_MS         1000
#define SESSION_CAP      10000
#define SESSION_BUCKETS  4096
#define SESSION_ID_LEN   32 /* 128 random bits in hex */

enum hdr { H_ACCEPT, H_CONTENT_TYPE, H_SESSION, H_PROTOCOL, H_ORIGIN, H_HOST, H_EXPECT, H_COUNT };

static const char *const hdr_names[H_COUNT] = {
    "accept", "content-type", "mcp-session-id", "mcp-protocol-version", "origin", "host", "expect",
};

struct session {
    char id[SESSION_ID_LEN + 1];
    struct mg_msq_session mcp;
    struct session *hnext;         /* hash chain */
    struct session *older, *newer; /* least recently used first */
};

struct conn;

struct mg_msq_http {
    uv_loop_t *loop;
    struct mg_msq_server *srv;
    uv_tcp_t listener;
    uv_timer_t sweep;
    struct conn *conns;
    size_t n_conns;
    struct session *buckets[SESSION_BUCKETS];
    struct session *lru, *mru;
    size_t n_sessions;
    bool stopped;
    /* One read buffer for all connections: read callbacks run one at a
     * time and consume (or copy) what they are given. */
    char read_buf[READ_CHUNK];
};

struct conn {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    struct mg_msq_http *http;
    struct conn *prev, *next;
    llhttp_t parser;
    uint64_t last_ms;
    /* the request being parsed */
    struct mg_buf url, field, value, body;
    struct mg_buf hdr[H_COUNT];
    int cur_hdr; /* enum hdr of the value being read, or -1 */
    size_t header_bytes;
    int reject; /* HTTP status chosen by a callback that stopped the parse */
    bool keep_alive;
    /* output */
    struct mg_buf out;     /* bytes for the next flush */
    struct mg_buf scratch; /* one serialised JSON value */
    unsigned n_writes;     /* uv_write requests in flight */
    /* state */
    struct mg_buf pending; /* input after a request whose reply is outstanding */
    struct mg_msq_exchange *ex;
    bool sse; /* ex answers as an event stream */
    bool reading;
    bool close_after; /* no more requests: finish writing, then close */
    bool lingering;   /* write side shut, draining input until EOF */
    bool peer_eof;
    bool broken; /* a write failed; the sweep closes it */
    bool closing;
};

struct wreq {
    uv_write_t req;
    size_t len;
    char data[];
};

static void conn_flush(struct conn *c);
static void conn_feed(struct conn *c, const char *data, size_t len);

/* ---- sessions ---------------------------------------------------------- */

static size_t session_bucket(const char *id, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)id[i]) * 16777619u;
    return h % SESSION_BUCKETS;
}

static void lru_unlink(struct mg_msq_http *h, struct session *s)
{
    if (s->older)
        s->older->newer = s->newer;
    else
        h->lru = s->newer;
    if (s->newer)
        s->newer->older = s->older;
    else
        h->mru = s->older;
    s->older = s->newer = NULL;
}

static void lru_push(struct mg_msq_http *h, struct session *s)
{
    s->older = h->mru;
    s->newer = NULL;
    if (h->mru)
        h->mru->newer = s;
    else
        h->lru = s;
    h->mru = s;
}

static void session_remove(struct mg_msq_http *h, struct session *s)
{
    struct session **pp = &h->buckets[session_bucket(s->id, SESSION_ID_LEN)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    lru_unlink(h, s);
    h->n_sessions--;
    free(s);
}

static struct session *session_find(struct mg_msq_http *h, const char *id, size_t len)
{
    if (len != SESSION_ID_LEN)
        return NULL;
    for (struct session *s = h->buckets[session_bucket(id, len)]; s; s = s->hnext) {
        if (memcmp(s->id, id, len) == 0) {
            lru_unlink(h, s);
            lru_push(h, s);
            return s;
        }
    }
    return NULL;
}

/* Gives s a fresh random id and files it. The table is bounded: the least
 * recently used session makes room, and its client gets a 404 and
 * re-initialises (MCP "Session Management"). */
static int session_add(struct mg_msq_http *h, struct session *s)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[SESSION_ID_LEN / 2];
    ssize_t n;
    do
        n = getrandom(raw, sizeof raw, 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof raw)
        return MG_EIO;
    for (size_t i = 0; i < sizeof raw; i++) {
        s->id[2 * i] = hex[raw[i] >> 4];
        s->id[2 * i + 1] = hex[raw[i] & 15];
    }
    s->id[SESSION_ID_LEN] = '\0';
    if (h->n_sessions >= SESSION_CAP)
        session_remove(h, h->lru);
    size_t b = session_bucket(s->id, SESSION_ID_LEN);
    s->hnext = h->buckets[b];
    h->buckets[b] = s;
    lru_push(h, s);
    h->n_sessions++;
    return MG_OK;
}

/* ---- responses --------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    default: return "Unknown";
    }
}

/* Queues one complete response. extra holds whole "Name: value\r\n" lines. */
static void reply(struct conn *c, int status, const char *extra, const char *ctype,
                  const char *body, size_t len)
{
    int rc = mg_buf_appendf(&c->out, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (rc == 0 && ctype != NULL)
        rc = mg_buf_appendf(&c->out, "Content-Type: %s\r\n", ctype);
    if (rc == 0)
        rc = mg_buf_appendf(&c->out, "Content-Length: %zu\r\n%s%s\r\n", len, extra ? extra : "",
                            c->keep_alive ? "" : "Connection: close\r\n");
    if (rc == 0 && len > 0)
        rc = mg_buf_append(&c->out, body, len);
    if (rc < 0)
        c->broken = true; /* only a reply over OUT_CAP gets here */
    if (!c->keep_alive)
        c->close_after = true;
}

static void reply_json(struct conn *c, int status, const char *extra, const json_t *v)
{
    mg_buf_reset(&c->scratch);
    if (mg_msq_dump(v, &c->scratch) < 0) {
        c->keep_alive = false;
        reply(c, 500, NULL, NULL, NULL, 0);
    } else {
        reply(c, status, extra, "application/json", c->scratch.data, c->scratch.len);
    }
    if (c->scratch.cap > KEEP_CAP)
        mg_buf_fini(&c->scratch);
}

/* HTTP-level refusals carry a JSON-RPC error body too, for clients that
 * only look at the body. */
static void reply_error(struct conn *c, int status, int code, const char *message,
                        const char *extra)
{
    json_t *err = mg_msq_error(NULL, code, message);
    reply_json(c, status, extra, err);
    json_decref(err);
}

/* One SSE event carrying v, as one HTTP/1.1 chunk (RFC 9112 §7.1). */
static void sse_event(struct conn *c, const json_t *v)
{
    mg_buf_reset(&c->scratch);
    int rc = mg_buf_appends(&c->scratch, "event: message\ndata: ");
    if (rc == 0)
        rc = mg_msq_dump(v, &c->scratch);
    if (rc == 0)
        rc = mg_buf_appends(&c->scratch, "\n\n");
    if (rc == 0)
        rc = mg_buf_appendf(&c->out, "%zx\r\n", c->scratch.len);
    if (rc == 0)
        rc = mg_buf_append(&c->out, c->scratch.data, c->scratch.len);
    if (rc == 0)
        rc = mg_buf_appends(&c->out, "\r\n");
    if (rc < 0)
        c->broken = true;
}

/* ---- connection lifecycle ---------------------------------------------- */

static void conn_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    mg_buf_fini(&c->url);
    mg_buf_fini(&c->field);
    mg_buf_fini(&c->value);
    mg_buf_fini(&c->body);
    for (int i = 0; i < H_COUNT; i++)
        mg_buf_fini(&c->hdr[i]);
    mg_buf_fini(&c->out);
    mg_buf_fini(&c->scratch);
    mg_buf_fini(&c->pending);
    free(c);
}

/* Starts closing; c is freed in conn_closed after this loop iteration, so
 * callers up the stack may still read it (they check c->closing). */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    mg_msq_exchange_free(c->ex);
    c->ex = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->http->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->http->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->handle->data;
    if (status < 0 && !c->closing)
        c->broken = true;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    MG_UNUSED(suggested);
    *buf = uv_buf_init(c->http->read_buf, READ_CHUNK);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void start_reading(struct conn *c)
{
    if (c->reading || c->closing || c->peer_eof)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
    else
        c->broken = true;
}

static void stop_reading(struct conn *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* Backpressure: a client that pipelines requests but does not read the
 * replies is not read from either, so queued replies stay bounded. */
static bool is_throttled(struct conn *c)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WQUEUE_CAP;
}

/* After a "Connection: close" reply or a refused request: shut the write
 * side once the reply is out and read until the client closes, because
 * closing with unread input makes the kernel send RST, which can destroy
 * the reply before the client read it (RFC 9112 §9.6). */
static void conn_linger(struct conn *c)
{
    c->lingering = true;
    c->last_ms = uv_now(c->http->loop);
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        c->broken = true;
    start_reading(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->handle->data;
    free(w);
    c->n_writes--;
    if (c->closing)
        return;
    c->last_ms = uv_now(c->http->loop);
    if (status < 0)
        c->broken = true;
    else if (c->peer_eof && c->n_writes == 0 && c->ex == NULL)
        conn_close(c);
    else if (!c->reading && c->ex == NULL && !c->close_after && !c->lingering && !is_throttled(c))
        start_reading(c);
}

static void conn_flush(struct conn *c)
{
    if (c->closing)
        return;
    if (c->broken) {
        mg_buf_reset(&c->out);
        return;
    }
    if (c->out.len > 0) {
        uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == UV_EAGAIN || n == UV_ENOSYS)
            n = 0;
        if (n < 0) {
            c->broken = true;
        } else if ((size_t)n < c->out.len) {
            size_t rest = c->out.len - (size_t)n;
            struct wreq *w = mg_xmalloc(sizeof *w + rest);
            w->len = rest;
            memcpy(w->data, c->out.data + n, rest);
            uv_buf_t wb = uv_buf_init(w->data, (unsigned)rest);
            if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &wb, 1, on_write) != 0) {
                free(w);
                c->broken = true;
            } else {
                c->n_writes++;
            }
        }
        mg_buf_reset(&c->out);
        if (c->out.cap > KEEP_CAP)
            mg_buf_fini(&c->out);
    }
    if (c->close_after && !c->lingering && c->ex == NULL && !c->broken)
        conn_linger(c);
}

/* The exchange finished or the connection may read again: parse what
 * arrived meanwhile, then resume reading. */
static void conn_resume(struct conn *c)
{
    if (c->closing || c->ex != NULL)
        return;
    if (c->pending.len > 0) {
        size_t n;
        char *data = mg_buf_steal(&c->pending, &n);
        conn_feed(c, data, n);
        free(data);
    }
    if (c->ex == NULL && !c->close_after && !c->lingering && !is_throttled(c))
        start_reading(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (c->closing)
        return;
    if (nread == UV_EOF) {
        /* The client may half-close after its last request: finish writing
         * what is queued, then close. */
        c->peer_eof = true;
        stop_reading(c);
        if (c->n_writes == 0 && c->ex == NULL)
            conn_close(c);
        else
            c->close_after = true;
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->last_ms = uv_now(c->http->loop);
    if (c->lingering || c->close_after)
        return; /* draining */
    conn_feed(c, buf->base, (size_t)nread);
    if (c->ex != NULL || is_throttled(c))
        stop_reading(c);
}

/* ---- llhttp callbacks -------------------------------------------------- */

static int on_message_begin(llhttp_t *p)
{
    struct conn *c = p->data;
    mg_buf_reset(&c->url);
    mg_buf_reset(&c->field);
    mg_buf_reset(&c->value);
    mg_buf_reset(&c->body);
    for (int i = 0; i < H_COUNT; i++)
        mg_buf_reset(&c->hdr[i]);
    c->cur_hdr = -1;
    c->header_bytes = 0;
    c->reject = 0;
    c->keep_alive = false;
    return 0;
}

static int count_header_bytes(struct conn *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > HEADER_BYTES_CAP) {
        c->reject = 431;
        return HPE_USER;
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (mg_buf_append(&c->url, at, len) < 0) {
        c->reject = 414;
        return HPE_USER;
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (count_header_bytes(c, len) != 0)
        return HPE_USER;
    if (mg_buf_append(&c->field, at, len) < 0) {
        c->reject = 431;
        return HPE_USER;
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->cur_hdr = -1;
    for (int i = 0; i < H_COUNT; i++)
        if (mg_str_ieq(c->field.data, c->field.len, hdr_names[i]))
            c->cur_hdr = i;
    mg_buf_reset(&c->field);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (count_header_bytes(c, len) != 0)
        return HPE_USER;
    if (c->cur_hdr >= 0 && mg_buf_append(&c->value, at, len) < 0) {
        c->reject = 431;
        return HPE_USER;
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    if (c->cur_hdr >= 0) {
        /* Repeated fields combine with commas (RFC 9110 §5.3). */
        struct mg_buf *h = &c->hdr[c->cur_hdr];
        if ((h->len > 0 && mg_buf_append(h, ", ", 2) < 0) ||
            mg_buf_append(h, c->value.data, c->value.len) < 0) {
            c->reject = 431;
            return HPE_USER;
        }
    }
    mg_buf_reset(&c->value);
    c->cur_hdr = -1;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->keep_alive = llhttp_should_keep_alive(p) != 0;
    if (p->method == HTTP_CONNECT) {
        c->reject = 405;
        return -1;
    }
    /* We never switch protocols (an h2c Upgrade is optional for the client,
     * RFC 9110 §7.8), so the request is read as plain HTTP/1.1. */
    p->upgrade = 0;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > BODY_CAP) {
        c->reject = 413; /* refuse before reading a byte of it */
        return -1;
    }
    const struct mg_buf *expect = &c->hdr[H_EXPECT];
    if (expect->len > 0) {
        if (!mg_str_ieq(expect->data, expect->len, "100-continue")) {
            c->reject = 417;
            return -1;
        }
        /* curl waits a second for this before sending bodies > 1 KiB. */
        if (p->http_major == 1 && p->http_minor >= 1 &&
            mg_buf_appends(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") == 0)
            conn_flush(c);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (mg_buf_append(&c->body, at, len) < 0) {
        c->reject = 413; /* chunked bodies are only measured here */
        return HPE_USER;
    }
    return 0;
}

/* Pausing here hands each complete request to conn_feed, which answers it
 * before the next pipelined one is parsed. */
static int on_message_complete(llhttp_t *p)
{
    MG_UNUSED(p);
    return HPE_PAUSED;
}

static llhttp_settings_t parser_settings;

/* ---- the /mcp endpoint ------------------------------------------------- */

static size_t host_len(const char *p)
{
    if (*p == '[') {
        const char *q = strchr(p, ']');
        return q ? (size_t)(q - p) + 1 : strlen(p);
    }
    return strcspn(p, ":/");
}

static bool is_loopback(const char *p, size_t n)
{
    return mg_str_ieq(p, n, "localhost") || mg_str_eq(p, n, "127.0.0.1") ||
           mg_str_eq(p, n, "[::1]");
}

/* MCP "Transports / Security Warning": servers MUST validate Origin, or a
 * web page could reach a local server through DNS rebinding. Allowed: no
 * Origin (not a browser), a loopback origin, or the origin of the Host the
 * request was sent to. */
static bool origin_ok(const struct conn *c)
{
    const struct mg_buf *o = &c->hdr[H_ORIGIN], *host = &c->hdr[H_HOST];
    if (o->len == 0)
        return true;
    const char *p = strstr(o->data, "://");
    if (p == NULL)
        return false;
    p += 3;
    size_t n = host_len(p);
    if (is_loopback(p, n))
        return true;
    return host->len > 0 && host_len(host->data) == n && strncasecmp(host->data, p, n) == 0;
}

static const char *header(const struct conn *c, enum hdr h)
{
    return c->hdr[h].len > 0 ? c->hdr[h].data : NULL;
}

static const struct mg_msq_sink_ops http_sink_ops;

static void handle_post(struct conn *c)
{
    struct mg_msq_http *h = c->http;
    struct mg_msq_out out;
    struct session *sess = NULL, *fresh = NULL;
    json_t *msg = NULL;
    char extra[64] = "";
    mg_msq_out_init(&out);

    /* Loose Accept check: the spec wants both application/json and
     * text/event-stream, but plain JSON clients (curl, benchmarks) are
     * served as long as they take JSON at all. */
    const char *accept = header(c, H_ACCEPT);
    bool sse_ok = false;
    if (accept != NULL) {
        if (!strcasestr(accept, "application/json") && !strcasestr(accept, "*/*") &&
            !strcasestr(accept, "application/*")) {
            reply_error(c, 406, MG_MSQ_INVALID_REQUEST,
                        "Not Acceptable: the Accept header must allow application/json", NULL);
            return;
        }
        sse_ok = strcasestr(accept, "text/event-stream") != NULL;
    }
    const char *ctype = header(c, H_CONTENT_TYPE);
    if (ctype != NULL && !strcasestr(ctype, "application/json")) {
        reply_error(c, 415, MG_MSQ_INVALID_REQUEST,
                    "Unsupported Media Type: the body must be application/json", NULL);
        return;
    }
    /* MCP 2025-06-18 "Protocol Version Header": an unsupported version is
     * a 400. */
    const char *version = header(c, H_PROTOCOL);
    if (version != NULL && !mg_msq_is_supported_version(version)) {
        reply_error(c, 400, MG_MSQ_INVALID_REQUEST, "Unsupported MCP-Protocol-Version", NULL);
        return;
    }

    msg = mg_msq_parse(h->srv, c->body.data ? c->body.data : "", c->body.len, &out);
    if (msg == NULL) {
        reply_json(c, 400, NULL, out.reply);
        goto out;
    }
    if (mg_msq_is_initialize(msg)) {
        /* MCP "Session Management": the session exists once initialize
         * succeeded, and its id travels in the response header. */
        fresh = mg_xcalloc(1, sizeof *fresh);
        mg_msq_handle(h->srv, &fresh->mcp, msg, &out);
        if (out.initialized) {
            if (session_add(h, fresh) < 0) {
                reply_error(c, 500, MG_MSQ_INVALID_REQUEST, "no randomness for a session id", NULL);
                goto out;
            }
            sess = fresh;
            fresh = NULL;
            snprintf(extra, sizeof extra, "Mcp-Session-Id: %s\r\n", sess->id);
        }
    } else {
        const char *sid = header(c, H_SESSION);
        if (sid == NULL) {
            reply_error(c, 400, MG_MSQ_INVALID_REQUEST,
                        "Bad Request: Mcp-Session-Id header is required", NULL);
            goto out;
        }
        sess = session_find(h, sid, c->hdr[H_SESSION].len);
        if (sess == NULL) {
            reply_error(c, 404, -32001, "Session not found", NULL);
            goto out;
        }
        mg_msq_handle(h->srv, &sess->mcp, msg, &out);
    }

    if (out.n_jobs > 0) {
        /* A single slow_count with a progress token streams its progress
         * when the client accepts SSE; anything else waits for plain JSON. */
        c->sse = sse_ok && !json_is_array(msg) && out.jobs[0].token != NULL;
        c->ex = mg_msq_exchange_start(h->loop, &out, &http_sink_ops, c);
        if (c->sse &&
            mg_buf_appendf(&c->out,
                           "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n%s%s\r\n",
                           extra, c->keep_alive ? "" : "Connection: close\r\n") < 0)
            c->broken = true;
    } else if (out.reply == NULL) {
        reply(c, 202, extra, NULL, NULL, 0); /* only notifications or responses */
    } else {
        reply_json(c, out.kind == MG_MSQ_REPLY ? 200 : 400, extra, out.reply);
    }
out:
    free(fresh);
    json_decref(msg);
    mg_msq_out_fini(&out);
}

static void handle_delete(struct conn *c)
{
    const char *sid = header(c, H_SESSION);
    if (sid == NULL) {
        reply_error(c, 400, MG_MSQ_INVALID_REQUEST,
                    "Bad Request: Mcp-Session-Id header is required", NULL);
        return;
    }
    struct session *s = session_find(c->http, sid, c->hdr[H_SESSION].len);
    if (s == NULL) {
        reply_error(c, 404, -32001, "Session not found", NULL);
        return;
    }
    session_remove(c->http, s);
    reply(c, 200, NULL, NULL, NULL, 0);
}

static void handle_request(struct conn *c)
{
    const char *url = c->url.data ? c->url.data : "";
    size_t path_len = strcspn(url, "?");
    if (!mg_str_eq(url, path_len, "/mcp")) {
        reply_error(c, 404, MG_MSQ_INVALID_REQUEST, "Not Found: the MCP endpoint is /mcp", NULL);
        return;
    }
    if (!origin_ok(c)) {
        reply_error(c, 403, MG_MSQ_INVALID_REQUEST, "Forbidden: Origin not allowed", NULL);
        return;
    }
    switch (llhttp_get_method(&c->parser)) {
    case HTTP_POST: handle_post(c); break;
    case HTTP_DELETE: handle_delete(c); break;
    default:
        /* No server-initiated stream on GET (MCP "Listening for Messages
         * from the Server" allows 405). */
        reply_error(c, 405, MG_MSQ_INVALID_REQUEST, "Method Not Allowed",
                    "Allow: POST, DELETE\r\n");
        break;
    }
}

static void conn_feed(struct conn *c, const char *data, size_t len)
{
    while (len > 0 && c->ex == NULL && !c->closing && !c->close_after && !c->broken) {
        llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
        if (err == HPE_OK)
            break;
        if (err == HPE_PAUSED) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            len -= (size_t)(pos - data);
            data = pos;
            llhttp_resume(&c->parser);
            handle_request(c);
            if (c->body.cap > KEEP_CAP)
                mg_buf_fini(&c->body);
            if (c->out.len > KEEP_CAP) /* large replies go out one by one */
                conn_flush(c);
            continue;
        }
        /* A malformed or refused request: the stream cannot be trusted
         * past it, so answer and close. */
        int status = c->reject ? c->reject : 400;
        c->keep_alive = false;
        if (status == 413)
            reply_error(c, 413, MG_MSQ_INVALID_REQUEST, "Content Too Large: the limit is 1 MiB",
                        NULL);
        else if (status == 405)
            reply_error(c, 405, MG_MSQ_INVALID_REQUEST, "Method Not Allowed",
                        "Allow: POST, DELETE\r\n");
        else
            reply_error(c, status, MG_MSQ_INVALID_REQUEST, reason(status), NULL);
        break;
    }
    if (c->ex != NULL && len > 0 && mg_buf_append(&c->pending, data, len) < 0)
        c->broken = true;
    conn_flush(c);
}

/* ---- exchange sink ------------------------------------------------------ */

static void http_progress(struct mg_msq_exchange *ex, const json_t *note)
{
    struct conn *c = ex->sink;
    if (!c->sse) /* a JSON reply has nowhere to put notifications */
        return;
    sse_event(c, note);
    conn_flush(c);
}

static void http_done(struct mg_msq_exchange *ex, json_t *reply_msg)
{
    struct conn *c = ex->sink;
    c->ex = NULL;
    if (c->sse) {
        if (reply_msg != NULL)
            sse_event(c, reply_msg);
        if (mg_buf_appends(&c->out, "0\r\n\r\n") < 0)
            c->broken = true;
        if (!c->keep_alive)
            c->close_after = true;
    } else if (reply_msg != NULL) {
        reply_json(c, 200, NULL, reply_msg);
    } else {
        reply(c, 202, NULL, NULL, NULL, 0);
    }
    json_decref(reply_msg);
    c->sse = false;
    conn_flush(c);
    if (c->peer_eof && c->n_writes == 0 && !c->closing)
        conn_close(c);
    else
        conn_resume(c);
}

static const struct mg_msq_sink_ops http_sink_ops = {http_progress, http_done};

/* ---- listener ---------------------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
    struct mg_msq_http *h = t->data;
    uint64_t now = uv_now(h->loop);
    struct conn *next;
    for (struct conn *c = h->conns; c != NULL; c = next) {
        next = c->next;
        uint64_t idle = now - c->last_ms;
        if (c->broken || (c->lingering && idle > LINGER_MS) || (c->ex == NULL && idle > IDLE_MS))
            conn_close(c);
    }
}

static void conn_init_bufs(struct conn *c)
{
    mg_buf_init(&c->url, URL_CAP);
    mg_buf_init(&c->field, FIELD_CAP);
    mg_buf_init(&c->value, HEADER_VALUE_CAP);
    mg_buf_init(&c->body, BODY_CAP);
    for (int i = 0; i < H_COUNT; i++)
        mg_buf_init(&c->hdr[i], HEADER_VALUE_CAP);
    mg_buf_init(&c->out, OUT_CAP);
    mg_buf_init(&c->scratch, OUT_CAP);
    mg_buf_init(&c->pending, READ_CHUNK);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mg_msq_http *h = server->data;
    if (status < 0) {
        fprintf(stderr, "mcp-sqlite: accept: %s\n", uv_strerror(status));
        return;
    }
    struct conn *c = mg_xcalloc(1, sizeof *c);
    conn_init_bufs(c);
    c->http = h;
    MG_ASSERT(uv_tcp_init(h->loop, &c->tcp) == 0);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || h->n_conns >= CONN_CAP || h->stopped) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->cur_hdr = -1;
    c->last_ms = uv_now(h->loop);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->n_conns++;
    start_reading(c);
    if (c->broken)
        conn_close(c);
}

static int resolve(uv_loop_t *loop, const char *host, int port, struct sockaddr_storage *ss)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    uv_getaddrinfo_t req;
    char port_s[8];
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    snprintf(port_s, sizeof port_s, "%d", port);
    /* Synchronous (no callback): this runs once, before serving. */
    int rc = uv_getaddrinfo(loop, &req, NULL, host, port_s, &hints);
    if (rc != 0)
        return rc;
    memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    return 0;
}

int mg_msq_http_start(uv_loop_t *loop, struct mg_msq_server *srv, const char *hostport,
                      struct mg_msq_http **out)
{
    struct sockaddr_storage ss;
    char host[256];
    uint64_t port;
    int rc;
    const char *colon = strrchr(hostport, ':');
    *out = NULL;
    if (colon == NULL || colon == hostport ||
        mg_parse_u64(colon + 1, strlen(colon + 1), &port) < 0 || port > 65535) {
        fprintf(stderr, "mcp-sqlite: --http wants HOST:PORT, got \"%s\"\n", hostport);
        return MG_EINVAL;
    }
    size_t hl = (size_t)(colon - hostport);
    if (hl >= 2 && hostport[0] == '[' && hostport[hl - 1] == ']') { /* [::1]:8080 */
        hostport++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        fprintf(stderr, "mcp-sqlite: host name too long\n");
        return MG_EINVAL;
    }
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    memset(&ss, 0, sizeof ss);
    if ((rc = resolve(loop, host, (int)port, &ss)) != 0) {
        fprintf(stderr, "mcp-sqlite: cannot resolve %s: %s\n", host, uv_strerror(rc));
        return MG_EINVAL;
    }

    llhttp_settings_init(&parser_settings);
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_field_complete = on_header_field_complete;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_header_value_complete = on_header_value_complete;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;

    struct mg_msq_http *h = mg_xcalloc(1, sizeof *h);
    h->loop = loop;
    h->srv = srv;
    MG_ASSERT(uv_tcp_init(loop, &h->listener) == 0);
    h->listener.data = h;
    MG_ASSERT(uv_timer_init(loop, &h->sweep) == 0);
    h->sweep.data = h;
    if ((rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&h->listener, 1024, on_connection)) != 0) {
        fprintf(stderr, "mcp-sqlite: cannot listen on %s: %s\n", hostport, uv_strerror(rc));
        h->stopped = true;
        uv_close((uv_handle_t *)&h->listener, NULL);
        uv_close((uv_handle_t *)&h->sweep, NULL);
        *out = h; /* freed by mg_msq_http_free after the loop closes the handles */
        return MG_EIO;
    }
    MG_ASSERT(uv_timer_start(&h->sweep, on_sweep, SWEEP_MS, SWEEP_MS) == 0);
    uv_unref((uv_handle_t *)&h->sweep);

    struct sockaddr_storage bound;
    int len = sizeof bound;
    char name[INET6_ADDRSTRLEN] = "?";
    int bound_port = 0;
    if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &len) == 0) {
        if (bound.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&bound, name, sizeof name);
            bound_port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&bound, name, sizeof name);
            bound_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        }
    }
    fprintf(stderr, "mcp-sqlite: listening on http://%s%s%s:%d/mcp\n",
            bound.ss_family == AF_INET6 ? "[" : "", name, bound.ss_family == AF_INET6 ? "]" : "",
            bound_port);
    *out = h;
    return MG_OK;
}

void mg_msq_http_stop(struct mg_msq_http *h)
{
    if (h == NULL || h->stopped)
        return;
    h->stopped = true;
    uv_close((uv_handle_t *)&h->listener, NULL);
    uv_close((uv_handle_t *)&h->sweep, NULL);
    while (h->conns != NULL)
        conn_close(h->conns);
}

void mg_msq_http_free(struct mg_msq_http *h)
{
    if (h == NULL)
        return;
    while (h->lru != NULL)
        session_remove(h, h->lru);
    free(h);
}

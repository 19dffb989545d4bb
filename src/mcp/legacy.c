/* The legacy HTTP+SSE channel (MCP 2024-11-05 transport): one GET opens the
 * server's event stream, whose first "endpoint" event names the URL to POST
 * messages to; every server message then arrives as a "message" event. The
 * endpoint must stay on the configured upstream's origin: a server cannot
 * point the gateway at another host. */
#include "core/buf.h"
#include "core/log.h"
#include "http/sse.h"
#include "mcp/channel.h"

#define PENDING_MAX 256

struct legacy_ch;

struct legacy_post {
    struct mg_list link;
    struct legacy_ch *l;
    struct mg_client_req *req;
    json_t *id; /* the id of the request it carries, NULL for others */
    int status;
};

struct legacy_ch {
    struct mg_channel ch;
    struct mg_channel_env env;
    const struct mg_conf_route *route; /* valid for the session's lifetime */
    char *route_name;
    char *host_header;
    SSL_CTX *ssl_ctx;
    struct mg_client_req *stream;
    struct mg_sse_parser sse;
    char *endpoint; /* path and query to POST to */
    char **pending; /* messages waiting for the endpoint */
    size_t *pending_len;
    size_t n_pending;
    struct mg_list posts;
    bool ended, closing, free_pending;
    int depth; /* > 0 while calling out to the owner, who may close us */
};

static void free_channel(struct legacy_ch *l)
{
    for (size_t i = 0; i < l->n_pending; i++)
        free(l->pending[i]);
    free(l->pending);
    free(l->pending_len);
    free(l->endpoint);
    free(l->host_header);
    free(l->route_name);
    mg_sse_parser_fini(&l->sse);
    free(l);
}

/* Calls out to the owner; the owner may close the channel meanwhile, in
 * which case the memory is released once the outermost call returns. */
static void enter(struct legacy_ch *l)
{
    l->depth++;
}

static bool leave(struct legacy_ch *l)
{
    if (--l->depth == 0 && l->free_pending) {
        free_channel(l);
        return false;
    }
    return !l->closing;
}

static void end(struct legacy_ch *l, const char *why)
{
    if (l->ended || l->closing)
        return;
    l->ended = true;
    if (l->ch.on_end)
        l->ch.on_end(&l->ch, why);
}

static void deliver(struct legacy_ch *l, json_t *msg)
{
    l->ch.on_message(&l->ch, msg);
}

static void target_of(struct legacy_ch *l, struct mg_client_target *t)
{
    memset(t, 0, sizeof *t);
    t->host = l->route->to.host;
    t->port = l->route->to.port;
    t->ssl_ctx = l->ssl_ctx;
    t->sni = l->route->tls_server_name ? l->route->tls_server_name : l->route->to.host;
    t->verify = !l->route->tls_skip_verify;
}

/* --- posting messages ------------------------------------------------------------------ */

static int post_head(void *ud, const struct mg_http_head *h)
{
    struct legacy_post *p = ud;
    p->status = h->status;
    return 0;
}

static void post_body(void *ud, const char *d, size_t n)
{
    MG_UNUSED(ud);
    MG_UNUSED(d);
    MG_UNUSED(n);
}

static void post_done(void *ud, int status)
{
    struct legacy_post *p = ud;
    struct legacy_ch *l = p->l;
    mg_list_remove(&p->link);
    bool failed = status < 0 || p->status < 200 || p->status >= 300;
    if (failed && p->id && !l->ended && !l->closing) {
        /* The request will never be answered on the stream: answer it here. */
        char msg[128];
        snprintf(msg, sizeof msg, "legacy upstream refused the message (HTTP %d)", p->status);
        json_t *err = json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", p->id, "error",
                                "code", -32000, "message", msg);
        json_decref(p->id);
        free(p);
        if (err) {
            enter(l);
            deliver(l, err);
            leave(l);
        }
        return;
    }
    json_decref(p->id);
    free(p);
}

static const struct mg_client_cbs post_cbs = {
    .on_head = post_head,
    .on_body = post_body,
    .on_done = post_done,
};

static int post_message(struct legacy_ch *l, const char *msg, size_t len)
{
    struct mg_buf head;
    mg_buf_init(&head, 65536);
    mg_buf_appendf(&head,
                   "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   "Accept: application/json, text/event-stream\r\nContent-Length: %zu\r\n\r\n",
                   l->endpoint, l->host_header, len);
    struct legacy_post *p = mg_xcalloc(1, sizeof *p);
    p->l = l;
    json_t *m = json_loadb(msg, len, 0, NULL);
    if (m && json_object_get(m, "method") && json_object_get(m, "id"))
        p->id = json_incref(json_object_get(m, "id"));
    json_decref(m);
    struct mg_client_target t;
    target_of(l, &t);
    struct mg_client_opts o = {.connect_timeout_ms = l->env.connect_timeout_ms,
                               .first_byte_timeout_ms = l->env.first_byte_timeout_ms};
    mg_list_push(&l->posts, &p->link);
    int rc = mg_client_request(l->env.pool, &t, head.data, head.len, msg, len, &o, &post_cbs, p,
                               &p->req);
    mg_buf_fini(&head);
    if (rc < 0) {
        mg_list_remove(&p->link);
        json_decref(p->id);
        free(p);
    }
    return rc;
}

/* --- the event stream ------------------------------------------------------------------ */

/* Resolves the endpoint against the upstream URL; refuses other origins. */
static char *resolve_endpoint(struct legacy_ch *l, const char *uri, size_t len)
{
    struct mg_buf b;
    mg_buf_init(&b, 8192);
    if (len >= 7 && (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0)) {
        char *copy = mg_xstrndup(uri, len);
        struct mg_url u;
        char *res = NULL;
        if (mg_url_parse(copy, &u) == 0) {
            bool same = strcmp(u.host, l->route->to.host) == 0 && u.port == l->route->to.port;
            if (same) {
                const char *p = strstr(copy, "://");
                p = p ? strchr(p + 3, '/') : NULL;
                res = mg_xstrdup(p ? p : "/");
            }
            mg_url_fini(&u);
        }
        free(copy);
        mg_buf_fini(&b);
        return res;
    }
    if (len > 0 && uri[0] == '/') {
        mg_buf_append(&b, uri, len);
    } else {
        const char *base = l->route->to.path;
        const char *slash = strrchr(base, '/');
        mg_buf_append(&b, base, slash ? (size_t)(slash - base) + 1 : 0);
        if (b.len == 0)
            mg_buf_appends(&b, "/");
        mg_buf_append(&b, uri, len);
    }
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.data[i];
        if (c <= 0x20 || c >= 0x7f) {
            mg_buf_fini(&b);
            return NULL;
        }
    }
    return mg_buf_steal(&b, NULL);
}

static int on_event(void *ud, const struct mg_sse_event *ev)
{
    struct legacy_ch *l = ud;
    if (strcmp(ev->event, "endpoint") == 0) {
        char *ep = resolve_endpoint(l, ev->data, ev->data_len);
        if (ep == NULL) {
            end(l, "legacy upstream announced an endpoint on another origin");
            return MG_EDENIED;
        }
        if (l->closing)
            return MG_ECLOSED;
        free(l->endpoint);
        l->endpoint = ep;
        for (size_t i = 0; i < l->n_pending; i++) {
            post_message(l, l->pending[i], l->pending_len[i]);
            free(l->pending[i]);
        }
        l->n_pending = 0;
        return 0;
    }
    if (strcmp(ev->event, "message") != 0)
        return 0;
    json_t *msg = json_loadb(ev->data, ev->data_len, JSON_REJECT_DUPLICATES, NULL);
    if (msg == NULL || !json_is_object(msg)) {
        mg_log_warn("route %s: legacy upstream sent an event that is not a JSON-RPC message",
                    l->route_name);
        json_decref(msg);
        return 0;
    }
    deliver(l, msg);
    return (l->ended || l->closing) ? MG_ECLOSED : 0;
}

static int stream_head(void *ud, const struct mg_http_head *h)
{
    struct legacy_ch *l = ud;
    const struct mg_http_header *ct = mg_http_head_find(h, "content-type");
    if (h->status != 200 || ct == NULL || ct->value_len < 17 ||
        !mg_str_ieq(ct->value, 17, "text/event-stream")) {
        char why[128];
        snprintf(why, sizeof why, "legacy upstream answered the event stream with HTTP %d",
                 h->status);
        enter(l);
        end(l, why);
        leave(l);
        return -1;
    }
    return 0;
}

static void stream_body(void *ud, const char *d, size_t n)
{
    struct legacy_ch *l = ud;
    if (l->ended || l->closing)
        return;
    enter(l);
    int rc = mg_sse_parser_feed(&l->sse, d, n);
    if (rc == MG_ELIMIT)
        end(l, "legacy upstream sent an event over the size limit");
    leave(l);
}

static void stream_done(void *ud, int status)
{
    struct legacy_ch *l = ud;
    l->stream = NULL;
    enter(l);
    end(l, status == MG_ETIMEDOUT ? "legacy upstream timed out"
           : status == 0          ? "legacy upstream closed the event stream"
                                  : "legacy upstream unavailable");
    leave(l);
}

static const struct mg_client_cbs stream_cbs = {
    .on_head = stream_head,
    .on_body = stream_body,
    .on_done = stream_done,
};

/* --- ops ------------------------------------------------------------------------------- */

static int ch_send(struct mg_channel *ch, const char *msg, size_t len)
{
    struct legacy_ch *l = (struct legacy_ch *)ch;
    if (l->ended || l->closing)
        return MG_ECLOSED;
    if (l->endpoint)
        return post_message(l, msg, len);
    if (l->n_pending >= PENDING_MAX)
        return MG_ELIMIT;
    l->pending = mg_xrealloc(l->pending, (l->n_pending + 1) * sizeof *l->pending);
    l->pending_len = mg_xrealloc(l->pending_len, (l->n_pending + 1) * sizeof *l->pending_len);
    l->pending[l->n_pending] = mg_xstrndup(msg, len);
    l->pending_len[l->n_pending] = len;
    l->n_pending++;
    return 0;
}

static void ch_pause(struct mg_channel *ch)
{
    struct legacy_ch *l = (struct legacy_ch *)ch;
    if (l->stream)
        mg_client_pause(l->stream);
}

static void ch_resume(struct mg_channel *ch)
{
    struct legacy_ch *l = (struct legacy_ch *)ch;
    if (l->stream)
        mg_client_resume(l->stream);
}

static void ch_close(struct mg_channel *ch)
{
    struct legacy_ch *l = (struct legacy_ch *)ch;
    if (l->closing)
        return;
    l->closing = true;
    if (l->stream) {
        mg_client_cancel(l->stream);
        l->stream = NULL;
    }
    while (!mg_list_empty(&l->posts)) {
        struct legacy_post *p = mg_list_entry(l->posts.next, struct legacy_post, link);
        mg_list_remove(&p->link);
        mg_client_cancel(p->req);
        json_decref(p->id);
        free(p);
    }
    if (l->depth > 0)
        l->free_pending = true;
    else
        free_channel(l);
}

static const struct mg_channel_ops legacy_ops = {
    .send = ch_send,
    .pause = ch_pause,
    .resume = ch_resume,
    .close = ch_close,
};

int mg_channel_sse_new(const struct mg_channel_env *env, const struct mg_conf_route *route,
                       SSL_CTX *ssl_ctx, const char *host_header, struct mg_channel **out)
{
    struct legacy_ch *l = mg_xcalloc(1, sizeof *l);
    l->ch.ops = &legacy_ops;
    l->env = *env;
    l->route = route;
    l->route_name = mg_xstrdup(route->name);
    l->host_header = mg_xstrdup(host_header);
    l->ssl_ctx = ssl_ctx;
    mg_list_init(&l->posts);
    mg_sse_parser_init(&l->sse, env->max_message, on_event, l);
    struct mg_buf head;
    mg_buf_init(&head, 65536);
    mg_buf_appendf(&head,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                   "Cache-Control: no-cache\r\n\r\n",
                   route->to.path[0] ? route->to.path : "/", host_header);
    struct mg_client_target t;
    target_of(l, &t);
    struct mg_client_opts o = {.connect_timeout_ms = env->connect_timeout_ms,
                               .first_byte_timeout_ms = env->first_byte_timeout_ms};
    int rc = mg_client_request(env->pool, &t, head.data, head.len, NULL, 0, &o, &stream_cbs, l,
                               &l->stream);
    mg_buf_fini(&head);
    if (rc < 0) {
        free_channel(l);
        return rc;
    }
    *out = &l->ch;
    return 0;
}

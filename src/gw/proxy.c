/* The proxy handler: for each request, pick the route by Host and path,
 * validate Host and Origin (DNS-rebinding protection), inspect the JSON-RPC
 * body, rebuild the request for the upstream without hop-by-hop headers and
 * without the gateway's own credentials, and stream the answer back as it
 * arrives (SSE events are never held back). Upstream failures become
 * well-formed answers that carry the JSON-RPC id of the request. */
#include "core/log.h"
#include "gw/metrics.h"
#include "gw/req.h"
#include "audit/record.h"
#include "http/sse.h"
#include "mcp/jsonrpc.h"
#include "mcp/listfilter.h"
#include "mcp/listscan.h"
#include "gw/judge.h"
#include "gw/toolmap.h"

#include <inttypes.h>

#define GATEWAY_COOKIE_PREFIX "_mcpgate"

static struct mg_worker *worker_of(struct mg_http_req *req)
{
    return req->conn->srv->data;
}

/* --- list filtering ------------------------------------------------------------------ */

#define FILTER_MAX_BODY  (16 * 1024 * 1024) /* a list answer buffered to be filtered */
#define FILTER_MAX_EVENT (16 * 1024 * 1024)

/* The answer to a tools/list, prompts/list, resources/list or
 * resources/templates/list request, filtered per caller before it is sent:
 * a JSON body is buffered whole (bounded), an SSE stream is re-framed event
 * by event and only the event that answers the list request changes. */
struct filter {
    bool json, sse, failed;
    struct mg_buf body;
    struct mg_buf head; /* the response's header lines, while buffering */
    int status;
    struct mg_sse_parser parser;
    struct mg_gw_req *p;
};

static void filter_free(void *v)
{
    struct filter *f = v;
    if (f == NULL)
        return;
    mg_buf_fini(&f->body);
    mg_buf_fini(&f->head);
    if (f->sse)
        mg_sse_parser_fini(&f->parser);
    free(f);
}

/* One list answer's pass: the caller's judge (prepared at the first item)
 * and the tools to learn once the answer is known to be valid. */
struct list_pass {
    struct mg_gw_req *p;
    struct mg_judge_list *judge;
    struct mg_toolmap_batch learn;
    bool tools;
};

static bool keep_item(void *ctx, const struct mg_listscan_item *it)
{
    struct list_pass *lp = ctx;
    if (lp->judge == NULL)
        lp->judge = mg_gw__judge_list(lp->p, lp->p->filter_list);
    if (lp->tools && it->name)
        mg_toolmap_batch_add(&lp->learn, it->name, it->name_len, it->tool_class);
    return mg_judge_list_visible(lp->judge, it->name, (int)it->tool_class);
}

/* Filters one message (a JSON body, an SSE event's data) if it answers the
 * list request; anything else passes as it is. *send and *send_len say
 * what to send: the input, or out. Negative: refused, send nothing (fail
 * closed: not strict JSON, ambiguous, or over the bound). */
static int filter_message(struct mg_gw_req *p, const char *data, size_t len, struct mg_buf *out,
                          const char **send, size_t *send_len)
{
    struct list_pass lp = {.p = p};
    struct mg_listscan_result res;
    const char *key = mg_listfilter_key(p->filter_list);
    lp.tools = strcmp(key, "tools") == 0 && p->route->toolmap != NULL;
    mg_toolmap_batch_init(&lp.learn);
    int rc = mg_listscan_filter(data, len, key, p->rpc.msgs[0].id, keep_item, &lp, out, &res);
    if (rc == 0 && res.filtered && lp.tools)
        mg_toolmap_learn_batch(p->route->toolmap, &lp.learn);
    mg_toolmap_batch_fini(&lp.learn);
    mg_judge_list_free(lp.judge);
    if (rc < 0) {
        mg_log_warn("route %s: the upstream's %s answer is refused: %s", p->route->conf->name,
                    p->filter_list, res.error ? res.error : "?");
        return rc;
    }
    *send = res.changed ? out->data : data;
    *send_len = res.changed ? out->len : len;
    return 0;
}

static int filter_event(void *ud, const struct mg_sse_event *ev)
{
    struct filter *f = ud;
    struct mg_gw_req *p = f->p;
    struct mg_buf out, filtered;
    const char *data = ev->data ? ev->data : "";
    size_t len = ev->data_len;
    int rc = 0;
    mg_buf_init(&out, FILTER_MAX_EVENT + 4096);
    mg_buf_init(&filtered, FILTER_MAX_EVENT);
    /* An event without data (MCP's priming event for resumption) carries
     * no message; every other one must be a message we can read. */
    if (len > 0)
        rc = filter_message(p, data, len, &filtered, &data, &len);
    if (rc == 0 && ev->id)
        rc = mg_buf_appendf(&out, "id: %s\n", ev->id);
    if (rc == 0)
        rc = mg_sse_format(&out, ev->event, data, len);
    if (rc == 0)
        rc = mg_http_write(p->req, out.data, out.len);
    mg_buf_fini(&filtered);
    mg_buf_fini(&out);
    return rc < 0 ? rc : 0;
}

static void proxy_free(struct mg_gw_req *p)
{
    if (p == NULL)
        return;
    if (p->counted_stream)
        atomic_fetch_sub(&mg_metrics.open_streams, 1);
    mg_jsonrpc_info_fini(&p->rpc);
    free(p->session);
    mg_identity_unref(p->identity);
    for (size_t i = 0; i < p->n_audit_recs; i++)
        mg_audit_record_free(p->audit_recs[i]);
    free(p->audit_recs);
    free(p->answers);
    if (p->watch) {
        mg_sse_parser_fini(p->watch);
        free(p->watch);
    }
    filter_free(p->filter);
    if (p->oauth_free)
        p->oauth_free(p->oauth);
    mg_worker_release_gw(p->hold);
    free(p);
}

bool mg_gw__req_resume(struct mg_gw_req *p)
{
    MG_ASSERT(p->pending > 0);
    p->pending--;
    if (p->orphaned) {
        if (p->pending == 0)
            proxy_free(p);
        return false;
    }
    return true;
}

static bool in_list(const char *name, size_t len, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mg_str_ieq(name, len, list[i]))
            return true;
    return false;
}

/* Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway sets
 * itself or must not pass on, by the parser's header ids: every header of
 * every request and answer is checked against them. */
static const bool hop_by_hop[MG_HDR__COUNT] = {
    [MG_HDR_CONNECTION] = true,
    [MG_HDR_KEEP_ALIVE] = true,
    [MG_HDR_PROXY_CONNECTION] = true,
    [MG_HDR_TE] = true,
    [MG_HDR_TRAILER] = true,
    [MG_HDR_TRANSFER_ENCODING] = true,
    [MG_HDR_UPGRADE] = true,
    [MG_HDR_PROXY_AUTHENTICATE] = true,
    [MG_HDR_PROXY_AUTHORIZATION] = true,
    [MG_HDR_HTTP2_SETTINGS] = true,
};
static const bool request_drop[MG_HDR__COUNT] = {
    [MG_HDR_HOST] = true,
    [MG_HDR_CONTENT_LENGTH] = true,
    [MG_HDR_EXPECT] = true,
    [MG_HDR_AUTHORIZATION] = true,
    [MG_HDR_FORWARDED] = true,
    [MG_HDR_X_FORWARDED_FOR] = true,
    [MG_HDR_X_FORWARDED_PROTO] = true,
    [MG_HDR_X_FORWARDED_HOST] = true,
    [MG_HDR_X_FORWARDED_PORT] = true,
    [MG_HDR_X_REAL_IP] = true,
    [MG_HDR_COOKIE] = true, /* re-sent by append_cookies without ours */
    [MG_HDR_X_MCPGATE_ROUTE] = true,
    [MG_HDR_X_MCPGATE_HUB_KEY] = true,
};

/* Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1). */
static bool named_in_connection(const struct mg_http_head *h, const char *n, size_t len)
{
    char name[128];
    if (mg_http_head_num(h, MG_HDR_CONNECTION) == 0 || len >= sizeof name)
        return false;
    memcpy(name, n, len);
    name[len] = '\0';
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct mg_http_header *x = &h->headers[i];
        if (mg_http_header_id(h, x) == MG_HDR_CONNECTION &&
            mg_http_list_has(x->value, x->value_len, name))
            return true;
    }
    return false;
}

static bool skip_request_header(const struct mg_http_head *h, const struct mg_conf_route *r,
                                const struct mg_http_header *x)
{
    enum mg_hdr id = mg_http_header_id(h, x);
    if (hop_by_hop[id] || request_drop[id])
        return true;
    const char *n = x->name;
    size_t len = x->name_len;
    if (len >= 10 && mg_str_ieq(n, 10, "x-mcpgate-"))
        return true;
    if (in_list(n, len, r->remove_request_headers, r->n_remove_request_headers))
        return true;
    for (size_t i = 0; i < r->n_set_request_headers; i++)
        if (mg_str_ieq(n, len, r->set_request_headers[i].name))
            return true;
    return named_in_connection(h, n, len);
}

/* Forwards the caller's cookies except the gateway's own. */
static void append_cookies(const struct mg_http_head *h, struct mg_buf *out)
{
    bool any = false;
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct mg_http_header *x = &h->headers[i];
        if (mg_http_header_id(h, x) != MG_HDR_COOKIE)
            continue;
        size_t pos = 0;
        while (pos < x->value_len) {
            while (pos < x->value_len && (x->value[pos] == ' ' || x->value[pos] == ';'))
                pos++;
            size_t start = pos;
            while (pos < x->value_len && x->value[pos] != ';')
                pos++;
            size_t clen = pos - start;
            if (clen == 0)
                continue;
            size_t plen = strlen(GATEWAY_COOKIE_PREFIX);
            if (clen >= plen && memcmp(x->value + start, GATEWAY_COOKIE_PREFIX, plen) == 0)
                continue;
            mg_buf_appends(out, any ? "; " : "Cookie: ");
            mg_buf_append(out, x->value + start, clen);
            any = true;
        }
    }
    if (any)
        mg_buf_appends(out, "\r\n");
}

static const char *method_name(int m)
{
    return llhttp_method_name((llhttp_method_t)m);
}

static int build_upstream_head(struct mg_gw_req *p, struct mg_buf *out)
{
    struct mg_http_req *req = p->req;
    const struct mg_http_head *h = req->head;
    const struct mg_route_rt *rt = p->route;
    const struct mg_conf_route *r = rt->conf;
    int rc = 0;
    rc |= mg_buf_appends(out, method_name(req->method));
    rc |= mg_buf_append(out, " ", 1);
    mg_gw_upstream_target(rt, req->target, out);
    rc |= mg_buf_appends(out, " HTTP/1.1\r\nHost: ");
    const struct mg_http_header *host = mg_http_head_get(h, MG_HDR_HOST);
    if (r->preserve_host_header || rt->via_hub)
        rc |= mg_buf_append(out, host->value, host->value_len);
    else
        rc |= mg_buf_appends(out, rt->up_host_header);
    rc |= mg_buf_append(out, "\r\n", 2);
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct mg_http_header *x = &h->headers[i];
        if (skip_request_header(h, r, x))
            continue;
        rc |= mg_buf_append(out, x->name, x->name_len);
        rc |= mg_buf_append(out, ": ", 2);
        rc |= mg_buf_append(out, x->value, x->value_len);
        rc |= mg_buf_append(out, "\r\n", 2);
    }
    append_cookies(h, out);
    for (size_t i = 0; i < r->n_set_request_headers; i++)
        rc |= mg_buf_appendf(out, "%s: %s\r\n", r->set_request_headers[i].name,
                             r->set_request_headers[i].value);
    /* The caller's address as we saw it; anything the caller claimed is gone. */
    rc |= mg_buf_appends(out, "X-Forwarded-For: ");
    rc |= mg_buf_appends(out, req->conn->peer);
    rc |= mg_buf_appends(out, req->conn->srv->is_tls ? "\r\nX-Forwarded-Proto: https\r\n"
                                                     : "\r\nX-Forwarded-Proto: http\r\n");
    rc |= mg_buf_appends(out, "X-Forwarded-Host: ");
    rc |= mg_buf_append(out, host->value, host->value_len);
    rc |= mg_buf_append(out, "\r\n", 2);
    if (rt->via_hub)
        rc |= mg_buf_appendf(out, "X-Mcpgate-Route: %s\r\nX-Mcpgate-Hub-Key: %s\r\n", r->name,
                             p->gw->hub_key);
    if (req->body.len > 0 || req->method == HTTP_POST || req->method == HTTP_PUT ||
        req->method == HTTP_PATCH) {
        rc |= mg_buf_appends(out, "Content-Length: ");
        rc |= mg_buf_append_u64(out, req->body.len);
        rc |= mg_buf_append(out, "\r\n", 2);
    }
    rc |= mg_buf_append(out, "\r\n", 2);
    return rc ? MG_ELIMIT : 0;
}

/* --- answers -------------------------------------------------------------------------- */

void mg_gw__reply_error(struct mg_gw_req *p, int status, int code, const char *msg,
                        const char *extra_headers)
{
    p->error = msg;
    mg_http_reply_jsonrpc_error(p->req, status, p->rpc.id_json, code, msg, extra_headers);
}

static void reply_error(struct mg_gw_req *p, int status, int code, const char *msg)
{
    mg_gw__reply_error(p, status, code, msg, NULL);
}

static bool skip_response_header(const struct mg_http_head *h, const struct mg_http_header *x)
{
    enum mg_hdr id = mg_http_header_id(h, x);
    if (hop_by_hop[id] || id == MG_HDR_CONTENT_LENGTH)
        return true;
    if (id == MG_HDR_SET_COOKIE) {
        size_t plen = strlen(GATEWAY_COOKIE_PREFIX);
        if (x->value_len >= plen && memcmp(x->value, GATEWAY_COOKIE_PREFIX, plen) == 0)
            return true; /* an upstream may not set the gateway's cookies */
    }
    return named_in_connection(h, x->name, x->name_len);
}

/* --- server->client requests ------------------------------------------------------ */

#define WATCH_MAX_EVENT (1 << 20) /* bigger events are not read for requests */

/* Every SSE answer is read on the side (its bytes go on unchanged) for
 * requests the server sends the client (sampling, elicitation, roots):
 * each is noted with its session and id, so the client's response is judged
 * by the method it answers (decide.c). An event too big to read stops the
 * watching of that stream: responses to its later requests are refused as
 * unmatched. */
static int watch_event(void *ud, const struct mg_sse_event *ev)
{
    struct mg_gw_req *p = ud;
    /* A request has both; progress and log notifications have no id. */
    if (memmem(ev->data, ev->data_len, "\"method\"", 8) == NULL ||
        memmem(ev->data, ev->data_len, "\"id\"", 4) == NULL)
        return 0;
    struct mg_jsonrpc_info info;
    mg_jsonrpc_inspect(ev->data, ev->data_len, &info);
    for (size_t i = 0; i < info.n_messages; i++) {
        const struct mg_jsonrpc_msg *m = &info.msgs[i];
        if (m->kind != MG_JSONRPC_REQUEST)
            continue;
        char *id = json_dumps(m->id, JSON_ENCODE_ANY | JSON_COMPACT);
        if (id)
            mg_toolmap_note_request(p->route->toolmap, p->session ? p->session : "", id, m->method);
        free(id);
    }
    mg_jsonrpc_info_fini(&info);
    return 0;
}

/* A chunk of whole events none of which can be a request (a request has an
 * "id" member) is skipped without parsing: most of a stream is progress
 * and log notifications, and results. */
static bool watch_can_skip(const struct mg_sse_parser *w, const char *data, size_t len)
{
    if (len < 2 || data[len - 1] != '\n' || !mg_sse_parser_idle(w))
        return false;
    /* Whole events: the chunk ends with an empty line, i.e. its last line
     * end (LF or CRLF) follows another line end directly. */
    size_t e = len - 1;
    if (data[e - 1] == '\r')
        e--;
    bool whole = e > 0 && (data[e - 1] == '\n' || data[e - 1] == '\r');
    return whole && memmem(data, len, "\"id\"", 4) == NULL;
}

static void watch_feed(struct mg_gw_req *p, const char *data, size_t len)
{
    if (p->watch == NULL || watch_can_skip(p->watch, data, len))
        return;
    if (mg_sse_parser_feed(p->watch, data, len) < 0) {
        mg_log_debug("route %s: an SSE event over %d bytes; server requests after it on this "
                     "stream are not tracked",
                     p->route->conf->name, WATCH_MAX_EVENT);
        mg_sse_parser_fini(p->watch);
        free(p->watch);
        p->watch = NULL;
    }
}

static int up_on_head(void *ud, const struct mg_http_head *h)
{
    struct mg_gw_req *p = ud;
    struct mg_http_req *req = p->req;
    p->up_status = h->status;
    p->upstream_ns = mg_client_first_byte_ns(p->up);
    struct mg_buf hb;
    mg_buf_init(&hb, 1 << 20);
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct mg_http_header *x = &h->headers[i];
        if (skip_response_header(h, x))
            continue;
        mg_buf_append(&hb, x->name, x->name_len);
        mg_buf_append(&hb, ": ", 2);
        mg_buf_append(&hb, x->value, x->value_len);
        mg_buf_append(&hb, "\r\n", 2);
        enum mg_hdr id = mg_http_header_id(h, x);
        if (id == MG_HDR_CONTENT_TYPE && x->value_len >= 17 &&
            mg_str_ieq(x->value, 17, "text/event-stream"))
            p->sse = true;
        if (id == MG_HDR_MCP_SESSION_ID && p->session == NULL)
            p->session = mg_xstrndup(x->value, MG_MIN(x->value_len, 256));
    }
    int64_t len = -1;
    if (h->has_content_length && !h->chunked)
        len = (int64_t)h->content_length;
    if (p->sse && p->route->toolmap) {
        p->watch = mg_xcalloc(1, sizeof *p->watch);
        mg_sse_parser_init(p->watch, WATCH_MAX_EVENT, watch_event, p);
    }
    if (p->filter_list && h->status == 200) {
        struct filter *f = mg_xcalloc(1, sizeof *f);
        f->p = p;
        p->filter = f;
        if (p->sse) {
            f->sse = true;
            mg_sse_parser_init(&f->parser, FILTER_MAX_EVENT, filter_event, f);
            len = -1; /* events are re-framed */
        } else {
            /* Held until complete: the filtered answer has its own length. */
            f->json = true;
            f->status = h->status;
            mg_buf_init(&f->body, FILTER_MAX_BODY);
            mg_buf_init(&f->head, 1 << 20);
            mg_buf_append(&f->head, hb.data ? hb.data : "", hb.len);
            mg_buf_fini(&hb);
            return 0;
        }
    }
    if (p->sse) {
        /* A stream may stay open for hours: keep nothing of the request. */
        atomic_fetch_add(&mg_metrics.open_streams, 1);
        p->counted_stream = true;
    }
    int rc = mg_http_begin(req, h->status, hb.data ? hb.data : "", hb.len, len);
    mg_buf_fini(&hb);
    if (p->sse)
        mg_http_release_head(req);
    return rc < 0 ? -1 : 0;
}

static void up_on_body(void *ud, const char *data, size_t len)
{
    struct mg_gw_req *p = ud;
    watch_feed(p, data, len);
    struct filter *f = p->filter;
    if (f && f->json) {
        if (!f->failed && mg_buf_append(&f->body, data, len) < 0)
            f->failed = true;
        return;
    }
    if (f && f->sse) {
        if (!f->failed && mg_sse_parser_feed(&f->parser, data, len) < 0)
            f->failed = true;
    } else if (mg_http_write(p->req, data, len) < 0) {
        return;
    }
    /* Backpressure: a client that reads slowly slows the upstream down. */
    if (mg_http_congested(p->req))
        mg_client_pause(p->up);
}

static void up_on_done(void *ud, int status)
{
    struct mg_gw_req *p = ud;
    struct mg_http_req *req = p->req;
    p->up = NULL;
    struct filter *f = p->filter;
    if (status == 0 && f && f->json) {
        /* Fail closed: a list answer that cannot be filtered is not sent. */
        struct mg_buf out;
        const char *send = NULL;
        size_t n = 0;
        mg_buf_init(&out, FILTER_MAX_BODY);
        if (f->failed ||
            filter_message(p, f->body.data ? f->body.data : "", f->body.len, &out, &send, &n) < 0) {
            mg_buf_fini(&out);
            reply_error(p, 502, MG_RPC_UPSTREAM_UNAVAILABLE,
                        "the upstream's list answer could not be filtered");
            return;
        }
        if (mg_http_begin(req, f->status, f->head.data ? f->head.data : "", f->head.len,
                          (int64_t)n) == 0 &&
            mg_http_write(req, send, n) == 0)
            mg_http_finish(req);
        else
            mg_http_abort(req);
        mg_buf_fini(&out);
        return;
    }
    if (status == 0 && f && f->sse && f->failed) {
        p->error = "an event of the list answer could not be filtered";
        mg_http_abort(req);
        return;
    }
    if (status == 0) {
        mg_http_finish(req);
        return;
    }
    atomic_fetch_add(&mg_metrics.upstream_errors, 1);
    if (req->started) {
        /* Mid-response: cut the connection so the client sees a truncated
         * body rather than a clean end of a response that is incomplete. */
        p->error = "upstream closed mid-response";
        mg_http_abort(req);
        return;
    }
    if (status == MG_ETIMEDOUT)
        reply_error(p, 504, MG_RPC_UPSTREAM_TIMEOUT, "upstream timed out");
    else if (status == MG_EPROTO)
        reply_error(p, 502, MG_RPC_UPSTREAM_UNAVAILABLE, "upstream sent an invalid response");
    else if (status == MG_ETLS)
        reply_error(p, 502, MG_RPC_UPSTREAM_UNAVAILABLE, "upstream TLS handshake failed");
    else
        reply_error(p, 502, MG_RPC_UPSTREAM_UNAVAILABLE, "upstream unavailable");
}

static const struct mg_client_cbs up_cbs = {
    .on_head = up_on_head,
    .on_body = up_on_body,
    .on_done = up_on_done,
};

/* --- the handler ---------------------------------------------------------------------- */

static bool origin_allowed(const struct mg_route_rt *rt, const struct mg_http_header *o)
{
    if (mg_str_ieq(o->value, o->value_len, rt->origin))
        return true;
    const struct mg_conf_route *r = rt->conf;
    for (size_t i = 0; i < r->n_allowed_origins; i++)
        if (mg_str_ieq(o->value, o->value_len, r->allowed_origins[i]))
            return true;
    return false;
}

static void forward(struct mg_gw_req *p);

static void on_request(struct mg_http_req *req)
{
    struct mg_worker *w = worker_of(req);
    struct mg_gw_req *p = mg_xcalloc(1, sizeof *p);
    p->w = w;
    p->req = req;
    p->hold = mg_worker_hold_gw(w);
    p->gw = p->hold->gw;
    p->req_start_ns = req->start_ns;
    req->hdata = p;
    const struct mg_http_head *h = req->head;

    if (h->method == HTTP_POST && req->body.len > 0)
        mg_jsonrpc_inspect(req->body.data, req->body.len, &p->rpc);
    const struct mg_http_header *sid = mg_http_head_get(h, MG_HDR_MCP_SESSION_ID);
    if (sid)
        p->session = mg_xstrndup(sid->value, MG_MIN(sid->value_len, 256));

    /* RFC 9112 §3.2: exactly one Host in HTTP/1.1. */
    size_t n_host = mg_http_head_num(h, MG_HDR_HOST);
    const struct mg_http_header *host = mg_http_head_get(h, MG_HDR_HOST);
    if (n_host != 1 || host->value_len == 0) {
        req->close_after = true;
        reply_error(p, 400, -32600,
                    n_host == 0 ? "missing Host header" : "more than one Host header");
        return;
    }
    if (req->target[0] != '/' || strchr(req->target, '#') || !mg_gw_path_is_safe(req->path)) {
        reply_error(p, 400, -32600, "request target not allowed");
        return;
    }
    /* The authorization server's own endpoints and the protected-resource
     * metadata come before routes: no route can shadow them. */
    if (mg_oauth_dispatch(p) || mg_gw__serve_prm(p))
        return;
    int st = 0;
    p->route = mg_gw_select(p->gw, host->value, host->value_len, req->path, &st);
    if (p->route == NULL) {
        if (st == 403)
            reply_error(p, 403, MG_RPC_GATEWAY_REFUSED, "host not allowed");
        else if (st == 404)
            reply_error(p, 404, MG_RPC_GATEWAY_REFUSED, "no route for this path");
        else
            reply_error(p, 400, -32600, "malformed Host header");
        return;
    }
    const struct mg_http_header *origin = mg_http_head_get(h, MG_HDR_ORIGIN);
    if (mg_http_head_num(h, MG_HDR_ORIGIN) > 1 || (origin && !origin_allowed(p->route, origin))) {
        reply_error(p, 403, MG_RPC_GATEWAY_REFUSED, "origin not allowed");
        return;
    }
    switch (req->method) {
    case HTTP_GET:
    case HTTP_POST:
    case HTTP_DELETE:
    case HTTP_OPTIONS:
    case HTTP_HEAD: break;
    default: reply_error(p, 405, -32600, "method not allowed"); return;
    }
    /* Who is calling comes first: an anonymous caller learns nothing about
     * how its body would be judged. */
    mg_gw__authn(p, forward);
}

static void send_upstream(struct mg_gw_req *p);

/* After authentication: the body must be understood, then judged. */
static void forward(struct mg_gw_req *p)
{
    struct mg_http_req *req = p->req;
    if (req->method == HTTP_POST && p->rpc.shape == MG_JSONRPC_INVALID) {
        /* Fail closed: what cannot be understood is not forwarded. */
        reply_error(p, 400, -32700, p->rpc.error ? p->rpc.error : "invalid JSON-RPC body");
        return;
    }
    if (req->method == HTTP_POST && p->rpc.shape == MG_JSONRPC_SINGLE &&
        p->rpc.msgs[0].kind == MG_JSONRPC_REQUEST && mg_listfilter_key(p->rpc.msgs[0].method))
        p->filter_list = p->rpc.msgs[0].method;
    mg_gw__decide(p, send_upstream);
}

/* The last phase: the caller is known and allowed; send the request on. */
static void send_upstream(struct mg_gw_req *p)
{
    struct mg_http_req *req = p->req;
    struct mg_worker *w = p->w;
    struct mg_buf head;
    mg_buf_init(&head, p->gw->conf->max_header_bytes + 8192);
    mg_buf_reserve(&head, 900); /* most heads fit: one allocation, under 1 KiB */
    if (build_upstream_head(p, &head) < 0) {
        mg_buf_fini(&head);
        reply_error(p, 431, -32600, "request headers too large to forward");
        return;
    }
    const struct mg_conf_route *r = p->route->conf;
    const struct mg_conf *conf = p->gw->conf;
    struct mg_client_target t = {0};
    if (p->route->via_hub) {
        t.unix_path = p->gw->hub_path;
    } else {
        t.host = r->to.host;
        t.port = r->to.port;
        t.ssl_ctx = p->route->up_ctx;
        t.sni = r->tls_server_name ? r->tls_server_name : r->to.host;
        t.verify = !r->tls_skip_verify;
    }
    struct mg_client_opts opts = {
        .connect_timeout_ms = conf->connect_timeout_ms,
        .first_byte_timeout_ms = r->timeout_ms ? r->timeout_ms : conf->first_byte_timeout_ms,
        .head_request = req->method == HTTP_HEAD,
    };
    int rc = mg_client_request(&w->pool, &t, head.data, head.len, req->body.data, req->body.len,
                               &opts, &up_cbs, p, &p->up);
    mg_buf_fini(&head);
    /* The body now lives in the upstream request; drop our copy (and the
     * judged arguments that point into it: judging and recording are done). */
    mg_jsonrpc_info_drop_body(&p->rpc);
    mg_buf_fini(&req->body);
    if (rc < 0) {
        p->up = NULL;
        reply_error(p, 502, MG_RPC_UPSTREAM_UNAVAILABLE, "upstream unavailable");
    }
}

static void on_abort(struct mg_http_req *req)
{
    struct mg_gw_req *p = req->hdata;
    if (p && p->pending > 0) {
        p->orphaned = true;
        p->req = NULL;
    }
    if (p && p->up) {
        mg_client_cancel(p->up);
        p->up = NULL;
    }
}

static void on_drain(struct mg_http_req *req)
{
    struct mg_gw_req *p = req->hdata;
    if (p && p->up)
        mg_client_resume(p->up);
}

static void on_log(struct mg_http_req *req)
{
    struct mg_gw_req *p = req->hdata;
    if (p && p->n_audit_recs > 0)
        mg_gw__audit_finish(p);
    uint64_t dur_us = (mg_now_ns() - req->start_ns) / 1000;
    mg_metrics_observe(req->status, dur_us, req->bytes_out);
    if (!mg_log_access_enabled()) {
        if (p && p->pending == 0)
            proxy_free(p);
        req->hdata = NULL;
        return;
    }
    char t[40];
    mg_log_time(t, sizeof t);
    struct mg_buf b;
    mg_buf_init(&b, 8192);
    mg_buf_appendf(&b, "{\"time\":\"%s\",\"client\":\"%s\"", t, req->conn->peer);
    mg_buf_appends(&b, ",\"route\":");
    if (p && p->route)
        mg_buf_append_json_str(&b, p->route->conf->name, strlen(p->route->conf->name));
    else
        mg_buf_appends(&b, "null");
    mg_buf_appendf(&b,
                   ",\"method\":\"%s\",\"path\":", req->target ? method_name(req->method) : "-");
    const char *path = req->path ? req->path : "";
    mg_buf_append_json_str(&b, path, MG_MIN(strlen(path), 512));
    mg_buf_appendf(&b, ",\"status\":%d,\"bytes\":%" PRIu64 ",\"duration_ms\":%.3f", req->status,
                   req->bytes_out, (double)dur_us / 1000.0);
    if (p && p->upstream_ns)
        mg_buf_appendf(&b, ",\"upstream_ms\":%.3f", (double)p->upstream_ns / 1e6);
    if (p && p->up_status)
        mg_buf_appendf(&b, ",\"upstream_status\":%d", p->up_status);
    if (p && p->rpc.shape != MG_JSONRPC_INVALID) {
        mg_buf_appends(&b, ",\"rpc_method\":");
        if (p->rpc.shape == MG_JSONRPC_BATCH)
            mg_buf_appends(&b, "\"batch\"");
        else if (p->rpc.method[0])
            mg_buf_append_json_str(&b, p->rpc.method, strlen(p->rpc.method));
        else
            mg_buf_appends(&b, "\"response\"");
        if (p->rpc.id_json && strlen(p->rpc.id_json) < 128)
            mg_buf_appendf(&b, ",\"rpc_id\":%s", p->rpc.id_json);
    }
    if (p && p->session) {
        mg_buf_appends(&b, ",\"session\":");
        mg_buf_append_json_str(&b, p->session, strlen(p->session));
    }
    if (p && p->sse)
        mg_buf_appends(&b, ",\"sse\":true");
    const char *err = p && p->error ? p->error : req->error;
    if (err) {
        mg_buf_appends(&b, ",\"error\":");
        mg_buf_append_json_str(&b, err, strlen(err));
    }
    if (p && p->identity && p->identity->method != MG_AUTH_NONE) {
        const struct mg_identity *id = p->identity;
        mg_buf_appends(&b, ",\"user\":");
        mg_buf_append_json_str(&b, id->subject, strlen(id->subject));
        if (id->email[0]) {
            mg_buf_appends(&b, ",\"email\":");
            mg_buf_append_json_str(&b, id->email, strlen(id->email));
        }
        if (id->n_groups > 0) {
            mg_buf_appends(&b, ",\"groups\":[");
            for (size_t g = 0; g < id->n_groups && g < 64; g++) {
                if (g)
                    mg_buf_appends(&b, ",");
                mg_buf_append_json_str(&b, id->groups[g], strlen(id->groups[g]));
            }
            mg_buf_appends(&b, "]");
        }
        if (id->client_id[0]) {
            mg_buf_appends(&b, ",\"client_id\":");
            mg_buf_append_json_str(&b, id->client_id, MG_MIN(strlen(id->client_id), 256));
        }
        mg_buf_appendf(&b, ",\"auth\":\"%s\"", mg_auth_method_name(id->method));
        if (id->token_id[0])
            mg_buf_appendf(&b, ",\"token_id\":\"%s\"", id->token_id);
    }
    mg_buf_appends(&b, "}");
    mg_log_access(b.data, b.len);
    mg_buf_fini(&b);
    if (p && p->pending == 0)
        proxy_free(p);
    req->hdata = NULL;
}

const struct mg_http_handler mg_proxy_handler = {
    .on_request = on_request,
    .on_abort = on_abort,
    .on_drain = on_drain,
    .on_log = on_log,
};

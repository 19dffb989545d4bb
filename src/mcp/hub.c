/* The session hub; see hub.h. It is the Streamable HTTP server side (MCP
 * 2025-03-26 .. 2025-11-25 transports) for stdio and legacy SSE upstreams:
 *
 *  - POST: an initialize without a session creates one (a new child process,
 *    or a new legacy event stream); other POSTs need a known Mcp-Session-Id.
 *    Requests are answered on an SSE stream when the client accepts one (so
 *    progress notifications and server requests reach it while it waits),
 *    else as JSON once every response is in. Notifications and responses
 *    alone get 202.
 *  - GET opens the session's standalone stream; DELETE ends the session.
 *  - Messages from the server are routed by JSON-RPC id to the POST that
 *    waits for them; progress notifications by progress token; other server
 *    requests and notifications go to an open POST stream, else the GET
 *    stream, else wait in a bounded queue.
 *
 * In `shared` mode one child serves every session of the route: request ids
 * are rewritten to hub-unique numbers and restored on the way back, the
 * child is initialized once and later sessions get the cached result. */
#include "mcp/hub.h"
#include "core/log.h"
#include "gw/metrics.h"
#include "http/server.h"
#include "http/sse.h"
#include "mcp/channel.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_MAX         512
#define RPC_SERVER_GONE   -32000
#define RPC_SESSION_LIMIT -32003

struct session;

struct group { /* shared mode: one child for many sessions */
    struct mg_list link;
    struct mg_gw *gw;
    const struct mg_route_rt *rt;
    struct mg_channel *ch;
    struct mg_list sessions;
    json_t *init_result; /* cached initialize result */
    bool init_sent, initialized_sent, ended;
    bool ending;            /* group_end is ending its sessions: they must not free it */
    struct mg_list waiting; /* struct post: initialize waiting for init_result */
};

struct post {
    struct mg_list link;
    int kind; /* 1 = post, 2 = get stream */
    struct session *s;
    struct mg_http_req *req;
    json_t *ids;     /* awaited ids (original ids) */
    json_t *tokens;  /* progress tokens of its requests */
    json_t *answers; /* JSON mode: collected responses */
    json_t *init_id; /* shared mode: a waiting initialize's id */
    bool sse, batch;
};

struct queued {
    struct mg_list link;
    char *data;
    size_t len;
};

struct session {
    struct mg_list link;  /* in H.sessions */
    struct mg_list glink; /* in group->sessions */
    char id[33];
    struct mg_gw *gw;
    const struct mg_route_rt *rt;
    struct mg_channel *ch; /* per-session mode */
    struct group *group;   /* shared mode */
    struct mg_list posts;
    struct post *get;
    struct mg_list queue;
    size_t n_queue;
    uv_timer_t idle;
    bool ended;
};

struct idmap { /* shared mode: hub id -> (session, original id) */
    struct mg_list link;
    uint64_t gid;
    struct session *s;
    json_t *orig;
};

static struct {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_pipe_t listener;
    struct mg_http_server http;
    struct mg_client_pool pool;
    uv_async_t wake;
    uv_timer_t drain_timer;
    pthread_mutex_t mu;
    struct mg_gw *next_gw;
    bool want_drain, draining, started;
    struct mg_gw *gw;
    struct mg_list sessions;
    struct mg_list groups;
    struct mg_list idmaps;
    size_t n_sessions;
    uint64_t next_gid;
    char *path;
} H;

static void session_end(struct session *s, const char *why);

/* --- helpers ---------------------------------------------------------------------------- */

static struct mg_channel_env channel_env(const struct mg_gw *gw, const struct mg_route_rt *rt)
{
    const struct mg_conf *c = gw->conf;
    struct mg_channel_env e = {
        .loop = &H.loop,
        .pool = &H.pool,
        .max_message = c->max_body_bytes * 4 > (64u << 20) ? (64u << 20) : c->max_body_bytes * 4,
        .kill_grace_ms = c->stdio_kill_grace_ms,
        .connect_timeout_ms = c->connect_timeout_ms,
        .first_byte_timeout_ms =
            rt->conf->timeout_ms ? rt->conf->timeout_ms : c->first_byte_timeout_ms,
        .children = &mg_metrics.stdio_children,
    };
    if (e.max_message < (1u << 20))
        e.max_message = 1u << 20;
    return e;
}

static char *dump(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    *len = s ? strlen(s) : 0;
    return s;
}

static bool json_has(json_t *arr, json_t *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) if (json_equal(x, v)) return true;
    return false;
}

static bool json_remove(json_t *arr, json_t *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        if (json_equal(x, v)) {
            json_array_remove(arr, i);
            return true;
        }
    }
    return false;
}

static void write_event(struct mg_http_req *req, const char *data, size_t len)
{
    struct mg_buf b;
    mg_buf_init(&b, len + 64 + len / 16);
    mg_sse_format(&b, "message", data, len);
    mg_http_write(req, b.data, b.len);
    mg_buf_fini(&b);
}

static void session_channel_pause_check(struct session *s, struct mg_http_req *req)
{
    struct mg_channel *ch = s->group ? s->group->ch : s->ch;
    if (ch && mg_http_congested(req))
        ch->ops->pause(ch);
}

/* --- posts ------------------------------------------------------------------------------ */

static void session_idle_check(struct session *s);

static void post_free(struct post *p)
{
    struct session *s = p->s;
    mg_list_remove(&p->link);
    json_decref(p->ids);
    json_decref(p->tokens);
    json_decref(p->answers);
    json_decref(p->init_id);
    free(p);
    /* The last request done: the idle clock starts again. */
    if (s)
        session_idle_check(s);
}

/* Finishes a POST whose responses are all in (or which is being failed). */
static void post_complete(struct post *p)
{
    struct mg_http_req *req = p->req;
    p->req = NULL;
    if (req) {
        req->hdata = NULL;
        if (p->sse) {
            mg_http_finish(req);
        } else {
            json_t *body =
                p->batch ? json_incref(p->answers) : json_incref(json_array_get(p->answers, 0));
            size_t len = 0;
            char *txt = body ? dump(body, &len) : NULL;
            char hdr[128];
            snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s\r\n", p->s->id);
            mg_http_reply(req, 200, "application/json", hdr, txt ? txt : "null", txt ? len : 4);
            free(txt);
            json_decref(body);
        }
    }
    post_free(p);
}

static void send_to_post(struct post *p, json_t *msg)
{
    if (p->req == NULL)
        return;
    if (p->sse) {
        size_t len;
        char *txt = dump(msg, &len);
        if (txt)
            write_event(p->req, txt, len);
        free(txt);
        session_channel_pause_check(p->s, p->req);
    } else {
        json_array_append(p->answers, msg);
    }
}

static void fail_post(struct post *p, const char *why)
{
    size_t i;
    json_t *id;
    json_array_foreach(p->ids, i, id)
    {
        json_t *err = json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id, "error",
                                "code", RPC_SERVER_GONE, "message", why);
        if (err)
            send_to_post(p, err);
        json_decref(err);
    }
    json_array_clear(p->ids);
    post_complete(p);
}

/* --- delivering server messages --------------------------------------------------------- */

static void queue_message(struct session *s, json_t *msg)
{
    if (s->n_queue >= QUEUE_MAX) {
        struct queued *old = mg_list_entry(s->queue.next, struct queued, link);
        mg_list_remove(&old->link);
        free(old->data);
        free(old);
        s->n_queue--;
        mg_log_warn("session %.8s: no stream to deliver server messages on; dropped the oldest",
                    s->id);
    }
    struct queued *q = mg_xcalloc(1, sizeof *q);
    q->data = dump(msg, &q->len);
    if (q->data == NULL) {
        free(q);
        return;
    }
    mg_list_push(&s->queue, &q->link);
    s->n_queue++;
}

static void flush_queue(struct session *s, struct mg_http_req *req)
{
    while (!mg_list_empty(&s->queue)) {
        struct queued *q = mg_list_entry(s->queue.next, struct queued, link);
        mg_list_remove(&q->link);
        write_event(req, q->data, q->len);
        free(q->data);
        free(q);
        s->n_queue--;
    }
}

static void deliver(struct session *s, json_t *msg)
{
    json_t *id = json_object_get(msg, "id");
    json_t *method = json_object_get(msg, "method");
    struct mg_list *pos, *tmp;
    if (method == NULL && id) {
        /* A response: to the POST waiting for this id. */
        mg_list_each(pos, tmp, &s->posts)
        {
            struct post *p = mg_list_entry(pos, struct post, link);
            if (p->kind == 1 && json_remove(p->ids, id)) {
                send_to_post(p, msg);
                if (json_array_size(p->ids) == 0)
                    post_complete(p);
                return;
            }
        }
        mg_log_debug("session %.8s: response with no waiting request; dropped", s->id);
        return;
    }
    /* Progress goes to the request that asked for it (MCP progress tokens). */
    json_t *token = json_object_get(json_object_get(msg, "params"), "progressToken");
    struct post *first_sse = NULL;
    mg_list_each(pos, tmp, &s->posts)
    {
        struct post *p = mg_list_entry(pos, struct post, link);
        if (p->kind != 1 || !p->sse || p->req == NULL)
            continue;
        if (token && json_has(p->tokens, token)) {
            send_to_post(p, msg);
            return;
        }
        if (first_sse == NULL)
            first_sse = p;
    }
    if (first_sse) {
        send_to_post(first_sse, msg);
    } else if (s->get && s->get->req) {
        size_t len;
        char *txt = dump(msg, &len);
        if (txt)
            write_event(s->get->req, txt, len);
        free(txt);
        session_channel_pause_check(s, s->get->req);
    } else {
        queue_message(s, msg);
    }
}

/* --- channels --------------------------------------------------------------------------- */

static void on_session_message(struct mg_channel *ch, json_t *msg)
{
    struct session *s = ch->owner;
    deliver(s, msg);
    json_decref(msg);
}

static void on_session_end(struct mg_channel *ch, const char *why)
{
    struct session *s = ch->owner;
    session_end(s, why);
}

static void group_end(struct group *g, const char *why);

static void group_answer_init(struct group *g)
{
    while (!mg_list_empty(&g->waiting)) {
        struct post *p = mg_list_entry(g->waiting.next, struct post, link);
        mg_list_remove(&p->link);
        mg_list_push(&p->s->posts, &p->link);
        json_t *resp = json_pack("{s:s,s:O,s:O}", "jsonrpc", "2.0", "id", p->init_id, "result",
                                 g->init_result);
        json_remove(p->ids, p->init_id);
        send_to_post(p, resp);
        json_decref(resp);
        post_complete(p);
    }
}

static void on_group_message(struct mg_channel *ch, json_t *msg)
{
    struct group *g = ch->owner;
    json_t *id = json_object_get(msg, "id");
    json_t *method = json_object_get(msg, "method");
    if (method == NULL && id && json_is_integer(id)) {
        uint64_t gid = (uint64_t)json_integer_value(id);
        struct mg_list *pos, *tmp;
        mg_list_each(pos, tmp, &H.idmaps)
        {
            struct idmap *m = mg_list_entry(pos, struct idmap, link);
            if (m->gid != gid)
                continue;
            struct session *s = m->s;
            json_object_set(msg, "id", m->orig);
            mg_list_remove(&m->link);
            json_decref(m->orig);
            free(m);
            if (s) {
                json_t *res = json_object_get(msg, "result");
                if (g->init_result == NULL && res && json_object_get(res, "protocolVersion")) {
                    g->init_result = json_incref(res);
                    deliver(s, msg);
                    group_answer_init(g);
                } else {
                    deliver(s, msg);
                }
            }
            json_decref(msg);
            return;
        }
        json_decref(msg);
        return;
    }
    /* Server-initiated: notifications to every session, requests to one. */
    struct mg_list *pos, *tmp;
    mg_list_each(pos, tmp, &g->sessions)
    {
        struct session *s = mg_list_entry(pos, struct session, glink);
        deliver(s, msg);
        if (method && id)
            break;
    }
    json_decref(msg);
}

static void on_group_end(struct mg_channel *ch, const char *why)
{
    group_end(ch->owner, why);
}

static struct mg_channel *open_channel(struct mg_gw *gw, const struct mg_route_rt *rt, char *err,
                                       size_t cap)
{
    struct mg_channel_env env = channel_env(gw, rt);
    struct mg_channel *ch = NULL;
    if (rt->conf->kind == MG_UPSTREAM_STDIO) {
        if ((size_t)atomic_load(&mg_metrics.stdio_children) >= gw->conf->max_stdio_children) {
            snprintf(err, cap, "too many stdio server processes (limits.max_stdio_children)");
            return NULL;
        }
        if (mg_channel_stdio_new(&env, rt->conf, &ch, err, cap) < 0)
            return NULL;
    } else {
        if (mg_channel_sse_new(&env, rt->conf, rt->up_ctx, rt->up_host_header, &ch) < 0) {
            snprintf(err, cap, "legacy upstream unavailable");
            return NULL;
        }
    }
    return ch;
}

static struct group *group_get(struct mg_gw *gw, const struct mg_route_rt *rt, char *err,
                               size_t cap)
{
    struct mg_list *pos, *tmp;
    mg_list_each(pos, tmp, &H.groups)
    {
        struct group *g = mg_list_entry(pos, struct group, link);
        if (!g->ended && strcmp(g->rt->conf->name, rt->conf->name) == 0 && g->gw == gw)
            return g;
    }
    struct group *g = mg_xcalloc(1, sizeof *g);
    g->ch = open_channel(gw, rt, err, cap);
    if (g->ch == NULL) {
        free(g);
        return NULL;
    }
    g->ch->owner = g;
    g->ch->on_message = on_group_message;
    g->ch->on_end = on_group_end;
    mg_gw_ref(gw);
    g->gw = gw;
    g->rt = rt;
    mg_list_init(&g->sessions);
    mg_list_init(&g->waiting);
    mg_list_push(&H.groups, &g->link);
    return g;
}

static void group_free_if_unused(struct group *g)
{
    if (!mg_list_empty(&g->sessions) || g->ending)
        return;
    mg_list_remove(&g->link);
    if (g->ch)
        g->ch->ops->close(g->ch);
    json_decref(g->init_result);
    mg_gw_unref(g->gw);
    free(g);
}

static void group_end(struct group *g, const char *why)
{
    g->ended = true;
    struct mg_channel *ch = g->ch;
    g->ch = NULL;
    if (ch)
        ch->ops->close(ch);
    g->ending = true;
    while (!mg_list_empty(&g->sessions)) {
        struct session *s = mg_list_entry(g->sessions.next, struct session, glink);
        session_end(s, why); /* removes s from g->sessions */
    }
    g->ending = false;
    group_free_if_unused(g);
}

/* --- sessions --------------------------------------------------------------------------- */

static void on_idle_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    mg_gw_unref(s->gw);
    free(s);
}

static void on_session_idle(uv_timer_t *t)
{
    struct session *s = t->data;
    mg_log_info("session %.8s on route %s idle; ending it", s->id, s->rt->conf->name);
    session_end(s, "session idle timeout");
}

static void session_idle_check(struct session *s)
{
    bool busy = !mg_list_empty(&s->posts) || (s->get && s->get->req);
    if (busy || s->ended)
        uv_timer_stop(&s->idle);
    else
        uv_timer_start(&s->idle, on_session_idle, s->gw->conf->session_idle_timeout_ms, 0);
}

static void session_end(struct session *s, const char *why)
{
    if (s->ended)
        return;
    s->ended = true;
    mg_list_remove(&s->link);
    H.n_sessions--;
    atomic_fetch_sub(&mg_metrics.sessions, 1);
    if (s->ch) {
        struct mg_channel *ch = s->ch;
        s->ch = NULL;
        ch->ops->close(ch);
    }
    while (!mg_list_empty(&s->posts)) {
        struct post *p = mg_list_entry(s->posts.next, struct post, link);
        if (p->kind == 2) {
            struct mg_http_req *req = p->req;
            p->req = NULL;
            s->get = NULL;
            post_free(p);
            if (req) {
                req->hdata = NULL;
                mg_http_finish(req);
            }
        } else {
            fail_post(p, why);
        }
    }
    while (!mg_list_empty(&s->queue)) {
        struct queued *q = mg_list_entry(s->queue.next, struct queued, link);
        mg_list_remove(&q->link);
        free(q->data);
        free(q);
    }
    struct mg_list *pos, *tmp;
    mg_list_each(pos, tmp, &H.idmaps)
    {
        struct idmap *m = mg_list_entry(pos, struct idmap, link);
        if (m->s == s)
            m->s = NULL;
    }
    if (s->group) {
        struct group *g = s->group;
        s->group = NULL;
        mg_list_remove(&s->glink);
        while (!mg_list_empty(&g->waiting)) {
            struct post *p = mg_list_entry(g->waiting.next, struct post, link);
            if (p->s != s)
                break;
            fail_post(p, why);
        }
        group_free_if_unused(g);
    }
    uv_timer_stop(&s->idle);
    uv_close((uv_handle_t *)&s->idle, on_idle_closed);
}

static struct session *session_find(const char *id, size_t len, const struct mg_route_rt *rt)
{
    struct mg_list *pos, *tmp;
    if (len != 32)
        return NULL;
    mg_list_each(pos, tmp, &H.sessions)
    {
        struct session *s = mg_list_entry(pos, struct session, link);
        /* Constant-time: a session id is a bearer of access to a process. */
        if (CRYPTO_memcmp(s->id, id, 32) == 0 && strcmp(s->rt->conf->name, rt->conf->name) == 0)
            return s;
    }
    return NULL;
}

static struct session *session_new(const struct mg_route_rt *rt, char *err, size_t cap)
{
    if (H.n_sessions >= H.gw->conf->max_sessions) {
        snprintf(err, cap, "too many sessions (limits.max_sessions)");
        return NULL;
    }
    struct session *s = mg_xcalloc(1, sizeof *s);
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        free(s);
        snprintf(err, cap, "no randomness");
        return NULL;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(s->id + 2 * i, 3, "%02x", raw[i]);
    mg_gw_ref(H.gw);
    s->gw = H.gw;
    s->rt = rt;
    mg_list_init(&s->posts);
    mg_list_init(&s->queue);
    mg_list_init(&s->glink);
    if (rt->conf->stdio.shared && rt->conf->kind == MG_UPSTREAM_STDIO) {
        s->group = group_get(s->gw, rt, err, cap);
        if (s->group == NULL) {
            mg_gw_unref(s->gw);
            free(s);
            return NULL;
        }
        mg_list_push(&s->group->sessions, &s->glink);
    } else {
        s->ch = open_channel(s->gw, rt, err, cap);
        if (s->ch == NULL) {
            mg_gw_unref(s->gw);
            free(s);
            return NULL;
        }
        s->ch->owner = s;
        s->ch->on_message = on_session_message;
        s->ch->on_end = on_session_end;
    }
    uv_timer_init(&H.loop, &s->idle);
    s->idle.data = s;
    mg_list_push(&H.sessions, &s->link);
    H.n_sessions++;
    atomic_fetch_add(&mg_metrics.sessions, 1);
    return s;
}

/* Sends one client message to the session's server. */
static int session_send(struct session *s, json_t *msg)
{
    json_t *copy = NULL;
    if (s->group) {
        struct group *g = s->group;
        json_t *method = json_object_get(msg, "method");
        json_t *id = json_object_get(msg, "id");
        const char *m = json_is_string(method) ? json_string_value(method) : "";
        if (strcmp(m, "notifications/initialized") == 0) {
            if (g->initialized_sent)
                return 0; /* the shared child was initialized once */
            g->initialized_sent = true;
        }
        if (method && id) {
            copy = json_deep_copy(msg);
            struct idmap *im = mg_xcalloc(1, sizeof *im);
            im->gid = ++H.next_gid;
            im->s = s;
            im->orig = json_incref(id);
            mg_list_push(&H.idmaps, &im->link);
            json_object_set_new(copy, "id", json_integer((json_int_t)im->gid));
            msg = copy;
        }
    }
    size_t len;
    char *txt = dump(msg, &len);
    json_decref(copy);
    if (txt == NULL)
        return MG_ENOMEM;
    struct mg_channel *ch = s->group ? s->group->ch : s->ch;
    int rc = ch ? ch->ops->send(ch, txt, len) : MG_ECLOSED;
    free(txt);
    return rc;
}

/* One message to its own server: forwards the very bytes that were inspected,
 * not a re-serialization (numbers and escapes keep their spelling). Raw CR/LF
 * can only be whitespace between JSON tokens, so turning them into spaces
 * keeps the stdio framing intact. */
static int send_raw(struct session *s, const char *body, size_t len)
{
    MG_ASSERT(s->group == NULL);
    char *raw = mg_xmalloc(len);
    for (size_t k = 0; k < len; k++)
        raw[k] = (body[k] == '\r' || body[k] == '\n') ? ' ' : body[k];
    int rc = s->ch ? s->ch->ops->send(s->ch, raw, len) : MG_ECLOSED;
    free(raw);
    return rc;
}

/* --- the HTTP side ---------------------------------------------------------------------- */

static void reply_error(struct mg_http_req *req, int status, json_t *id, int code, const char *msg)
{
    char *idj = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    mg_http_reply_jsonrpc_error(req, status, idj, code, msg, NULL);
    free(idj);
}

static bool accepts(const struct mg_http_head *h, const char *type)
{
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct mg_http_header *x = &h->headers[i];
        if (mg_str_ieq(x->name, x->name_len, "accept") &&
            (mg_http_list_has(x->value, x->value_len, type) ||
             mg_http_list_has(x->value, x->value_len, "*/*")))
            return true;
    }
    return false;
}

static void begin_sse(struct mg_http_req *req, struct session *s)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     "Mcp-Session-Id: %s\r\n",
                     s->id);
    mg_http_begin(req, 200, hdr, (size_t)n, -1);
}

static void handle_post(struct mg_http_req *req, const struct mg_route_rt *rt,
                        const struct mg_http_header *sid)
{
    json_error_t je;
    const char *body = req->body.data ? req->body.data : "";
    json_t *root = json_loadb(body, req->body.len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL && json_error_code(&je) == json_error_numeric_overflow)
        root =
            json_loadb(body, req->body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    if (root == NULL) {
        reply_error(req, 400, NULL, -32700, "parse error: body is not valid JSON");
        return;
    }
    bool batch = json_is_array(root);
    json_t *msgs = batch ? json_incref(root) : json_pack("[O]", root);
    json_t *first = json_array_get(msgs, 0);
    json_t *first_id = json_object_get(first, "id");
    const char *first_method = json_string_value(json_object_get(first, "method"));
    bool is_init = first_method && strcmp(first_method, "initialize") == 0;
    char err[256] = "";
    struct session *s = NULL;
    struct post *p = NULL;
    if (json_array_size(msgs) == 0 || !json_is_object(first)) {
        reply_error(req, 400, NULL, -32600, "invalid request");
        goto out;
    }
    if (sid == NULL) {
        if (!is_init || batch) {
            reply_error(req, 400, first_id, -32600,
                        "missing Mcp-Session-Id: send initialize first");
            goto out;
        }
        s = session_new(rt, err, sizeof err);
        if (s == NULL) {
            bool limit = strstr(err, "too many") != NULL;
            reply_error(req, limit ? 503 : 502, first_id,
                        limit ? RPC_SESSION_LIMIT : RPC_SERVER_GONE, err);
            goto out;
        }
        mg_log_info("session %.8s on route %s started", s->id, rt->conf->name);
    } else {
        s = session_find(sid->value, sid->value_len, rt);
        if (s == NULL) {
            reply_error(req, 404, first_id, -32001, "session not found");
            goto out;
        }
        if (is_init) {
            reply_error(req, 400, first_id, -32600, "session is already initialized");
            goto out;
        }
    }
    p = mg_xcalloc(1, sizeof *p);
    p->kind = 1;
    p->s = s;
    p->ids = json_array();
    p->tokens = json_array();
    p->answers = json_array();
    p->batch = batch;
    mg_list_init(&p->link);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        json_t *id = json_object_get(m, "id");
        if (json_object_get(m, "method") && id) {
            json_array_append(p->ids, id);
            json_t *tok = json_object_get(json_object_get(json_object_get(m, "params"), "_meta"),
                                          "progressToken");
            if (tok)
                json_array_append(p->tokens, tok);
        }
    }
    if (json_array_size(p->ids) == 0) {
        /* Only notifications and responses: accepted, nothing to wait for. */
        if (!batch && s->group == NULL)
            send_raw(s, body, req->body.len);
        else
            json_array_foreach(msgs, i, m) session_send(s, m);
        post_free(p);
        p = NULL;
        char hdr[96];
        snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s\r\n", s->id);
        mg_http_reply(req, 202, NULL, hdr, "", 0);
        session_idle_check(s);
        goto out;
    }
    p->req = req;
    req->hdata = p;
    p->sse = accepts(req->head, "text/event-stream");
    if (!p->sse && !accepts(req->head, "application/json")) {
        p->req = NULL;
        req->hdata = NULL;
        post_free(p);
        p = NULL;
        reply_error(req, 406, first_id, -32600,
                    "Accept must include application/json or text/event-stream");
        if (sid == NULL)
            session_end(s, "not acceptable");
        goto out;
    }
    if (p->sse)
        begin_sse(req, s);
    struct group *g = s->group;
    if (g && is_init && g->init_result) {
        /* Shared child already initialized: answer from the cache. */
        mg_list_push(&s->posts, &p->link);
        json_t *resp =
            json_pack("{s:s,s:O,s:O}", "jsonrpc", "2.0", "id", first_id, "result", g->init_result);
        json_remove(p->ids, first_id);
        send_to_post(p, resp);
        json_decref(resp);
        post_complete(p);
        p = NULL;
        goto out;
    }
    if (g && is_init && g->init_sent) {
        p->init_id = json_incref(first_id);
        mg_list_push(&g->waiting, &p->link);
        p = NULL;
        goto out;
    }
    if (g && is_init)
        g->init_sent = true;
    mg_list_push(&s->posts, &p->link);
    session_idle_check(s);
    if (!batch && s->group == NULL) {
        int rc = send_raw(s, body, req->body.len);
        if (rc < 0)
            fail_post(p, rc == MG_ELIMIT ? "MCP server is not reading its input"
                                         : "MCP server is not running");
        p = NULL;
        goto out;
    }
    json_array_foreach(msgs, i, m)
    {
        int rc = session_send(s, m);
        if (rc < 0) {
            fail_post(p, rc == MG_ELIMIT ? "MCP server is not reading its input"
                                         : "MCP server is not running");
            p = NULL;
            break;
        }
    }
    p = NULL;
out:
    json_decref(msgs);
    json_decref(root);
}

static void handle_get(struct mg_http_req *req, struct session *s)
{
    if (!accepts(req->head, "text/event-stream")) {
        reply_error(req, 406, NULL, -32600, "Accept must include text/event-stream");
        return;
    }
    if (s->get) {
        reply_error(req, 409, NULL, -32600, "a stream is already open for this session");
        return;
    }
    struct post *p = mg_xcalloc(1, sizeof *p);
    p->kind = 2;
    p->s = s;
    p->req = req;
    p->sse = true;
    req->hdata = p;
    mg_list_push(&s->posts, &p->link);
    s->get = p;
    begin_sse(req, s);
    mg_http_release_head(req);
    flush_queue(s, req);
    session_idle_check(s);
}

static void hub_request(struct mg_http_req *req)
{
    const struct mg_http_head *h = req->head;
    const struct mg_http_header *key = mg_http_head_find(h, "x-mcpgate-hub-key");
    const struct mg_http_header *route = mg_http_head_find(h, "x-mcpgate-route");
    size_t klen = strlen(H.gw->hub_key);
    if (key == NULL || key->value_len != klen ||
        CRYPTO_memcmp(key->value, H.gw->hub_key, klen) != 0 || route == NULL) {
        reply_error(req, 403, NULL, -32002, "forbidden");
        return;
    }
    const struct mg_route_rt *rt = mg_gw_route_by_name(H.gw, route->value, route->value_len);
    if (rt == NULL || !rt->via_hub) {
        reply_error(req, 404, NULL, -32002, "no such route");
        return;
    }
    if (H.draining) {
        reply_error(req, 503, NULL, -32000, "gateway is shutting down");
        return;
    }
    const struct mg_http_header *sid = mg_http_head_find(h, "mcp-session-id");
    if (req->method == HTTP_POST) {
        handle_post(req, rt, sid);
        return;
    }
    if (req->method != HTTP_GET && req->method != HTTP_DELETE) {
        mg_http_reply(req, 405, "application/json", "Allow: GET, POST, DELETE\r\n",
                      "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":"
                      "\"method not allowed\"}}",
                      82);
        return;
    }
    struct session *s = sid ? session_find(sid->value, sid->value_len, rt) : NULL;
    if (s == NULL) {
        reply_error(req, sid ? 404 : 400, NULL, -32001,
                    sid ? "session not found" : "missing Mcp-Session-Id");
        return;
    }
    if (req->method == HTTP_DELETE) {
        mg_log_info("session %.8s on route %s ended by the client", s->id, rt->conf->name);
        session_end(s, "session deleted");
        mg_http_reply(req, 200, NULL, NULL, "", 0);
        return;
    }
    handle_get(req, s);
}

static void hub_abort(struct mg_http_req *req)
{
    struct post *p = req->hdata;
    if (p == NULL)
        return;
    req->hdata = NULL;
    p->req = NULL;
    struct session *s = p->s;
    if (p->kind == 2)
        s->get = NULL;
    /* The responses still due to an abandoned POST are dropped on arrival. */
    post_free(p);
    session_idle_check(s);
}

static void hub_drain_cb(struct mg_http_req *req)
{
    struct post *p = req->hdata;
    if (p == NULL)
        return;
    struct mg_channel *ch = p->s->group ? p->s->group->ch : p->s->ch;
    if (ch)
        ch->ops->resume(ch);
}

static void hub_log(struct mg_http_req *req)
{
    struct post *p = req->hdata;
    if (p && p->req == req) {
        /* Finished from outside (the connection closed): detach. */
        p->req = NULL;
        req->hdata = NULL;
    }
}

static const struct mg_http_handler hub_handler = {
    .on_request = hub_request,
    .on_abort = hub_abort,
    .on_drain = hub_drain_cb,
    .on_log = hub_log,
};

/* --- thread and mailbox ----------------------------------------------------------------- */

static void on_conn(uv_stream_t *l, int status)
{
    if (status == 0)
        mg_http_server_accept(&H.http, l);
}

static void noop_close(uv_handle_t *h)
{
    MG_UNUSED(h);
}

static void maybe_finish(void)
{
    if (!H.draining || H.n_sessions > 0 || H.http.n_conns > 0)
        return;
    mg_client_pool_close(&H.pool);
    mg_stream_loop_fini();
    if (!uv_is_closing((uv_handle_t *)&H.wake))
        uv_close((uv_handle_t *)&H.wake, noop_close);
    if (!uv_is_closing((uv_handle_t *)&H.drain_timer))
        uv_close((uv_handle_t *)&H.drain_timer, noop_close);
}

static void on_http_empty(struct mg_http_server *srv)
{
    MG_UNUSED(srv);
    maybe_finish();
}

static void on_drain_timeout(uv_timer_t *t)
{
    MG_UNUSED(t);
    mg_http_server_close_all(&H.http);
    maybe_finish();
}

static void on_wake(uv_async_t *a)
{
    MG_UNUSED(a);
    pthread_mutex_lock(&H.mu);
    struct mg_gw *next = H.next_gw;
    bool drain = H.want_drain;
    H.next_gw = NULL;
    pthread_mutex_unlock(&H.mu);
    if (next) {
        mg_gw_unref(H.gw);
        H.gw = next; /* sessions keep the configuration they started with */
    }
    if (drain && !H.draining) {
        H.draining = true;
        uv_close((uv_handle_t *)&H.listener, noop_close);
        while (!mg_list_empty(&H.sessions)) {
            struct session *s = mg_list_entry(H.sessions.next, struct session, link);
            session_end(s, "gateway is shutting down");
        }
        mg_http_server_drain(&H.http);
        uv_timer_start(&H.drain_timer, on_drain_timeout, 2000, 0);
        maybe_finish();
    }
}

static void hub_main(void *arg)
{
    MG_UNUSED(arg);
    uv_run(&H.loop, UV_RUN_DEFAULT);
    uv_run(&H.loop, UV_RUN_DEFAULT);
    mg_gw_unref(H.gw);
    H.gw = NULL;
    if (uv_loop_close(&H.loop) != 0)
        mg_log_warn("hub: handles left open at exit");
    mg_http_parser_thread_fini();
}

int mg_hub_start(struct mg_gw *gw, const char *sock_path, struct mg_buf *err)
{
    memset(&H, 0, sizeof H);
    pthread_mutex_init(&H.mu, NULL);
    mg_list_init(&H.sessions);
    mg_list_init(&H.groups);
    mg_list_init(&H.idmaps);
    mg_gw_ref(gw);
    H.gw = gw;
    H.path = mg_xstrdup(sock_path);
    uv_loop_init(&H.loop);
    struct mg_http_limits l = {
        .max_header_bytes = gw->conf->max_header_bytes + 16384,
        .max_body_bytes = gw->conf->max_body_bytes,
        .header_timeout_ms = 30000,
        .body_timeout_ms = 30000,
        .idle_timeout_ms = 60000,
        .send_timeout_ms = gw->conf->send_timeout_ms,
        .max_connections = 0,
    };
    mg_http_server_init(&H.http, &H.loop, &hub_handler, NULL, NULL, &l);
    H.http.on_empty = on_http_empty;
    mg_client_pool_init(&H.pool, &H.loop, gw->conf->max_response_header_bytes);
    uv_pipe_init(&H.loop, &H.listener, 0);
    unlink(sock_path);
    int rc = uv_pipe_bind(&H.listener, sock_path);
    if (rc == 0) {
        chmod(sock_path, 0600);
        rc = uv_listen((uv_stream_t *)&H.listener, 1024, on_conn);
    }
    if (rc < 0) {
        mg_buf_appendf(err, "hub: cannot listen on %s: %s", sock_path, uv_strerror(rc));
        return MG_EIO;
    }
    uv_async_init(&H.loop, &H.wake, on_wake);
    uv_timer_init(&H.loop, &H.drain_timer);
    if (uv_thread_create(&H.thread, hub_main, NULL) != 0) {
        mg_buf_appends(err, "hub: cannot start thread");
        return MG_EIO;
    }
    H.started = true;
    return 0;
}

void mg_hub_post_config(struct mg_gw *gw)
{
    if (!H.started)
        return;
    mg_gw_ref(gw);
    pthread_mutex_lock(&H.mu);
    struct mg_gw *old = H.next_gw;
    H.next_gw = gw;
    pthread_mutex_unlock(&H.mu);
    mg_gw_unref(old);
    uv_async_send(&H.wake);
}

void mg_hub_post_drain(void)
{
    if (!H.started)
        return;
    pthread_mutex_lock(&H.mu);
    H.want_drain = true;
    pthread_mutex_unlock(&H.mu);
    uv_async_send(&H.wake);
}

void mg_hub_join(void)
{
    if (!H.started)
        return;
    uv_thread_join(&H.thread);
    mg_gw_unref(H.next_gw);
    H.next_gw = NULL;
    pthread_mutex_destroy(&H.mu);
    unlink(H.path);
    free(H.path);
    H.started = false;
}

/* The policy phase (issue 4): every JSON-RPC message a caller sends is judged
 * against the global and the route policy before anything is forwarded, each
 * decision is recorded in the audit trail, and list answers are filtered so
 * a caller sees only what it may use. How a message is judged (defaults,
 * default-allowed methods, hidden tools, batches, headers) is judge.c's,
 * shared with `mcpgate policy test`; this file applies it to a live
 * request: the audit trail's health, the records, the answers. */
#include "audit/audit.h"
#include "audit/record.h"
#include "core/log.h"
#include "gw/judge.h"
#include "gw/req.h"
#include "gw/toolmap.h"

#include <time.h>

static const char *method_str(int m)
{
    return m == HTTP_GET      ? "GET"
           : m == HTTP_POST   ? "POST"
           : m == HTTP_DELETE ? "DELETE"
           : m == HTTP_HEAD   ? "HEAD"
                              : "OPTIONS";
}

static void judge_route(const struct mg_gw_req *p, struct mg_judge_route *rt)
{
    rt->conf = p->gw->conf;
    rt->route = p->route->conf;
    rt->toolmap = p->route->toolmap;
}

static void judge_request(const struct mg_gw_req *p, struct mg_judge_request *rq)
{
    rq->identity = p->identity;
    rq->http_method = method_str(p->req->method);
    rq->http_path = p->req->path;
    rq->source = (const struct sockaddr *)&p->req->conn->peer_addr;
    rq->now = (int64_t)time(NULL);
}

/* The judge of the items of one list answer for this caller. */
struct mg_judge_list *mg_gw__judge_list(struct mg_gw_req *p, const char *list_method)
{
    struct mg_judge_route rt;
    struct mg_judge_request rq;
    judge_route(p, &rt);
    judge_request(p, &rq);
    return mg_judge_list_new(&rt, &rq, list_method);
}

static struct mg_audit_record *record_for(struct mg_gw_req *p, const struct mg_jsonrpc_msg *m,
                                          const struct mg_judge_verdict *v)
{
    struct mg_audit *a = p->gw->audit;
    struct mg_audit_record *rec = mg_audit_record_new();
    mg_audit_record_set_route(rec, p->route->conf->name);
    if (p->identity)
        mg_audit_record_set_identity(rec, p->identity);
    mg_audit_record_set_source(rec, p->req->conn->peer);
    if (p->session)
        mg_audit_record_set_session(rec, p->session);
    if (m) {
        if (m->id)
            mg_audit_record_set_jsonrpc_id(rec, m->id);
        /* A response: method "response", name the method it answers. */
        mg_audit_record_set_call(rec, m->method ? m->method : "response",
                                 m->method ? m->name : m->answers);
        if (m->arguments && a)
            mg_audit_record_set_arguments(rec, m->arguments, mg_audit_arguments(a));
        else if (m->args_flat && a) /* the body is still alive: it is forwarded after this */
            mg_audit_record_set_arguments_flat(rec, m->args_flat, mg_audit_arguments(a));
    } else {
        mg_audit_record_set_call(rec, method_str(p->req->method), NULL);
    }
    mg_audit_record_set_decision(rec, v->allow, v->rule, v->reason);
    return rec;
}

/* The JSON-RPC error for a refused message. */
static json_t *denial(const struct mg_jsonrpc_msg *m, const struct mg_judge_verdict *v,
                      const char *decision_id)
{
    char buf[512];
    const char *message = mg_judge_error_message(v, m, buf, sizeof buf);
    return json_pack("{s:s, s:O?, s:{s:i, s:s, s:{s:s}}}", "jsonrpc", "2.0", "id",
                     m && m->id ? m->id : json_null(), "error", "code", v->code, "message", message,
                     "data", "decision_id", decision_id ? decision_id : "");
}

static void reply_json(struct mg_gw_req *p, int status, json_t *doc)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    p->error = "denied by policy";
    mg_http_reply(p->req, status, "application/json", "Cache-Control: no-store\r\n", body,
                  strlen(body));
    free(body);
}

static bool submit(struct mg_gw_req *p, struct mg_audit_record *rec)
{
    struct mg_audit *a = p->gw->audit;
    if (a == NULL) {
        mg_audit_record_free(rec);
        return true;
    }
    /* Past the queue's bound the record is lost: refuse when that matters. */
    return mg_audit_submit(a, rec, NULL, NULL, NULL) == 0 || mg_audit_healthy(a);
}

static void header_of(const struct mg_http_head *h, enum mg_hdr id, const char **v, size_t *len,
                      size_t *n)
{
    const struct mg_http_header *x = mg_http_head_get(h, id);
    *n = mg_http_head_num(h, id);
    *v = x ? x->value : NULL;
    *len = x ? x->value_len : 0;
}

struct sync_wait {
    struct mg_gw_req *p;
    void (*next)(struct mg_gw_req *);
    size_t refs; /* each holds one p->pending */
    bool failed;
};

/* Drops one reference; the last one lets the request go on, or refuses it
 * if a record could not be written. */
static void sync_unref(struct sync_wait *sw)
{
    struct mg_gw_req *p = sw->p;
    bool alive = mg_gw__req_resume(p);
    if (--sw->refs > 0)
        return;
    void (*next)(struct mg_gw_req *) = sw->next;
    bool failed = sw->failed;
    free(sw);
    if (!alive)
        return;
    if (failed) {
        mg_gw__reply_error(p, 503, MG_RPC_AUDIT_UNAVAILABLE,
                           "the audit trail cannot be written; refusing to act unrecorded",
                           "Retry-After: 1\r\n");
        return;
    }
    next(p);
}

static void sync_done(void *arg, int status)
{
    struct sync_wait *sw = arg;
    if (status != 0)
        sw->failed = true;
    sync_unref(sw);
}

/* Each response is judged by the method of the server->client request it
 * answers, if this gateway relayed that request in the same MCP session
 * (proxy.c notes them as they pass). Unmatched responses keep answers NULL
 * and are refused. */
static void match_responses(struct mg_gw_req *p)
{
    enum { M = MG_TOOLMAP_METHOD_MAX + 1 };
    free(p->answers);
    p->answers = mg_xcalloc(p->rpc.n_messages, M);
    for (size_t i = 0; i < p->rpc.n_messages; i++) {
        struct mg_jsonrpc_msg *m = &p->rpc.msgs[i];
        if (m->kind != MG_JSONRPC_RESPONSE || m->id == NULL)
            continue;
        char *id = json_dumps(m->id, JSON_ENCODE_ANY | JSON_COMPACT);
        if (id && mg_toolmap_take_request(p->route->toolmap, p->session ? p->session : "", id,
                                          p->answers + i * M, M))
            m->answers = p->answers + i * M;
        free(id);
    }
}

void mg_gw__decide(struct mg_gw_req *p, void (*next)(struct mg_gw_req *p))
{
    struct mg_http_req *req = p->req;
    struct mg_audit *a = p->gw->audit;
    if (a && !mg_audit_healthy(a)) {
        mg_gw__reply_error(p, 503, MG_RPC_AUDIT_UNAVAILABLE,
                           "the audit trail cannot be written; refusing to act unrecorded",
                           "Retry-After: 1\r\n");
        return;
    }
    bool post = req->method == HTTP_POST && p->rpc.shape != MG_JSONRPC_INVALID;
    if (post) {
        struct mg_judge_headers h;
        header_of(req->head, MG_HDR_MCP_METHOD, &h.mcp_method, &h.mcp_method_len, &h.n_mcp_method);
        header_of(req->head, MG_HDR_MCP_NAME, &h.mcp_name, &h.mcp_name_len, &h.n_mcp_name);
        header_of(req->head, MG_HDR_MCP_PROTOCOL_VERSION, &h.protocol_version,
                  &h.protocol_version_len, &h.n_protocol_version);
        enum mg_judge_refusal r = mg_judge_precheck(&p->rpc, &h);
        if (r != MG_JUDGE_PROCEED) {
            int status, code;
            const char *msg;
            mg_judge_refusal_answer(r, &status, &code, &msg);
            mg_gw__reply_error(p, status, code, msg, NULL);
            return;
        }
    }
    if (post && p->rpc.n_responses > 0 && p->route->toolmap)
        match_responses(p);
    struct mg_judge_route rt;
    struct mg_judge_request rq;
    judge_route(p, &rt);
    judge_request(p, &rq);
    const struct mg_jsonrpc_info *rpc = post ? &p->rpc : NULL;
    size_t n = post ? p->rpc.n_messages : 1;
    /* Verdicts live only here: on the stack for the usual single message. */
    struct mg_judge_verdict one[1];
    struct mg_judge_verdict *vs = n == 1 ? one : mg_xcalloc(n, sizeof *vs);
    if (n == 1)
        memset(one, 0, sizeof one);
    struct mg_audit_record **recs = mg_xcalloc(n, sizeof *recs);
    size_t n_denied = mg_judge_messages(&rt, &rq, rpc, vs);
    for (size_t i = 0; i < n; i++)
        recs[i] = record_for(p, rpc ? &rpc->msgs[i] : NULL, &vs[i]);
    if (n_denied == 0 && p->gw->audit && mg_audit_wants_sync(p->gw->audit) && p->w->audit_port) {
        /* audit.sync: the records are durable before anything is released;
         * the request goes on when the last one is written. */
        struct sync_wait *sw = mg_xcalloc(1, sizeof *sw);
        sw->p = p;
        sw->next = next;
        sw->refs = 1; /* this call's own */
        p->pending++;
        for (size_t i = 0; i < n; i++) {
            mg_audit_record_set_upstream(recs[i], 0, 0);
            sw->refs++;
            p->pending++;
            if (mg_audit_submit(p->gw->audit, recs[i], p->w->audit_port, sync_done, sw) < 0) {
                sw->refs--;
                p->pending--;
                sw->failed = true;
            }
        }
        free(recs);
        if (vs != one)
            free(vs);
        sync_unref(sw);
        return;
    }
    if (n_denied == 0) {
        /* Allowed: the records wait for the upstream's answer (on_log). */
        p->audit_recs = recs;
        p->n_audit_recs = n;
        if (vs != one)
            free(vs);
        next(p);
        return;
    }
    /* Refused: nothing is forwarded. Every decision is recorded now. */
    json_t *answer = NULL;
    bool ok = true;
    int status = mg_judge_refusal_status(rpc);
    if (!post) {
        char id[40];
        snprintf(id, sizeof id, "%s", mg_audit_record_decision_id(recs[0]));
        ok = submit(p, recs[0]);
        reply_json(p, status, denial(NULL, &vs[0], id));
    } else {
        json_t *errs = json_array();
        for (size_t i = 0; i < n; i++) {
            const struct mg_jsonrpc_msg *m = &p->rpc.msgs[i];
            char id[40];
            snprintf(id, sizeof id, "%s", mg_audit_record_decision_id(recs[i]));
            if (m->kind == MG_JSONRPC_REQUEST)
                json_array_append_new(errs, denial(m, &vs[i], id));
            else if (answer == NULL && p->rpc.shape == MG_JSONRPC_SINGLE)
                answer = denial(m, &vs[i], id);
            ok = submit(p, recs[i]) && ok;
        }
        if (p->rpc.shape == MG_JSONRPC_SINGLE && json_array_size(errs) == 1)
            reply_json(p, status, json_incref(json_array_get(errs, 0)));
        else if (json_array_size(errs) > 0)
            reply_json(p, status, json_incref(errs));
        else /* only notifications or responses: nothing to answer with an id */
            reply_json(p, status, answer ? json_incref(answer) : json_null());
        json_decref(errs);
        json_decref(answer);
    }
    if (!ok)
        mg_log_warn("audit queue full: a denial could not be recorded");
    free(recs);
    if (vs != one)
        free(vs);
}

/* At the end of an allowed request: its records, with the upstream's status
 * and the latency, go to the audit trail. */
void mg_gw__audit_finish(struct mg_gw_req *p)
{
    for (size_t i = 0; i < p->n_audit_recs; i++) {
        mg_audit_record_set_upstream(p->audit_recs[i], p->up_status,
                                     (int64_t)((mg_now_ns() - p->req_start_ns) / 1000000));
        if (!submit(p, p->audit_recs[i]))
            mg_log_warn("audit queue full: a decision could not be recorded");
    }
    free(p->audit_recs);
    p->audit_recs = NULL;
    p->n_audit_recs = 0;
}

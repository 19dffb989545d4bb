/* `mcpgate policy test` and `mcpgate policy lint`: a policy tried on a
 * request without running the gateway, and the warnings about a
 * configuration's policies. `test` decides with the daemon's own judge
 * (src/gw/judge.c) and replays the refusals the request meets on its way
 * there (body size, sign-in, a body that is not JSON-RPC), so what it prints
 * is what the gateway does. Inputs are the operator's own files, but names
 * in them are printed with control characters masked all the same. */
#include "cli/args.h"
#include "cli/cli.h"

#include "audit/record.h"
#include "authn/identity.h"
#include "cli/reqfile.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "gw/judge.h"
#include "gw/toolmap.h"
#include "mcp/jsonrpc.h"
#include "policy/policy.h"

#include <errno.h>
#include <time.h>

struct opts {
    const char *config, *route, *identity, *request;
    bool json;
    const char *sub;
};

static const char *const usage_text =
    "usage:\n"
    "  mcpgate policy test -c FILE --route NAME [--identity FILE] --request FILE [--json]\n"
    "  mcpgate policy lint -c FILE\n"
    "test decides one HTTP request as the gateway would: for each JSON-RPC message the\n"
    "decision, the deciding rule, the reason and whether a default applied. The request\n"
    "file is the JSON-RPC body, or {\"http_method\", \"path\", \"source_ip\", \"time\",\n"
    "\"headers\", \"tools\", \"body\", \"answers\"}; the identity file is {\"sub\", \"email\", "
    "\"name\",\n"
    "\"groups\", \"claims\", \"idp\", \"method\", \"client_id\"} (none: anonymous).\n"
    "Exit 0 if everything is allowed, 1 if anything is refused, 2 on errors.\n"
    "lint prints FILE:LINE:COL: RULE: message for each finding in the global and route\n"
    "policies and each signed-in route without one. Exit 0 without findings, 1 with.\n"
    "See docs/policy.md, \"Testing a policy\".\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct mg_cli_opt opts[] = {
        {"-c", offsetof(struct opts, config), false},
        {"--config", offsetof(struct opts, config), false},
        {"--route", offsetof(struct opts, route), false},
        {"--identity", offsetof(struct opts, identity), false},
        {"--request", offsetof(struct opts, request), false},
        {"--json", offsetof(struct opts, json), true},
    };
    size_t n_pos = 0;
    if (mg_cli_parse(argc, argv, opts, MG_ARRAY_LEN(opts), o, &o->sub, 1, &n_pos) < 0)
        return -1;
    if (!o->sub || (strcmp(o->sub, "test") != 0 && strcmp(o->sub, "lint") != 0))
        return -1;
    if (!o->config) {
        fprintf(stderr, "mcpgate: -c FILE is required (the gateway's configuration)\n");
        return -1;
    }
    bool test = strcmp(o->sub, "test") == 0;
    if (test && (!o->route || !o->request)) {
        fprintf(stderr, "mcpgate: policy test needs --route NAME and --request FILE\n");
        return -1;
    }
    if (!test && (o->route || o->identity || o->request || o->json)) {
        fprintf(stderr, "mcpgate: policy lint takes only -c FILE\n");
        return -1;
    }
    return 0;
}

static struct mg_conf *load_conf(const char *path)
{
    struct mg_conf *conf = NULL;
    char *err = NULL;
    if (mg_conf_load(path, &conf, &err) < 0) {
        fprintf(stderr, "%s\n", err ? err : "invalid configuration");
        free(err);
        return NULL;
    }
    return conf;
}

/* The whole file, NUL-terminated, at most MG_REQFILE_MAX_BYTES (+1 to tell
 * "over" from "exactly"). */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "mcpgate: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = mg_xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > MG_REQFILE_MAX_BYTES)
                break;
            cap *= 2;
            buf = mg_xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        fprintf(stderr, "mcpgate: %s: read error\n", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* --- output ------------------------------------------------------------------------------ */

/* Untrusted-looking text on a terminal: control characters become '?'. */
static void put_safe(const char *s)
{
    for (; s && *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static const char *kind_name(const struct mg_jsonrpc_msg *m)
{
    if (m == NULL)
        return "http";
    return m->kind == MG_JSONRPC_REQUEST        ? "request"
           : m->kind == MG_JSONRPC_NOTIFICATION ? "notification"
                                                : "response";
}

/* What the test decided, before it is printed. */
struct outcome {
    int status; /* 0: forwarded; else the HTTP status of the gateway's answer */
    int code;   /* a refusal before the messages are judged: its JSON-RPC code */
    const char *message;
    const struct mg_jsonrpc_info *rpc; /* NULL: no body */
    struct mg_judge_verdict *vs;
    size_t n;
};

/* Whether the refusal of message i reaches the client as an error object:
 * requests get one each; a lone notification or response gets the answer
 * to its HTTP request (403); those in a batch get nothing (no id). */
static bool answered(const struct outcome *out, size_t i)
{
    const struct mg_jsonrpc_msg *m = out->rpc ? &out->rpc->msgs[i] : NULL;
    return !out->vs[i].allow &&
           (m == NULL || m->kind == MG_JSONRPC_REQUEST || out->rpc->shape == MG_JSONRPC_SINGLE);
}

static json_t *message_json(const struct outcome *out, size_t index, const char *http_method)
{
    const struct mg_jsonrpc_msg *m = out->rpc ? &out->rpc->msgs[index] : NULL;
    const struct mg_judge_verdict *v = &out->vs[index];
    char buf[512];
    json_t *o = json_object();
    json_object_set_new(o, "index", json_integer((json_int_t)index));
    json_object_set_new(o, "kind", json_string(kind_name(m)));
    json_object_set_new(o, "method",
                        m ? (m->method ? json_string(m->method) : json_null())
                          : json_string(http_method));
    json_object_set_new(o, "name", m && m->name ? json_string(m->name) : json_null());
    json_object_set_new(o, "id", m && m->id ? json_deep_copy(m->id) : json_null());
    if (m && m->method && strcmp(m->method, "tools/call") == 0)
        json_object_set_new(o, "tool_class", json_string(mg_tool_class_name(v->tool_class)));
    json_object_set_new(o, "decision", json_string(v->allow ? "allow" : "deny"));
    json_object_set_new(o, "rule", json_string(v->rule));
    json_object_set_new(o, "reason", json_string(v->reason));
    json_object_set_new(o, "by_default", json_boolean(v->by_default));
    if (!answered(out, index))
        json_object_set_new(o, "error", json_null());
    else
        json_object_set_new(o, "error",
                            json_pack("{s:i, s:s}", "code", v->code, "message",
                                      mg_judge_error_message(v, m, buf, sizeof buf)));
    return o;
}

static void print_json(const struct opts *o, const struct outcome *out, const char *http_method,
                       const struct mg_policy *g, const struct mg_policy *r,
                       const struct mg_conf *conf, const struct mg_conf_route *route)
{
    json_t *doc = json_object();
    json_t *msgs = json_array();
    json_object_set_new(doc, "route", json_string(o->route));
    json_object_set_new(doc, "global_policy",
                        conf->policy ? json_string(mg_policy_path(g)) : json_null());
    json_object_set_new(doc, "route_policy",
                        route->policy ? json_string(mg_policy_path(r)) : json_null());
    json_object_set_new(doc, "forwarded", json_boolean(out->status == 0));
    json_object_set_new(doc, "status", out->status ? json_integer(out->status) : json_null());
    json_object_set_new(doc, "refusal",
                        out->code
                            ? json_pack("{s:i, s:s}", "code", out->code, "message", out->message)
                            : json_null());
    for (size_t i = 0; i < out->n; i++)
        json_array_append_new(msgs, message_json(out, i, http_method));
    json_object_set_new(doc, "messages", msgs);
    char *s = json_dumps(doc, JSON_INDENT(2));
    puts(s ? s : "{}");
    free(s);
    json_decref(doc);
}

static void print_text(const struct outcome *out, const char *http_method,
                       const struct mg_conf_route *route, const struct mg_identity *id,
                       const struct mg_reqfile *rf, const char *path, int64_t now,
                       const struct mg_policy *g, const struct mg_policy *r,
                       const struct mg_conf *conf)
{
    char t[40];
    char buf[512];
    printf("route:    %s (%s)\n", route->name, route->from_raw);
    printf("policies: global %s; route %s\n",
           conf->policy ? mg_policy_path(g) : "none (the default admits everyone)",
           route->policy ? mg_policy_path(r)
           : route->allow_public_unauthenticated_access
               ? "none (public route: the default admits everyone)"
               : "none (the default admits any signed-in caller)");
    printf("caller:   ");
    if (id == NULL || id->method == MG_AUTH_NONE) {
        printf("anonymous");
    } else {
        put_safe(id->subject[0] ? id->subject : "(no subject)");
        printf(" (%s", mg_auth_method_name(id->method));
        if (id->email[0]) {
            printf(", ");
            put_safe(id->email);
        }
        if (id->n_groups) {
            printf(", groups ");
            for (size_t i = 0; i < id->n_groups; i++) {
                printf(i ? "," : "");
                put_safe(id->groups[i]);
            }
        }
        if (id->client_id[0]) {
            printf(", client ");
            put_safe(id->client_id);
        }
        printf(")");
    }
    if (route->allow_public_unauthenticated_access)
        printf("   [public route: every caller is judged as anonymous]");
    mg_audit_format_time(now * 1000, t, sizeof t);
    printf("\nrequest:  %s ", http_method);
    put_safe(path);
    printf(", source %s, time %s\n", rf->has_source ? rf->source_ip : "unknown", t);

    for (size_t i = 0; i < out->n; i++) {
        const struct mg_jsonrpc_msg *m = out->rpc ? &out->rpc->msgs[i] : NULL;
        const struct mg_judge_verdict *v = &out->vs[i];
        printf("\nmessage %zu: ", i + 1);
        if (m == NULL) {
            printf("%s without a body", http_method);
        } else {
            put_safe(m->method ? m->method : "(response)");
            if (m->name) {
                printf(" ");
                put_safe(m->name);
            }
            printf(" (%s", kind_name(m));
            if (m->id) {
                char *idj = json_dumps(m->id, JSON_ENCODE_ANY | JSON_COMPACT);
                printf(", id ");
                put_safe(idj);
                free(idj);
            }
            if (m->method && strcmp(m->method, "tools/call") == 0)
                printf(", tool class %s", mg_tool_class_name(v->tool_class));
            printf(")");
        }
        printf("\n  decision: %s\n  rule:     %s\n  reason:   %s\n  default:  %s\n",
               v->allow ? "allow" : "deny", v->rule[0] ? v->rule : "(none)", v->reason,
               v->by_default ? "yes (this method needs no allow rule)" : "no");
        if (answered(out, i)) {
            printf("  error:    %d ", v->code);
            put_safe(mg_judge_error_message(v, m, buf, sizeof buf));
            printf("\n");
        } else if (!v->allow) {
            printf("  error:    none (a %s in a batch gets no answer)\n", kind_name(m));
        }
    }
    printf("\n");
    if (out->status == 0)
        printf("result: allowed, the request is forwarded to the upstream\n");
    else if (out->code)
        printf("result: refused before any message is judged: HTTP %d, JSON-RPC %d %s; nothing "
               "is forwarded\n",
               out->status, out->code, out->message);
    else
        printf("result: refused: HTTP %d%s; nothing is forwarded\n", out->status,
               out->status == 200 ? " with the JSON-RPC errors above" : "");
}

/* --- test -------------------------------------------------------------------------------- */

static const struct mg_conf_route *find_route(const struct mg_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->n_routes; i++)
        if (strcmp(conf->routes[i].name, name) == 0)
            return &conf->routes[i];
    fprintf(stderr, "mcpgate: no route named '%s' in %s (routes:", name, conf->path);
    for (size_t i = 0; i < conf->n_routes; i++)
        fprintf(stderr, " %s", conf->routes[i].name);
    fprintf(stderr, ")\n");
    return NULL;
}

static int cmd_test(const struct opts *o)
{
    struct mg_conf *conf = NULL;
    struct mg_identity *id = NULL;
    struct mg_toolmap *tm = NULL;
    struct mg_reqfile rf = {0};
    struct mg_jsonrpc_info rpc = {0};
    struct outcome out = {0};
    char *text = NULL;
    size_t len = 0;
    char err[512];
    int rc = 2;

    if ((conf = load_conf(o->config)) == NULL)
        goto done;
    const struct mg_conf_route *route = find_route(conf, o->route);
    if (route == NULL)
        goto done;
    if (o->identity) {
        if ((text = read_file(o->identity, &len)) == NULL)
            goto done;
        if (mg_reqfile_identity(text, len, &id, err, sizeof err) < 0) {
            fprintf(stderr, "mcpgate: %s: %s\n", o->identity, err);
            goto done;
        }
        free(text);
        text = NULL;
    }
    if ((text = read_file(o->request, &len)) == NULL)
        goto done;
    if (mg_reqfile_parse(text, len, &rf, err, sizeof err) < 0) {
        fprintf(stderr, "mcpgate: %s: %s\n", o->request, err);
        goto done;
    }
    if (rf.tools) {
        tm = mg_toolmap_new();
        mg_toolmap_learn(tm, rf.tools);
    }
    /* A public route's callers are anonymous whatever they present. */
    if (id == NULL || route->allow_public_unauthenticated_access) {
        mg_identity_unref(id);
        id = mg_identity_new();
    }
    const char *path = rf.path ? rf.path : route->from.path[0] ? route->from.path : "/";
    int64_t now = rf.has_time ? rf.now : (int64_t)time(NULL);
    bool post = strcmp(rf.http_method, "POST") == 0;

    /* The refusals on the way to the policy phase, in the gateway's order. */
    if (post && rf.body_len > conf->max_body_bytes) {
        out.status = 413;
        out.code = -32600;
        out.message = "request body too large";
    } else if (id->method == MG_AUTH_NONE && !route->allow_public_unauthenticated_access) {
        out.status = 401;
        out.code = -32010;
        out.message = "authentication required";
    } else if (post) {
        if (rf.body_len > 0)
            mg_jsonrpc_inspect(rf.body, rf.body_len, &rpc);
        for (size_t i = 0; i < rpc.n_messages; i++)
            if (rpc.msgs[i].kind == MG_JSONRPC_RESPONSE)
                rpc.msgs[i].answers = rf.answers;
        if (rpc.shape == MG_JSONRPC_INVALID) {
            out.status = 400;
            out.code = -32700;
            out.message = rpc.error ? rpc.error : "invalid JSON-RPC body";
        } else {
            struct mg_judge_headers h = {0};
            h.mcp_method = rf.mcp_method;
            h.mcp_method_len = rf.mcp_method ? strlen(rf.mcp_method) : 0;
            h.n_mcp_method = rf.mcp_method != NULL;
            h.mcp_name = rf.mcp_name;
            h.mcp_name_len = rf.mcp_name ? strlen(rf.mcp_name) : 0;
            h.n_mcp_name = rf.mcp_name != NULL;
            h.protocol_version = rf.protocol_version;
            h.protocol_version_len = rf.protocol_version ? strlen(rf.protocol_version) : 0;
            h.n_protocol_version = rf.protocol_version != NULL;
            mg_judge_refusal_answer(mg_judge_precheck(&rpc, &h), &out.status, &out.code,
                                    &out.message);
            if (out.status == 0)
                out.rpc = &rpc;
        }
    }
    const struct mg_judge_route jr = {.conf = conf, .route = route, .toolmap = tm};
    const struct mg_judge_request jq = {
        .identity = id,
        .http_method = rf.http_method,
        .http_path = path,
        .source = rf.has_source ? (const struct sockaddr *)&rf.source : NULL,
        .now = now,
    };
    if (out.status == 0) {
        out.n = out.rpc ? out.rpc->n_messages : 1;
        out.vs = mg_xcalloc(out.n, sizeof *out.vs);
        if (mg_judge_messages(&jr, &jq, out.rpc, out.vs) > 0)
            out.status = mg_judge_refusal_status(out.rpc);
    }
    const struct mg_policy *g, *r;
    mg_judge_policies(&jr, &g, &r);
    if (o->json)
        print_json(o, &out, rf.http_method, g, r, conf, route);
    else
        print_text(&out, rf.http_method, route, id, &rf, path, now, g, r, conf);
    rc = out.status == 0 ? 0 : 1;
done:
    free(out.vs);
    free(text);
    mg_jsonrpc_info_fini(&rpc);
    mg_reqfile_fini(&rf);
    mg_toolmap_free(tm);
    mg_identity_unref(id);
    mg_conf_unref(conf);
    return rc;
}

/* --- lint -------------------------------------------------------------------------------- */

struct lint_ctx {
    const char *file;
    size_t n;
};

static void on_warn(void *ctx, const char *path, int line, int col, const char *msg)
{
    struct lint_ctx *c = ctx;
    printf("%s:%d:%d: ", c->file, line, col);
    put_safe(path);
    printf(": ");
    put_safe(msg);
    printf("\n");
    c->n++;
}

static int cmd_lint(const struct opts *o)
{
    struct mg_conf *conf = load_conf(o->config);
    struct lint_ctx c = {.file = o->config, .n = 0};
    if (conf == NULL)
        return 2;
    if (conf->policy)
        mg_policy_lint(conf->policy, on_warn, &c);
    for (size_t i = 0; i < conf->n_routes; i++) {
        const struct mg_conf_route *r = &conf->routes[i];
        if (r->policy) {
            mg_policy_lint(r->policy, on_warn, &c);
        } else if (!r->allow_public_unauthenticated_access) {
            printf("%s:%d:%d: routes[", c.file, r->line, r->col);
            put_safe(r->name);
            printf("]: route ");
            put_safe(r->name);
            printf(" has no policy (any signed-in caller may use every tool)\n");
            c.n++;
        }
    }
    fprintf(stderr, "%s: %zu finding%s\n", c.file, c.n, c.n == 1 ? "" : "s");
    mg_conf_unref(conf);
    return c.n ? 1 : 0;
}

int mg_cli_policy(int argc, char **argv)
{
    struct opts o = {0};
    if (parse(argc, argv, &o) != 0)
        return usage();
    return strcmp(o.sub, "test") == 0 ? cmd_test(&o) : cmd_lint(&o);
}

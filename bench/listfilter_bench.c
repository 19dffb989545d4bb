/* Micro-benchmark of list filtering (issue 4: <= 1 ms to filter one
 * tools/list answer per caller). The upstream's answer has 1,000 tools
 * (100 services x 10 verbs, each with a title, a description of a few
 * sentences, an input schema of 3-6 described properties, an output schema
 * for some, and annotations): about 1 MiB of JSON. The route has a 100-rule
 * policy in the style of bench/policy_bench.c (allow rules per team and tool
 * prefix, read-only rules for auditors, deny rules on tool class, tool names,
 * arguments, source addresses and local time) plus a 2-rule global policy
 * and 10 mcp.tool_classes overrides, loaded with the configuration loader.
 *
 * Per answer it does what the daemon does with a JSON list answer
 * (src/gw/proxy.c: up_on_done -> filter_message; keep_item ->
 * mg_gw__item_visible -> mg_judge_item_visible):
 *   parse      json_loadb of the upstream's bytes
 *   learn      mg_toolmap_learn of the tools array (the learned classes)
 *   filter     mg_listfilter_apply with a keep callback that fills the
 *              judge's route and request (time(NULL) included) and calls
 *              mg_judge_item_visible for every item, removing the hidden ones
 *   serialise  json_dumps(JSON_COMPACT)
 *   free       json_decref of the tree and free of the text
 * and, separately, "judge only": mg_judge_item_visible on every item of a
 * parsed answer, without removing anything, to split filter into judging
 * and array removal. Three callers: one who sees ~40% of the tools, an
 * admin who sees ~88%, and a member of one team who sees 8 tools.
 *
 *   make bench-listfilter   BENCH_LISTFILTER_N: answers per case (default 200);
 *                           BENCH_LISTFILTER_CASE: run only case 0..2 (for callgrind)
 * Exits 2 if the median of a case is over the 1 ms budget. */
#include "authn/identity.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "gw/judge.h"
#include "gw/toolmap.h"
#include "mcp/listfilter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#define SERVICES    100
#define VERBS       10
#define N_TOOLS     (SERVICES * VERBS)
#define TEAM_RULES  80 /* allow rules keyed on team-K and the prefix svcKK_ */
#define AUDIT_RULES 10
#define ARG_DENY    8

static const struct {
    const char *verb, *what;
    int cls; /* 0 read-only, 1 write, 2 destructive (annotations) */
} verbs[VERBS] = {
    {"list",
     "Lists the records, newest first, with their id, owner, status "
     "and last change. Results are paginated: pass the cursor of the previous page to "
     "continue; at most `limit` records are returned per page.",
     0},
    {"get",
     "Returns one record by its id, with every field, the change "
     "history of the last 30 days and the links to related records. Fails with "
     "not_found if the id is unknown or the record was purged.",
     0},
    {"search",
     "Searches the records by a free-text query and optional "
     "field filters. Quoted phrases match exactly; results are ranked by relevance "
     "and paginated. Deleted records are left out unless include_deleted is set.",
     0},
    {"export",
     "Exports the records that match the filters as CSV or JSON "
     "lines and returns a download link valid for one hour. Large exports run in "
     "the background; poll the returned job id.",
     0},
    {"create",
     "Creates a record from the given fields and returns its id. "
     "Required fields depend on the record type; unknown fields are refused. The "
     "caller becomes the owner unless owner is given.",
     1},
    {"update",
     "Changes fields of one record. Only the given fields change; "
     "pass null to clear an optional field. Fails with conflict if the record "
     "changed since the given revision.",
     1},
    {"import",
     "Imports records into the service from a CSV or JSON-lines document at a "
     "URL. Existing records with the same external id are updated; the import is "
     "atomic and its report lists every refused row.",
     1},
    {"sync",
     "Synchronises the records with the upstream system of record: "
     "fetches changes since the last sync and applies them. Returns the number of "
     "records created, changed and removed.",
     1},
    {"delete",
     "Deletes one record. The record stays recoverable for 30 days "
     "(see restore), after which it is purged. Linked records are not deleted.",
     2},
    {"purge",
     "Permanently removes the records that were deleted more than "
     "the given number of days ago. This cannot be undone; the count removed is "
     "returned.",
     2},
};

static const char *const nouns[] = {"invoice",  "customer", "ticket",   "order",    "shipment",
                                    "contract", "asset",    "incident", "employee", "campaign"};

/* The upstream's tools/list answer, as bytes. */
static void answer_json(struct mg_buf *b)
{
    mg_buf_appends(b, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[");
    for (int s = 0; s < SERVICES; s++) {
        const char *noun = nouns[s % 10];
        for (int v = 0; v < VERBS; v++) {
            int cls = verbs[v].cls;
            char desc[512];
            snprintf(desc, sizeof desc, "%s Service %d keeps %s records.", verbs[v].what, s, noun);
            if (s || v)
                mg_buf_appends(b, ",");
            mg_buf_appendf(b,
                           "{\"name\":\"svc%02d_%s\",\"title\":\"%s %s records (%d)\","
                           "\"description\":\"%s\",",
                           s, verbs[v].verb, verbs[v].verb, noun, s, desc);
            /* input schema: 3-6 described properties */
            mg_buf_appends(b, "\"inputSchema\":{\"type\":\"object\",\"properties\":{");
            mg_buf_appendf(b,
                           "\"id\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9-]{8,64}$\","
                           "\"description\":\"The %s id, as returned by list or create\"},"
                           "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":500,"
                           "\"default\":50,\"description\":\"Maximum number of records to "
                           "return\"},"
                           "\"cursor\":{\"type\":\"string\",\"description\":\"Opaque cursor "
                           "from the previous page\"}",
                           noun);
            if (v % 3 == 0)
                mg_buf_appends(b, ",\"filters\":{\"type\":\"object\",\"additionalProperties\":"
                                  "{\"type\":\"string\"},\"description\":\"Field name to exact "
                                  "value; all must match\"}");
            if (v % 2 == 0)
                mg_buf_appends(b, ",\"include_deleted\":{\"type\":\"boolean\",\"default\":false,"
                                  "\"description\":\"Also return deleted records\"},"
                                  "\"format\":{\"type\":\"string\",\"enum\":[\"json\",\"csv\","
                                  "\"jsonl\"],\"default\":\"json\"}");
            mg_buf_appends(b, "},\"required\":[\"id\"],\"additionalProperties\":false},");
            if (v % 2 == 1)
                mg_buf_appendf(b,
                               "\"outputSchema\":{\"type\":\"object\",\"properties\":{"
                               "\"id\":{\"type\":\"string\"},\"revision\":{\"type\":"
                               "\"integer\"},\"%s\":{\"type\":\"object\"}},\"required\":[\"id\","
                               "\"revision\"]},",
                               noun);
            mg_buf_appendf(b,
                           "\"annotations\":{\"title\":\"%s %s records\",\"readOnlyHint\":%s,"
                           "\"destructiveHint\":%s,\"idempotentHint\":%s,\"openWorldHint\":"
                           "false}}",
                           verbs[v].verb, noun, cls == 0 ? "true" : "false",
                           cls == 2 ? "true" : "false", cls == 0 ? "true" : "false");
        }
    }
    mg_buf_appends(b, "],\"nextCursor\":\"eyJwYWdlIjoyfQ\"}}");
}

/* A configuration with one route, its 100-rule policy, 10 class overrides
 * and a global policy. */
static void conf_yaml(struct mg_buf *b)
{
    mg_buf_appends(b, "policy:\n"
                      "  allow: {or: [{authenticated_user: true}]}\n"
                      "  deny: {or: [{email: {ends_with: '@blocked.example'}}]}\n"
                      "routes:\n"
                      "  - name: tools\n"
                      "    from: https://h.example/tools\n"
                      "    to: http://127.0.0.1:3000/mcp\n"
                      "    mcp:\n"
                      "      tool_classes:\n");
    for (int i = 0; i < 10; i++) /* 10 overrides: some exports count as writes */
        mg_buf_appendf(b, "        svc%02d_export: write\n", i * 10 + 3);
    mg_buf_appends(b, "    policy:\n");
    for (int k = 0; k < TEAM_RULES; k++)
        mg_buf_appendf(b,
                       "      - allow:\n"
                       "          and:\n"
                       "            - groups: {has: team-%d}\n"
                       "            - mcp_tool: {starts_with: svc%02d_}\n",
                       k, k);
    for (int j = 0; j < AUDIT_RULES; j++) {
        /* auditors may use the read-only tools of services 80-99, two per rule */
        int s0 = TEAM_RULES + 2 * j, s1 = s0 + 1;
        mg_buf_appendf(b,
                       "      - allow:\n"
                       "          and:\n"
                       "            - groups: {has: auditors}\n"
                       "            - mcp_tool_class: read_only\n"
                       "            - mcp_tool: {in: [svc%02d_list, svc%02d_get, svc%02d_search, "
                       "svc%02d_export, svc%02d_list, svc%02d_get, svc%02d_search, "
                       "svc%02d_export]}\n",
                       s0, s0, s0, s0, s1, s1, s1, s1);
    }
    mg_buf_appends(b, "      - deny:\n"
                      "          and:\n"
                      "            - mcp_tool_class: destructive\n"
                      "            - groups: {exclude: admins}\n"
                      "      - deny:\n"
                      "          and:\n"
                      "            - mcp_tool: {ends_with: _purge}\n"
                      "            - groups: {exclude: sre}\n");
    for (int i = 0; i < ARG_DENY; i++)
        mg_buf_appendf(b,
                       "      - deny:\n"
                       "          or:\n"
                       "            - mcp_argument/sql: {contains: DROP_%d}\n"
                       "            - mcp_argument/limit: {gt: %d}\n"
                       "            - source_ip: [10.%d.0.0/16, '2001:db8:%d::/48']\n"
                       "            - time_of_day: {timezone: Europe/Berlin, after: '02:00', "
                       "before: '02:30'}\n",
                       i, 100000 + i, i, i);
}

static struct mg_identity *caller(const char *email, int teams_from, int teams_to,
                                  const char *extra)
{
    struct mg_identity *id = mg_identity_new();
    json_t *g = json_array();
    char name[32];
    json_array_append_new(g, json_string("staff"));
    for (int k = teams_from; k < teams_to; k++) {
        snprintf(name, sizeof name, "team-%d", k);
        json_array_append_new(g, json_string(name));
    }
    for (const char *e = extra; e && *e;) {
        size_t n = strcspn(e, ",");
        json_array_append_new(g, json_stringn(e, n));
        e += n + (e[n] == ',');
    }
    free(id->subject);
    id->subject = mg_xmalloc(strlen(email) + 6);
    snprintf(id->subject, strlen(email) + 6, "user:%s", email);
    free(id->email);
    id->email = mg_xstrdup(email);
    id->method = MG_AUTH_OAUTH;
    if (mg_identity_set_groups_json(id, g) < 0)
        exit(1);
    json_decref(g);
    return id;
}

/* What keep_item in src/gw/proxy.c does per item: mg_gw__item_visible fills
 * the judge's route and request (time(NULL) each time) and asks the judge. */
struct ctx {
    const struct mg_conf *conf;
    const struct mg_conf_route *route;
    struct mg_toolmap *toolmap;
    const struct mg_identity *identity;
    const struct sockaddr *source;
};

static bool keep_item(void *v, const json_t *item)
{
    const struct ctx *c = v;
    struct mg_judge_route rt = {.conf = c->conf, .route = c->route, .toolmap = c->toolmap};
    struct mg_judge_request rq = {
        .identity = c->identity,
        .http_method = "POST",
        .http_path = "/tools",
        .source = c->source,
        /* the daemon's clock, moved to 12:00 UTC of the day so that the deny
         * rules' 02:00-02:30 Berlin window never applies to a run */
        .now = (int64_t)time(NULL) / 86400 * 86400 + 43200,
    };
    return mg_judge_item_visible(&rt, &rq, "tools/list", item);
}

/* ---------------------------------------------------------------------------
 * Reference (not the daemon's code): a prototype of the proposed fix, to show
 * what filtering costs without a DOM. One pass over the upstream's bytes
 * validates the whole document as JSON (structure, numbers, escapes, UTF-8,
 * control characters; depth at most 64), finds result.tools, takes from each
 * item only its top-level "name" and annotations.readOnlyHint /
 * destructiveHint (a duplicate of any of these keys, or of "result" / "tools",
 * fails the answer: the client must not see another name than the one
 * judged), judges it with the same evaluator (mg_policy_eval, the route's
 * mcp.tool_classes first, as judge.c does, policies looked up once per
 * list) and copies the bytes of the kept items verbatim. Not done here: the
 * id check of filter_message, learning the classes, SSE framing.
 */
struct scan {
    const unsigned char *p, *end;
    int depth;
};

static bool sc_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
    return s->p < s->end;
}

/* Any byte in the 8 that needs a look: '"', '\\', < 0x20 or >= 0x80. */
static inline bool swar_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t zq = (q - ones) & ~q, zb = (b - ones) & ~b;
    uint64_t lt = (x - ones * 0x20) & ~x; /* bytes < 0x20 (and some >= 0x80, caught anyway) */
    return ((zq | zb | lt) & high) || (x & high);
}

static int utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return end - p >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : -1;
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return -1;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return -1; /* overlong, surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return -1;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return -1;
        return 4;
    }
    return -1;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A string at s->p (on the quote). Its raw bytes between the quotes in
 * [*a, *b); *esc: it has escapes. */
static bool sc_string(struct scan *s, const unsigned char **a, const unsigned char **b, bool *esc)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    *a = p;
    *esc = false;
    for (;;) {
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (swar_special(x))
                break;
            p += 8;
        }
        if (p >= end)
            return false;
        unsigned c = *p;
        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            *esc = true;
            if (end - p < 2)
                return false;
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't': p += 2; continue;
            case 'u': {
                if (end - p < 6)
                    return false;
                int u = hex4(p + 2);
                if (u < 0)
                    return false;
                p += 6;
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return false; /* a lone low surrogate */
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                        return false;
                    int l = hex4(p + 2);
                    if (l < 0xDC00 || l > 0xDFFF)
                        return false;
                    p += 6;
                }
                continue;
            }
            default: return false;
            }
        }
        if (c >= 0x80) {
            int n = utf8_len(p, end);
            if (n < 0)
                return false;
            p += n;
            continue;
        }
        p++;
    }
    *b = p;
    s->p = p + 1;
    return true;
}

static bool sc_number(struct scan *s)
{
    const unsigned char *p = s->p, *end = s->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return false;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (p < end && *p == '.') {
        const unsigned char *q = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == q)
            return false;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const unsigned char *q = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == q)
            return false;
    }
    s->p = p;
    return true;
}

static bool sc_lit(struct scan *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool sc_value(struct scan *s);

/* An object or array at s->p. */
static bool sc_container(struct scan *s)
{
    bool obj = *s->p == '{';
    const unsigned char *a, *b;
    bool esc;
    if (++s->depth > 64)
        return false;
    s->p++;
    if (!sc_ws(s))
        return false;
    if (*s->p == (obj ? '}' : ']')) {
        s->p++;
        s->depth--;
        return true;
    }
    for (;;) {
        if (obj) {
            if (*s->p != '"' || !sc_string(s, &a, &b, &esc) || !sc_ws(s) || *s->p != ':')
                return false;
            s->p++;
            if (!sc_ws(s))
                return false;
        }
        if (!sc_value(s) || !sc_ws(s))
            return false;
        if (*s->p == ',') {
            s->p++;
            if (!sc_ws(s))
                return false;
            continue;
        }
        if (*s->p != (obj ? '}' : ']'))
            return false;
        s->p++;
        s->depth--;
        return true;
    }
}

static bool sc_value(struct scan *s)
{
    const unsigned char *a, *b;
    bool esc;
    switch (*s->p) {
    case '{':
    case '[': return sc_container(s);
    case '"': return sc_string(s, &a, &b, &esc);
    case 't': return sc_lit(s, "true", 4);
    case 'f': return sc_lit(s, "false", 5);
    case 'n': return sc_lit(s, "null", 4);
    default: return sc_number(s);
    }
}

static bool key_is(const unsigned char *a, const unsigned char *b, bool esc, const char *k)
{
    /* An escaped key ("na\u006de") is a key a client may read as "name":
     * such keys fail the answer in the caller (see item_scan). */
    return !esc && (size_t)(b - a) == strlen(k) && memcmp(a, k, (size_t)(b - a)) == 0;
}

struct item {
    const unsigned char *start, *end;
    char name[257];
    bool has_name, ro, ro_set, destr_false;
};

/* The value at s->p is one item of the tools array. */
static bool item_scan(struct scan *s, struct item *it)
{
    const unsigned char *a, *b;
    bool esc, seen_ann = false;
    it->start = s->p;
    it->has_name = it->ro = it->ro_set = it->destr_false = false;
    if (*s->p != '{') {
        if (!sc_value(s))
            return false;
        it->end = s->p;
        return true;
    }
    s->depth++;
    s->p++;
    if (!sc_ws(s))
        return false;
    if (*s->p == '}')
        goto done;
    for (;;) {
        if (*s->p != '"' || !sc_string(s, &a, &b, &esc) || !sc_ws(s) || *s->p != ':')
            return false;
        if (esc)
            return false; /* fail closed on escaped keys (rare; the DOM path can take them) */
        s->p++;
        if (!sc_ws(s))
            return false;
        if (key_is(a, b, esc, "name")) {
            const unsigned char *va, *vb;
            bool vesc;
            if (it->has_name || *s->p != '"' || !sc_string(s, &va, &vb, &vesc) || vesc ||
                vb - va > 256 || memchr(va, 0, (size_t)(vb - va)))
                return false; /* duplicate, not a plain string: let the DOM path decide */
            memcpy(it->name, va, (size_t)(vb - va));
            it->name[vb - va] = 0;
            it->has_name = true;
        } else if (key_is(a, b, esc, "annotations")) {
            if (seen_ann)
                return false;
            seen_ann = true;
            if (*s->p == '{') {
                bool seen_ro = false, seen_de = false;
                s->depth++;
                s->p++;
                if (!sc_ws(s))
                    return false;
                if (*s->p != '}') {
                    for (;;) {
                        const unsigned char *ka, *kb;
                        bool kesc;
                        if (*s->p != '"' || !sc_string(s, &ka, &kb, &kesc) || kesc || !sc_ws(s) ||
                            *s->p != ':')
                            return false;
                        s->p++;
                        if (!sc_ws(s))
                            return false;
                        bool ro = key_is(ka, kb, kesc, "readOnlyHint"),
                             de = key_is(ka, kb, kesc, "destructiveHint");
                        if ((ro && seen_ro) || (de && seen_de))
                            return false;
                        seen_ro |= ro;
                        seen_de |= de;
                        const unsigned char *v = s->p;
                        if (!sc_value(s))
                            return false;
                        if (ro)
                            it->ro = s->p - v == 4 && memcmp(v, "true", 4) == 0;
                        if (de)
                            it->destr_false = s->p - v == 5 && memcmp(v, "false", 5) == 0;
                        if (!sc_ws(s))
                            return false;
                        if (*s->p == ',') {
                            s->p++;
                            if (!sc_ws(s))
                                return false;
                            continue;
                        }
                        if (*s->p != '}')
                            return false;
                        break;
                    }
                }
                s->p++;
                s->depth--;
                it->ro_set = true;
            } else if (!sc_value(s)) {
                return false;
            }
        } else if (!sc_value(s)) {
            return false;
        }
        if (!sc_ws(s))
            return false;
        if (*s->p == ',') {
            s->p++;
            if (!sc_ws(s))
                return false;
            continue;
        }
        if (*s->p != '}')
            return false;
        break;
    }
done:
    s->p++;
    s->depth--;
    it->end = s->p;
    return true;
}

struct splice_stats {
    uint64_t scan_ns, judge_ns; /* judge_ns: inside scan_ns */
    size_t kept;
};

/* Filters the answer into out (reset first); 0, or -1 if it is not JSON or
 * not a shape this path takes (then the DOM path would). */
static int splice_filter(const char *doc, size_t len, struct ctx *cx, struct mg_buf *out,
                         struct splice_stats *st)
{
    struct scan s = {(const unsigned char *)doc, (const unsigned char *)doc + len, 0};
    const unsigned char *a, *b, *rest = NULL;
    bool esc, seen_result = false, seen_tools = false;
    const struct mg_policy *g, *r;
    struct mg_judge_route rt = {.conf = cx->conf, .route = cx->route, .toolmap = cx->toolmap};
    struct mg_policy_input in = {
        .identity = cx->identity,
        .http_method = "POST",
        .http_path = "/tools",
        .source = cx->source,
        .now = (int64_t)time(NULL) / 86400 * 86400 + 43200,
        .mcp_method = "tools/call",
    };
    struct item it;
    uint64_t jt = 0;
    mg_judge_policies(&rt, &g, &r);
    mg_buf_reset(out);
    st->kept = 0;
    if (!sc_ws(&s) || *s.p != '{')
        return -1;
    s.p++;
    s.depth = 1;
    if (!sc_ws(&s))
        return -1;
    while (*s.p != '}') {
        if (*s.p != '"' || !sc_string(&s, &a, &b, &esc) || esc || !sc_ws(&s) || *s.p != ':')
            return -1;
        s.p++;
        if (!sc_ws(&s))
            return -1;
        if (key_is(a, b, esc, "result")) {
            if (seen_result || *s.p != '{')
                return -1;
            seen_result = true;
            s.p++;
            s.depth++;
            if (!sc_ws(&s))
                return -1;
            while (*s.p != '}') {
                if (*s.p != '"' || !sc_string(&s, &a, &b, &esc) || esc || !sc_ws(&s) || *s.p != ':')
                    return -1;
                s.p++;
                if (!sc_ws(&s))
                    return -1;
                if (key_is(a, b, esc, "tools")) {
                    if (seen_tools || *s.p != '[')
                        return -1;
                    seen_tools = true;
                    mg_buf_append(out, doc, (size_t)(s.p + 1 - (const unsigned char *)doc));
                    s.p++;
                    s.depth++;
                    if (!sc_ws(&s))
                        return -1;
                    bool first = true;
                    while (*s.p != ']') {
                        if (!item_scan(&s, &it))
                            return -1;
                        uint64_t j0 = mg_now_ns();
                        bool keep = false;
                        if (it.has_name) {
                            int c = -1;
                            for (size_t i = 0; i < cx->route->n_tool_classes; i++)
                                if (strcmp(cx->route->tool_classes[i].tool, it.name) == 0) {
                                    c = cx->route->tool_classes[i].tool_class;
                                    break;
                                }
                            in.tool_class = c >= 0           ? (enum mg_tool_class)c
                                            : !it.ro_set     ? MG_TOOL_DESTRUCTIVE
                                            : it.ro          ? MG_TOOL_READ_ONLY
                                            : it.destr_false ? MG_TOOL_WRITE
                                                             : MG_TOOL_DESTRUCTIVE;
                            in.mcp_name = it.name;
                            struct mg_policy_decision d;
                            mg_policy_eval(g, r, &in, &d);
                            keep = d.allow;
                        }
                        jt += mg_now_ns() - j0;
                        if (keep) {
                            if (!first)
                                mg_buf_append(out, ",", 1);
                            mg_buf_append(out, it.start, (size_t)(it.end - it.start));
                            first = false;
                            st->kept++;
                        }
                        if (!sc_ws(&s))
                            return -1;
                        if (*s.p == ',') {
                            s.p++;
                            if (!sc_ws(&s))
                                return -1;
                        } else if (*s.p != ']')
                            return -1;
                    }
                    s.depth--;
                    /* from the closing bracket on, the rest is copied at the end */
                    rest = s.p;
                    s.p++;
                } else if (!sc_value(&s)) {
                    return -1;
                }
                if (!sc_ws(&s))
                    return -1;
                if (*s.p == ',') {
                    s.p++;
                    if (!sc_ws(&s))
                        return -1;
                } else if (*s.p != '}')
                    return -1;
            }
            s.p++;
            s.depth--;
        } else if (!sc_value(&s)) {
            return -1;
        }
        if (!sc_ws(&s))
            return -1;
        if (*s.p == ',') {
            s.p++;
            if (!sc_ws(&s))
                return -1;
        } else if (*s.p != '}')
            return -1;
    }
    s.p++;
    if (sc_ws(&s) || rest == NULL)
        return -1; /* trailing bytes, or no tools */
    mg_buf_append(out, rest, len - (size_t)(rest - (const unsigned char *)doc));
    st->judge_ns = jt;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

enum {
    P_PARSE,
    P_LEARN,
    P_FILTER,
    P_DUMP,
    P_FREE,
    P_TOTAL,
    P_JUDGE,
    P_SPLICE,
    P_SPJUDGE,
    N_PHASES
};

int main(void)
{
    const char *env = getenv("BENCH_LISTFILTER_N"), *only = getenv("BENCH_LISTFILTER_CASE");
    long n = env ? strtol(env, NULL, 10) : 200;
    struct mg_buf up, y, spl;
    struct mg_conf *conf = NULL;
    char *err = NULL;
    struct sockaddr_in src = {.sin_family = AF_INET};
    int rc = 0;

    if (n < 5)
        n = 5;
    inet_pton(AF_INET, "192.0.2.10", &src.sin_addr);
    mg_buf_init(&up, 8 << 20);
    answer_json(&up);
    mg_buf_init(&y, 1 << 20);
    mg_buf_init(&spl, 8 << 20);
    conf_yaml(&y);
    if (mg_conf_load_string("listfilter_bench.yaml", y.data, y.len, &conf, &err) != 0) {
        fprintf(stderr, "listfilter_bench: %s\n", err ? err : "configuration error");
        return 1;
    }
    const struct mg_conf_route *route = &conf->routes[0];
    if (mg_policy_n_rules(route->policy) != TEAM_RULES + AUDIT_RULES + 2 + ARG_DENY) {
        fprintf(stderr, "listfilter_bench: the route policy has %zu rules\n",
                mg_policy_n_rules(route->policy));
        return 1;
    }
    struct mg_toolmap *toolmap = mg_toolmap_new();

    static const struct {
        const char *label, *email, *extra;
        int from, to;
        size_t kept; /* expected */
    } cases[] = {
        /* teams 0-39: their services' read and write tools (8 x 40 = 320, the
         * 10 overrides change no visibility) plus auditors: the 4 read-only
         * tools of services 80-99 (80, minus svc83_export and svc93_export,
         * overridden to write) = 398 */
        {"40 teams + auditors (sees 398)", "ann@example.com", "auditors", 0, 40, 398},
        /* every team, admins, sre: all tools of services 0-79 (800) + 78 */
        {"admin of all 80 teams (sees 878)", "root@example.com", "auditors,admins,sre", 0, 80, 878},
        /* team-5: svc05's 8 read and write tools */
        {"one team (sees 8)", "bob@example.com", "", 5, 6, 8},
    };
    printf("listfilter_bench: a tools/list answer of %d tools, %zu bytes (%.2f MiB); route policy "
           "of %zu rules + 2 global; %ld answers per case\n",
           N_TOOLS, up.len, (double)up.len / 1048576.0, mg_policy_n_rules(route->policy), n);
    printf("  %-34s %10s %10s %10s %10s %10s | %10s | %10s  %s\n", "case (median ms per answer)",
           "parse", "learn", "filter", "serialise", "free", "TOTAL", "judge only", "output bytes");

    for (size_t c = 0; c < MG_ARRAY_LEN(cases); c++) {
        if (only && (size_t)strtol(only, NULL, 10) != c)
            continue;
        struct mg_identity *id = caller(cases[c].email, cases[c].from, cases[c].to, cases[c].extra);
        struct ctx cx = {.conf = conf,
                         .route = route,
                         .toolmap = toolmap,
                         .identity = id,
                         .source = (const struct sockaddr *)&src};
        uint64_t *t[N_PHASES];
        size_t out_len = 0;
        for (int ph = 0; ph < N_PHASES; ph++)
            t[ph] = mg_xcalloc((size_t)n, sizeof(uint64_t));
        for (long i = -n / 10 - 1; i < n; i++) { /* the first tenth warms up */
            json_error_t je;
            uint64_t a = mg_now_ns();
            json_t *msg = json_loadb(up.data, up.len, 0, &je);
            uint64_t b = mg_now_ns();
            if (msg == NULL) {
                fprintf(stderr, "listfilter_bench: %s\n", je.text);
                return 1;
            }
            json_t *tools = json_object_get(json_object_get(msg, "result"), "tools");
            mg_toolmap_learn(toolmap, tools);
            uint64_t cc = mg_now_ns();
            size_t removed = 0;
            mg_listfilter_apply(msg, "tools", keep_item, &cx, &removed);
            uint64_t d = mg_now_ns();
            char *out = json_dumps(msg, JSON_COMPACT);
            uint64_t e = mg_now_ns();
            size_t kept = json_array_size(tools);
            out_len = out ? strlen(out) : 0;
            json_decref(msg);
            free(out);
            uint64_t f = mg_now_ns();
            if (kept != cases[c].kept || removed + kept != N_TOOLS || out_len == 0) {
                fprintf(stderr, "listfilter_bench: %s: kept %zu, expected %zu\n", cases[c].label,
                        kept, cases[c].kept);
                return 1;
            }
            /* judge only, on a fresh tree, outside the timed pipeline */
            json_t *m2 = json_loadb(up.data, up.len, 0, &je);
            json_t *t2 = json_object_get(json_object_get(m2, "result"), "tools");
            size_t vis = 0, k;
            json_t *it;
            uint64_t g = mg_now_ns();
            json_array_foreach(t2, k, it) vis += keep_item(&cx, it);
            uint64_t h = mg_now_ns();
            json_decref(m2);
            if (vis != cases[c].kept)
                return 1;
            /* the prototype of the proposed fix, on the same bytes */
            struct splice_stats st;
            uint64_t sp0 = mg_now_ns();
            if (splice_filter(up.data, up.len, &cx, &spl, &st) < 0 || st.kept != cases[c].kept) {
                fprintf(stderr, "listfilter_bench: splice prototype failed (%s)\n", cases[c].label);
                return 1;
            }
            uint64_t sp1 = mg_now_ns();
            if (i == -n / 10 - 1) { /* once: the same answer as the daemon's path */
                json_t *x = json_loadb(spl.data, spl.len, 0, &je),
                       *y2 = json_loadb(up.data, up.len, 0, &je);
                mg_listfilter_apply(y2, "tools", keep_item, &cx, NULL);
                if (x == NULL || !json_equal(x, y2)) {
                    fprintf(stderr, "listfilter_bench: splice output differs (%s)\n",
                            cases[c].label);
                    return 1;
                }
                json_decref(x);
                json_decref(y2);
            }
            if (i < 0)
                continue;
            t[P_PARSE][i] = b - a;
            t[P_LEARN][i] = cc - b;
            t[P_FILTER][i] = d - cc;
            t[P_DUMP][i] = e - d;
            t[P_FREE][i] = f - e;
            t[P_TOTAL][i] = f - a;
            t[P_JUDGE][i] = h - g;
            t[P_SPLICE][i] = sp1 - sp0;
            t[P_SPJUDGE][i] = st.judge_ns;
        }
        double med[N_PHASES], mn[N_PHASES];
        for (int ph = 0; ph < N_PHASES; ph++) {
            qsort(t[ph], (size_t)n, sizeof(uint64_t), cmp_u64);
            med[ph] = (double)t[ph][n / 2] / 1e6;
            mn[ph] = (double)t[ph][0] / 1e6;
        }
        printf("  %-34s %10.3f %10.3f %10.3f %10.3f %10.3f | %10.3f | %10.3f  %zu\n",
               cases[c].label, med[P_PARSE], med[P_LEARN], med[P_FILTER], med[P_DUMP], med[P_FREE],
               med[P_TOTAL], med[P_JUDGE], out_len);
        printf("  %-34s %10.3f %10.3f %10.3f %10.3f %10.3f | %10.3f | %10.3f\n", "  (minimum)",
               mn[P_PARSE], mn[P_LEARN], mn[P_FILTER], mn[P_DUMP], mn[P_FREE], mn[P_TOTAL],
               mn[P_JUDGE]);
        printf("  %-34s %.2f of the 1 ms budget; judge %.0f ns per item\n", "", med[P_TOTAL],
               med[P_JUDGE] * 1e6 / N_TOOLS);
        printf("  %-34s reference, one-pass splice prototype (not the daemon's code): %.3f ms "
               "(min %.3f), of which evaluating %.3f ms; %zu bytes out\n",
               "", med[P_SPLICE], mn[P_SPLICE], med[P_SPJUDGE], spl.len);
        if (med[P_TOTAL] > 1.0)
            rc = 2;
        for (int ph = 0; ph < N_PHASES; ph++)
            free(t[ph]);
        mg_identity_unref(id);
    }
    mg_toolmap_free(toolmap);
    mg_conf_unref(conf);
    mg_buf_fini(&up);
    mg_buf_fini(&y);
    mg_buf_fini(&spl);
    free(err);
    return rc;
}

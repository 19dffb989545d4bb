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
 * (src/gw/proxy.c: up_on_done -> filter_message):
 *   TOTAL      mg_listscan_filter of the upstream's bytes with the request's
 *              id, its keep callback gathering name/class pairs
 *              (mg_toolmap_batch_add) and asking one mg_judge_list prepared
 *              per answer (mg_gw__judge_list: time(NULL) included), then
 *              mg_toolmap_learn_batch
 * and, apart, to split TOTAL into its parts:
 *   scan       mg_listscan_filter alone, a callback that keeps everything
 *              and judges nothing: validation and item boundaries
 *   judge      mg_judge_list_new + mg_judge_list_visible of every item
 *              (names and classes taken from the answer beforehand)
 *   learn      mg_toolmap_learn_batch (the list is the one learned last
 *              time: a SHA-256 and a compare)
 *   DOM        the peer, the path before this one: json_loadb, the items
 *              judged the same way and removed, json_dumps(JSON_COMPACT),
 *              json_decref + free (a tenth of the runs: it is slow)
 * Three callers: one who sees ~40% of the tools, an admin who sees ~88%,
 * and a member of one team who sees 8 tools. Each case checks the number
 * of items kept and that the output is json_equal to the DOM path's.
 *
 *   make bench-listfilter   BENCH_LISTFILTER_N: answers per case (default 200);
 *                           BENCH_LISTFILTER_CASE: run only case 0..2 (for callgrind)
 * Exits 2 if the median TOTAL of a case is over the 1 ms budget. */
#include "authn/identity.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "gw/judge.h"
#include "gw/toolmap.h"
#include "mcp/listfilter.h"
#include "mcp/listscan.h"

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

/* The daemon's clock, moved to 12:00 UTC of the day so that the deny rules'
 * 02:00-02:30 Berlin window never applies to a run. */
static int64_t noon(void)
{
    return (int64_t)time(NULL) / 86400 * 86400 + 43200;
}

/* What mg_gw__judge_list (src/gw/decide.c) fills for a request. */
struct ctx {
    struct mg_judge_route rt;
    struct mg_judge_request rq;
};

static struct mg_judge_list *judge_list(const struct ctx *c)
{
    struct mg_judge_request rq = c->rq;
    rq.now = noon();
    return mg_judge_list_new(&c->rt, &rq, "tools/list");
}

/* filter_message's pass (src/gw/proxy.c): the judge prepared at the first
 * item, the tools gathered to be learned. */
struct pass {
    const struct ctx *c;
    struct mg_judge_list *judge;
    struct mg_toolmap_batch learn;
};

static bool keep_item(void *v, const struct mg_listscan_item *it)
{
    struct pass *lp = v;
    if (lp->judge == NULL)
        lp->judge = judge_list(lp->c);
    if (it->name)
        mg_toolmap_batch_add(&lp->learn, it->name, it->name_len, it->tool_class);
    return mg_judge_list_visible(lp->judge, it->name, (int)it->tool_class);
}

static int daemon_pass(const struct ctx *c, const struct mg_buf *up, const json_t *id,
                       struct mg_toolmap *tm, struct mg_buf *out, struct mg_listscan_result *res)
{
    struct pass lp = {.c = c};
    mg_toolmap_batch_init(&lp.learn);
    mg_buf_reset(out);
    int rc = mg_listscan_filter(up->data, up->len, "tools", id, keep_item, &lp, out, res);
    if (rc == 0 && res->filtered)
        mg_toolmap_learn_batch(tm, &lp.learn);
    mg_toolmap_batch_fini(&lp.learn);
    mg_judge_list_free(lp.judge);
    return rc;
}

/* The answer's items, gathered once for the judge-only phase. */
struct items {
    char *names[N_TOOLS];
    enum mg_tool_class cls[N_TOOLS];
    size_t n;
};

static bool gather(void *v, const struct mg_listscan_item *it)
{
    struct items *x = v;
    if (x && x->n < N_TOOLS) {
        x->names[x->n] = mg_xstrdup(it->name ? it->name : "");
        x->cls[x->n++] = it->tool_class;
    }
    return true;
}

/* The peer: the DOM path the daemon had before (jansson parse, remove the
 * hidden items, serialise), judging with the same prepared list. Returns
 * the text (the caller frees it). */
static char *dom_pass(const struct ctx *c, const struct mg_buf *up, size_t *kept)
{
    json_error_t je;
    json_t *msg = json_loadb(up->data, up->len, 0, &je);
    if (msg == NULL)
        return NULL;
    struct mg_judge_list *l = judge_list(c);
    json_t *tools = json_object_get(json_object_get(msg, "result"), "tools");
    for (size_t i = json_array_size(tools); i-- > 0;) {
        const json_t *it = json_array_get(tools, i);
        if (!mg_judge_list_visible(l, mg_listfilter_item_name("tools", it),
                                   (int)mg_listfilter_tool_class(it)))
            json_array_remove(tools, i);
    }
    *kept = json_array_size(tools);
    mg_judge_list_free(l);
    char *out = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    return out;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

enum { P_TOTAL, P_SCAN, P_JUDGE, P_LEARN, P_DOM, N_PHASES };

int main(void)
{
    const char *env = getenv("BENCH_LISTFILTER_N"), *only = getenv("BENCH_LISTFILTER_CASE");
    long n = env ? strtol(env, NULL, 10) : 200;
    struct mg_buf up, y, out;
    struct mg_conf *conf = NULL;
    char *err = NULL;
    struct sockaddr_in src = {.sin_family = AF_INET};
    json_t *id = json_integer(2);
    int rc = 0;

    if (n < 10)
        n = 10;
    long n_dom = n / 10;
    inet_pton(AF_INET, "192.0.2.10", &src.sin_addr);
    mg_buf_init(&up, 8 << 20);
    answer_json(&up);
    mg_buf_init(&y, 1 << 20);
    mg_buf_init(&out, 8 << 20);
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
           "of %zu rules + 2 global; %ld answers per case (%ld for the DOM peer)\n",
           N_TOOLS, up.len, (double)up.len / 1048576.0, mg_policy_n_rules(route->policy), n, n_dom);
    printf("  %-34s %8s %8s %8s | %8s %8s | %8s %7s  %s\n", "case (median ms per answer)", "scan",
           "judge", "learn", "TOTAL", "(min)", "DOM", "DOM/new", "bytes out");

    /* the items, once, for the judge-only phase */
    struct items items = {0};
    {
        struct mg_listscan_result res;
        struct mg_buf tmp;
        mg_buf_init(&tmp, up.len);
        if (mg_listscan_filter(up.data, up.len, "tools", id, gather, &items, &tmp, &res) != 0 ||
            items.n != N_TOOLS) {
            fprintf(stderr, "listfilter_bench: the answer does not scan\n");
            return 1;
        }
        mg_buf_fini(&tmp);
    }

    for (size_t c = 0; c < MG_ARRAY_LEN(cases); c++) {
        if (only && (size_t)strtol(only, NULL, 10) != c)
            continue;
        struct mg_identity *ident =
            caller(cases[c].email, cases[c].from, cases[c].to, cases[c].extra);
        struct ctx cx = {
            .rt = {.conf = conf, .route = route, .toolmap = toolmap},
            .rq = {.identity = ident,
                   .http_method = "POST",
                   .http_path = "/tools",
                   .source = (const struct sockaddr *)&src},
        };
        uint64_t *t[N_PHASES];
        for (int ph = 0; ph < N_PHASES; ph++)
            t[ph] = mg_xcalloc((size_t)n, sizeof(uint64_t));

        /* once: the same answer as the DOM path's */
        struct mg_listscan_result res;
        size_t dom_kept = 0;
        char *dom = dom_pass(&cx, &up, &dom_kept);
        if (daemon_pass(&cx, &up, id, toolmap, &out, &res) != 0 || !res.filtered ||
            res.n_kept != cases[c].kept || dom == NULL || dom_kept != cases[c].kept) {
            fprintf(stderr, "listfilter_bench: %s: kept %zu (DOM %zu), expected %zu\n",
                    cases[c].label, res.n_kept, dom_kept, cases[c].kept);
            return 1;
        }
        json_t *a = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL),
               *b = json_loads(dom, 0, NULL);
        if (a == NULL || !json_equal(a, b)) {
            fprintf(stderr, "listfilter_bench: %s: the output differs from the DOM path's\n",
                    cases[c].label);
            return 1;
        }
        json_decref(a);
        json_decref(b);
        free(dom);
        size_t out_len = out.len;

        for (long i = -n / 10 - 1; i < n; i++) { /* the first tenth warms up */
            uint64_t t0 = mg_now_ns();
            int r = daemon_pass(&cx, &up, id, toolmap, &out, &res);
            uint64_t t1 = mg_now_ns();
            if (r != 0 || res.n_kept != cases[c].kept)
                return 1;
            /* the parts, apart */
            uint64_t t2 = mg_now_ns();
            r = mg_listscan_filter(up.data, up.len, "tools", id, gather, NULL, &out, &res);
            uint64_t t3 = mg_now_ns();
            struct mg_judge_list *l = judge_list(&cx);
            size_t vis = 0;
            for (size_t k = 0; k < items.n; k++)
                vis += mg_judge_list_visible(l, items.names[k], (int)items.cls[k]);
            mg_judge_list_free(l);
            uint64_t t4 = mg_now_ns();
            struct mg_toolmap_batch bt;
            mg_toolmap_batch_init(&bt);
            for (size_t k = 0; k < items.n; k++)
                mg_toolmap_batch_add(&bt, items.names[k], strlen(items.names[k]), items.cls[k]);
            uint64_t t5 = mg_now_ns();
            mg_toolmap_learn_batch(toolmap, &bt);
            uint64_t t6 = mg_now_ns();
            mg_toolmap_batch_fini(&bt);
            if (r != 0 || vis != cases[c].kept)
                return 1;
            uint64_t t7 = 0, t8 = 0;
            if (i >= 0 && i < n_dom) {
                size_t kept;
                t7 = mg_now_ns();
                free(dom_pass(&cx, &up, &kept));
                t8 = mg_now_ns();
            }
            if (i < 0)
                continue;
            t[P_TOTAL][i] = t1 - t0;
            t[P_SCAN][i] = t3 - t2;
            t[P_JUDGE][i] = t4 - t3;
            t[P_LEARN][i] = t6 - t5;
            if (i < n_dom)
                t[P_DOM][i] = t8 - t7;
        }
        double med[N_PHASES], mn[N_PHASES];
        for (int ph = 0; ph < N_PHASES; ph++) {
            size_t m = ph == P_DOM ? (size_t)n_dom : (size_t)n;
            qsort(t[ph], m, sizeof(uint64_t), cmp_u64);
            med[ph] = (double)t[ph][m / 2] / 1e6;
            mn[ph] = (double)t[ph][0] / 1e6;
        }
        printf("  %-34s %8.3f %8.3f %8.3f | %8.3f %8.3f | %8.2f %6.0fx  %zu\n", cases[c].label,
               med[P_SCAN], med[P_JUDGE], med[P_LEARN], med[P_TOTAL], mn[P_TOTAL], med[P_DOM],
               med[P_DOM] / med[P_TOTAL], out_len);
        printf("  %-34s %.2f of the 1 ms budget; scan %.2f ms/MiB; judge %.0f ns per item\n", "",
               med[P_TOTAL], med[P_SCAN] / ((double)up.len / 1048576.0),
               med[P_JUDGE] * 1e6 / N_TOOLS);
        if (med[P_TOTAL] > 1.0)
            rc = 2;
        for (int ph = 0; ph < N_PHASES; ph++)
            free(t[ph]);
        mg_identity_unref(ident);
    }
    for (size_t k = 0; k < items.n; k++)
        free(items.names[k]);
    json_decref(id);
    mg_toolmap_free(toolmap);
    mg_conf_unref(conf);
    mg_buf_fini(&up);
    mg_buf_fini(&y);
    mg_buf_fini(&out);
    free(err);
    return rc;
}

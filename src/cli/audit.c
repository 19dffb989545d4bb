/* `mcpgate audit query` and `mcpgate audit verify`: the decision trail the
 * audit sink wrote, read from the file or the store the configuration
 * names (or any file given with --file, such as a saved copy of the stdout
 * sink). Records are untrusted text (tool names come from callers): the
 * table shows control characters as '?', JSON output escapes them. */
#include "cli/args.h"
#include "cli/cli.h"

#include "audit/verify.h"
#include "conf/conf.h"
#include "store/store.h"

#include <time.h>

struct opts {
    const char *config, *file;
    const char *user, *tool, *decision, *route, *method, *since, *limit;
    bool json;
    const char *sub;
};

static const char *const usage_text =
    "usage:\n"
    "  mcpgate audit query [--user SUBJECT|EMAIL] [--tool NAME] [--decision allow|deny]\n"
    "                      [--route NAME] [--method METHOD] [--since DURATION|RFC3339]\n"
    "                      [--limit N] [--json] (-c FILE | --file AUDIT.jsonl)\n"
    "  mcpgate audit verify (-c FILE | --file AUDIT.jsonl)\n"
    "query prints the newest matching records (100 unless --limit, at most 10000), oldest\n"
    "first; --since takes 15m, 24h, 7d, 2025-06-01 or 2025-06-01T12:00:00Z.\n"
    "verify walks the hash chain: exit 0 if intact (and prints its head), 1 at the first\n"
    "edited, inserted or deleted record.\n";

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
        {"--file", offsetof(struct opts, file), false},
        {"--user", offsetof(struct opts, user), false},
        {"--tool", offsetof(struct opts, tool), false},
        {"--decision", offsetof(struct opts, decision), false},
        {"--route", offsetof(struct opts, route), false},
        {"--method", offsetof(struct opts, method), false},
        {"--since", offsetof(struct opts, since), false},
        {"--limit", offsetof(struct opts, limit), false},
        {"--json", offsetof(struct opts, json), true},
    };
    size_t n_pos = 0;
    if (mg_cli_parse(argc, argv, opts, MG_ARRAY_LEN(opts), o, &o->sub, 1, &n_pos) < 0)
        return -1;
    if (!o->sub || (strcmp(o->sub, "query") != 0 && strcmp(o->sub, "verify") != 0))
        return -1;
    if (!o->config == !o->file) {
        fprintf(stderr, "mcpgate: give -c FILE (the gateway's configuration names the audit "
                        "sink) or --file AUDIT.jsonl\n");
        return -1;
    }
    if (o->decision && strcmp(o->decision, "allow") != 0 && strcmp(o->decision, "deny") != 0) {
        fprintf(stderr, "mcpgate: --decision is allow or deny\n");
        return -1;
    }
    return 0;
}

/* Where the trail is: a file (*path) or the store (*st). */
static int open_trail(const struct opts *o, char **path, struct mg_store **st)
{
    struct mg_conf *conf = NULL;
    char *err = NULL;
    int rc = 0;

    *path = NULL;
    *st = NULL;
    if (o->file) {
        *path = mg_xstrdup(o->file);
        return 0;
    }
    if (mg_conf_load(o->config, &conf, &err) < 0) {
        fprintf(stderr, "%s\n", err ? err : "invalid configuration");
        free(err);
        return -1;
    }
    switch (conf->audit.sink) {
    case MG_CONF_AUDIT_FILE: *path = mg_xstrdup(conf->audit.path); break;
    case MG_CONF_AUDIT_STORE:
        rc = mg_store_open(conf->store_dsn, st, &err);
        if (rc == 0 && (rc = mg_store_migrate(*st, (int64_t)time(NULL))) < 0)
            fprintf(stderr, "mcpgate: store: %s\n", mg_store_last_error(*st));
        else if (rc < 0)
            fprintf(stderr, "mcpgate: store %s: %s\n", conf->store_dsn, err ? err : "cannot open");
        free(err);
        if (rc < 0) {
            mg_store_free(*st);
            *st = NULL;
        }
        break;
    default:
        fprintf(stderr,
                "mcpgate: the %s audit sink keeps nothing mcpgate can read back; query or verify "
                "a saved copy with --file PATH\n",
                conf->audit.sink == MG_CONF_AUDIT_STDOUT ? "stdout" : "syslog");
        rc = -1;
    }
    mg_conf_unref(conf);
    return rc < 0 ? -1 : 0;
}

/* A table cell: control characters (from callers' tool names, say) must
 * not reach the terminal. */
static void cell(const char *s, int width)
{
    int n = 0;
    for (; s && *s; s++, n++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
    for (; n < width; n++)
        putchar(' ');
    putchar(' ');
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void print_table(const json_t *arr)
{
    size_t i;
    const json_t *r;
    printf("%-24s %-7s %-8s %-12s %-28s %-14s %-20s %-18s %s\n", "TIME", "SEQ", "DECISION", "ROUTE",
           "USER", "METHOD", "NAME", "REASON", "DECISION_ID");
    json_array_foreach(arr, i, r)
    {
        const json_t *id = json_object_get(r, "identity");
        const char *user = str(id, "email");
        char seq[24];
        snprintf(seq, sizeof seq, "%lld", (long long)json_integer_value(json_object_get(r, "seq")));
        cell(str(r, "time"), 24);
        cell(seq, 7);
        cell(str(r, "decision"), 8);
        cell(str(r, "route"), 12);
        cell(*user ? user : str(id, "subject"), 28);
        cell(str(r, "method"), 14);
        cell(str(r, "name"), 20);
        cell(str(r, "reason"), 18);
        cell(str(r, "decision_id"), 0);
        putchar('\n');
    }
}

static int query(const struct opts *o, const char *path, struct mg_store *st)
{
    struct mg_store_audit_filter f = {.user = o->user,
                                      .tool = o->tool,
                                      .decision = o->decision,
                                      .route = o->route,
                                      .method = o->method,
                                      .limit = 100,
                                      .newest = true};
    struct timespec now;
    json_t *arr = NULL;
    char err[512] = "";
    int rc;

    if (o->since) {
        clock_gettime(CLOCK_REALTIME, &now);
        if (mg_audit_parse_since(o->since, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                                 &f.since_ms) != 0) {
            fprintf(stderr, "mcpgate: --since takes a duration (15m, 24h, 7d) or a time "
                            "(2025-06-01, 2025-06-01T12:00:00Z)\n");
            return 2;
        }
    }
    if (o->limit) {
        uint64_t n = 0;
        if (mg_parse_u64(o->limit, strlen(o->limit), &n) != 0 || n < 1 ||
            n > MG_STORE_AUDIT_MAX_ROWS) {
            fprintf(stderr, "mcpgate: --limit is 1 to %d\n", MG_STORE_AUDIT_MAX_ROWS);
            return 2;
        }
        f.limit = (size_t)n;
    }
    rc = path ? mg_audit_query_file(path, &f, &arr, err, sizeof err)
              : mg_audit_query_store(st, &f, &arr, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "mcpgate: audit query: %s\n", err);
        return 1;
    }
    if (o->json) {
        char *s = json_dumps(arr, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s ? s : "[]");
        free(s);
    } else {
        print_table(arr);
    }
    json_decref(arr);
    return 0;
}

static int verify(const char *path, struct mg_store *st)
{
    struct mg_audit_verify v;
    int rc = path ? mg_audit_verify_file(path, &v) : mg_audit_verify_store(st, &v);
    const char *where = path ? path : "store";
    if (rc == 0) {
        printf("%s: %s; head seq %lld sha256 %s\n", where, v.message, (long long)v.head_seq,
               v.head_hash);
        return 0;
    }
    if (rc != MG_EPROTO) {
        fprintf(stderr, "mcpgate: audit verify: %s\n", v.message);
        return 1;
    }
    if (v.line > 0)
        printf("%s:%lld: %s: seq %lld: %s\n", where, (long long)v.line,
               mg_audit_problem_name(v.problem), (long long)v.seq, v.message);
    else
        printf("%s: %s: seq %lld: %s\n", where, mg_audit_problem_name(v.problem), (long long)v.seq,
               v.message);
    printf("%s: %lld records verified before it\n", where, (long long)v.records);
    return 1;
}

int mg_cli_audit(int argc, char **argv)
{
    struct opts o = {0};
    struct mg_store *st = NULL;
    char *path = NULL;
    int rc;

    if (parse(argc, argv, &o) != 0)
        return usage();
    if (open_trail(&o, &path, &st) != 0)
        return 1;
    rc = strcmp(o.sub, "query") == 0 ? query(&o, path, st) : verify(path, st);
    free(path);
    mg_store_free(st);
    return rc;
}

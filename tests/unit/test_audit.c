/* Unit tests for the audit trail (src/audit, src/cli/audit.c): a record's
 * canonical text and hash, the four argument modes (redaction of secret
 * keys at any depth, long strings cut at a character boundary, bounds on
 * size and depth), time and --since parsing; the writer with the file sink
 * (the chain continuing across reopen, a torn last line cut, one writer per
 * file), with the store sink on SQLite and, when MCPGATE_TEST_PG_DSN is
 * set, PostgreSQL (two writers sharing one chain); verification catching
 * an edited, an inserted and a deleted record in a file and in the store
 * (and a store column edited behind the record's back); the queue bound in
 * records and bytes; a failing sink making the writer unhealthy, then
 * recovering, with a test sink and with a real file over RLIMIT_FSIZE;
 * completions delivered on the caller's loop once a record is durable (or
 * its write failed); queries with every filter; the CLI's exit codes and
 * output; and flat arguments (mcp/args.h) reduced byte for byte as their
 * tree in every mode. */
#include "audit/audit.h"
#include "audit/verify.h"
#include "cli/cli.h"
#include "mcp/jsonrpc.h"
#include "store/store.h"
#include "tap.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64];

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int c;
    if (!f)
        return NULL;
    while ((c = fgetc(f)) != EOF) {
        if (n + 2 > cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
        }
        buf[n++] = (char)c;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    MG_ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

static int count_lines(const char *path)
{
    char *s = slurp(path, NULL);
    int n = 0;
    for (char *p = s; p && *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

/* The file's lines, malloc'd; *n gets how many. */
static char **lines_of(const char *path, int *n)
{
    char *s = slurp(path, NULL), *p = s;
    char **v = calloc(1024, sizeof *v);
    *n = 0;
    while (p && *p && *n < 1024) {
        char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        v[(*n)++] = strndup(p, l);
        p += l + (nl ? 1 : 0);
    }
    free(s);
    return v;
}

static void write_lines(const char *path, char **v, int n)
{
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", v[i]);
    fclose(f);
}

static void free_lines(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static struct mg_identity *alice(void)
{
    struct mg_identity *id = mg_identity_new();
    free(id->subject);
    id->subject = strdup("user:alice@example.com");
    free(id->email);
    id->email = strdup("Alice@Example.com");
    free(id->client_id);
    id->client_id = strdup("claude");
    id->method = MG_AUTH_OAUTH;
    snprintf(id->token_id, sizeof id->token_id, "0123456789abcdef");
    id->groups = calloc(2, sizeof(char *));
    id->groups[0] = strdup("admins");
    id->groups[1] = strdup("dev");
    id->n_groups = 2;
    return id;
}

/* A record as the request path would build it; n varies the content. */
static struct mg_audit_record *sample(int n, bool allow)
{
    struct mg_audit_record *r = mg_audit_record_new();
    struct mg_identity *id = alice();
    json_t *args = json_pack("{s:s, s:i}", "sql", "SELECT 1", "limit", n);
    mg_audit_record_set_route(r, n % 2 ? "sql" : "files");
    if (n % 3 != 2)
        mg_audit_record_set_identity(r, id);
    mg_audit_record_set_source(r, "203.0.113.9");
    mg_audit_record_set_jsonrpc_id_json(r, "7");
    mg_audit_record_set_call(r, "tools/call", n % 2 ? "query" : "execute");
    mg_audit_record_set_arguments(r, args, MG_CONF_AUDIT_ARGS_REDACTED);
    mg_audit_record_set_decision(r, allow, allow ? "routes[sql].policy[0].allow" : "deny",
                                 allow ? "allowed" : "denied_by_rule");
    mg_audit_record_set_upstream(r, allow ? 200 : 0, n);
    json_decref(args);
    mg_identity_unref(id);
    return r;
}

/* ---------------------------------------------------------------------------
 * Records.
 */

static void test_record(void)
{
    struct mg_audit_record *r = mg_audit_record_new(), *r2;
    struct mg_identity *id = alice();
    json_t *args = json_pack("{s:s, s:s}", "sql", "SELECT 1", "password", "hunter2"), *parsed;
    char *text = NULL, *again = NULL, want[2048], hash[MG_AUDIT_HASH_HEX + 1], h2[65];
    size_t len = 0, len2 = 0;
    const char *did = mg_audit_record_decision_id(r);
    bool hex = strlen(did) == MG_AUDIT_DECISION_ID;

    for (const char *p = did; *p; p++)
        hex &= (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    TAP_OK(hex, "decision id is 32 lower-case hex digits (%s)", did);
    r2 = mg_audit_record_new();
    TAP_OK(strcmp(did, mg_audit_record_decision_id(r2)) != 0, "two records, two decision ids");
    mg_audit_record_free(r2);

    mg_audit_record_set_time_ms(r, 1700000000123LL);
    mg_audit_record_set_route(r, "sql");
    mg_audit_record_set_identity(r, id);
    mg_audit_record_set_source(r, "203.0.113.9");
    mg_audit_record_set_session(r, "sess-1");
    mg_audit_record_set_jsonrpc_id_json(r, "7");
    mg_audit_record_set_call(r, "tools/call", "query");
    mg_audit_record_set_arguments(r, args, MG_CONF_AUDIT_ARGS_REDACTED);
    mg_audit_record_set_decision(r, true, "routes[sql].policy[0].allow.or[1]", "allowed");
    mg_audit_record_set_upstream(r, 200, 12);
    TAP_IS_INT(mg_audit_record_chain(r, 1, mg_audit_zero_hash, &text, &len, hash), 0, "chain");
    snprintf(want, sizeof want,
             "{\"arguments\":{\"password\":\"[redacted]\",\"sql\":\"SELECT 1\"},"
             "\"decision\":\"allow\",\"decision_id\":\"%s\","
             "\"identity\":{\"auth_method\":\"oauth\",\"client_id\":\"claude\","
             "\"email\":\"Alice@Example.com\",\"groups\":[\"admins\",\"dev\"],"
             "\"subject\":\"user:alice@example.com\",\"token_id\":\"0123456789abcdef\"},"
             "\"jsonrpc_id\":7,\"latency_ms\":12,\"method\":\"tools/call\",\"name\":\"query\","
             "\"prev\":\"%s\",\"reason\":\"allowed\",\"route\":\"sql\","
             "\"rule\":\"routes[sql].policy[0].allow.or[1]\",\"seq\":1,\"session\":\"sess-1\","
             "\"source\":\"203.0.113.9\",\"time\":\"2023-11-14T22:13:20.123Z\","
             "\"upstream_status\":200,\"v\":1}",
             did, mg_audit_zero_hash);
    TAP_IS_STR(text, want, "canonical text: compact, keys sorted, every field");
    TAP_IS_INT(len, strlen(want), "its length");
    mg_audit_hash_hex(want, strlen(want), h2);
    TAP_IS_STR(hash, h2, "hash is the SHA-256 of the text");
    parsed = json_loads(text, 0, NULL);
    again = json_dumps(parsed, JSON_COMPACT | JSON_SORT_KEYS);
    TAP_IS_STR(again, text, "parse + dump gives the same bytes (anyone can recompute it)");
    free(again);
    json_decref(parsed);
    free(text);
    TAP_IS_INT(mg_audit_record_chain(r, 9, h2, &text, &len2, hash), 0, "chain again (re-chained)");
    TAP_OK(strstr(text, "\"seq\":9") && strstr(text, h2) && !strstr(text, "\"seq\":1,"),
           "seq and prev replaced");
    free(text);

    mg_audit_hash_hex("abc", 3, h2);
    TAP_IS_STR(h2, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
               "SHA-256 test vector (FIPS 180-2 \"abc\")");

    /* Anonymous, odd ids, hostile strings. */
    mg_audit_record_set_identity(r, NULL);
    mg_audit_record_set_jsonrpc_id_json(r, "\"req-\\u00e9\"");
    mg_audit_record_set_route(r, "bad\xff\xfe utf8");
    mg_audit_record_set_call(r, "tools/call", NULL);
    TAP_IS_INT(mg_audit_record_chain(r, 2, mg_audit_zero_hash, &text, &len, hash), 0,
               "chain an odd record");
    parsed = json_loads(text, 0, NULL);
    TAP_IS_STR(
        json_string_value(json_object_get(json_object_get(parsed, "identity"), "auth_method")),
        "none", "anonymous: auth_method none");
    TAP_IS_STR(json_string_value(json_object_get(json_object_get(parsed, "identity"), "subject")),
               "", "anonymous: subject \"\"");
    TAP_IS_STR(json_string_value(json_object_get(parsed, "jsonrpc_id")), "req-\xc3\xa9",
               "string JSON-RPC id");
    TAP_IS_STR(json_string_value(json_object_get(parsed, "route")),
               "bad\xef\xbf\xbd\xef\xbf\xbd utf8", "invalid UTF-8 bytes become U+FFFD");
    TAP_IS_STR(json_string_value(json_object_get(parsed, "name")), "", "no name: \"\"");
    json_decref(parsed);
    free(text);
    mg_audit_record_set_jsonrpc_id_json(r, "{\"a\":1}");
    mg_audit_record_set_jsonrpc_id_json(r, "not json");
    {
        json_t *o = json_object();
        mg_audit_record_set_jsonrpc_id(r, o);
        json_decref(o);
    }
    TAP_IS_INT(mg_audit_record_chain(r, 3, mg_audit_zero_hash, &text, &len, hash), 0, "chain");
    TAP_OK(strstr(text, "\"jsonrpc_id\":null") != NULL, "an object id is recorded as null");
    free(text);
    {
        char long_route[2000];
        memset(long_route, 'r', sizeof long_route - 1);
        long_route[sizeof long_route - 1] = '\0';
        mg_audit_record_set_route(r, long_route);
        TAP_IS_INT(mg_audit_record_chain(r, 4, mg_audit_zero_hash, &text, &len, hash), 0, "chain");
        parsed = json_loads(text, 0, NULL);
        TAP_OK(json_string_length(json_object_get(parsed, "route")) ==
                       MG_AUDIT_MAX_FIELD + strlen("...[truncated 975 bytes]") &&
                   strstr(json_string_value(json_object_get(parsed, "route")),
                          "r...[truncated 975 bytes]"),
               "fields are bounded (1999 bytes -> 1024 + marker)");
        json_decref(parsed);
        free(text);
    }
    {
        struct mg_audit_record_cols c;
        mg_audit_record_set_identity(r, id);
        mg_audit_record_set_call(r, "prompts/get", "greet");
        mg_audit_record_cols(r, &c);
        TAP_OK(!strcmp(c.subject, "user:alice@example.com") &&
                   !strcmp(c.email, "Alice@Example.com") && !strcmp(c.method, "prompts/get") &&
                   !strcmp(c.name, "greet") && !strcmp(c.decision, "allow"),
               "columns for the store");
    }
    mg_audit_record_free(r);
    mg_audit_record_free(NULL);
    mg_identity_unref(id);
    json_decref(args);

    {
        char t[40];
        mg_audit_format_time(0, t, sizeof t);
        TAP_IS_STR(t, "1970-01-01T00:00:00.000Z", "time: epoch");
        mg_audit_format_time(1700000000123LL, t, sizeof t);
        TAP_IS_STR(t, "2023-11-14T22:13:20.123Z", "time: RFC 3339 UTC with ms");
        mg_audit_format_time(951782400999LL, t, sizeof t);
        TAP_IS_STR(t, "2000-02-29T00:00:00.999Z", "time: leap day");
    }
}

static void test_arguments(void)
{
    json_t *args = json_loads(
        "{\"password\":\"p\",\"Api_Key\":{\"x\":1},\"nested\":{\"AuthorizationHeader\":\"z\","
        "\"list\":[{\"client_secret\":\"s\",\"keep\":\"k\"}, 3]},\"n\":5,\"ok\":\"short\","
        "\"flag\":true,\"nothing\":null}",
        0, NULL);
    json_t *v, *x;
    char *s, big[300], utf[260];

    v = mg_audit_args_reduce(args, MG_CONF_AUDIT_ARGS_REDACTED);
    s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    TAP_IS_STR(s,
               "{\"Api_Key\":\"[redacted]\",\"flag\":true,\"n\":5,\"nested\":{"
               "\"AuthorizationHeader\":\"[redacted]\",\"list\":[{\"client_secret\":\"[redacted]\","
               "\"keep\":\"k\"},3]},\"nothing\":null,\"ok\":\"short\",\"password\":\"[redacted]\"}",
               "redacted: secret keys masked at any depth, whatever the value's type");
    free(s);
    json_decref(v);
    v = mg_audit_args_reduce(args, MG_CONF_AUDIT_ARGS_KEYS);
    s = json_dumps(v, JSON_COMPACT);
    TAP_IS_STR(s, "[\"Api_Key\",\"flag\",\"n\",\"nested\",\"nothing\",\"ok\",\"password\"]",
               "keys: the top-level names, sorted");
    free(s);
    json_decref(v);
    TAP_OK(mg_audit_args_reduce(args, MG_CONF_AUDIT_ARGS_NONE) == NULL, "none: nothing");
    TAP_OK(mg_audit_args_reduce(NULL, MG_CONF_AUDIT_ARGS_FULL) == NULL, "no arguments: nothing");
    v = mg_audit_args_reduce(args, MG_CONF_AUDIT_ARGS_FULL);
    TAP_OK(json_equal(v, args), "full: an equal copy");
    TAP_OK(v != args, "a copy, not the caller's value");
    json_decref(v);
    x = json_array();
    TAP_OK(mg_audit_args_reduce(x, MG_CONF_AUDIT_ARGS_KEYS) == NULL, "keys of a non-object: none");
    json_decref(x);
    json_decref(args);

    /* Long strings: cut at 256 bytes on a character boundary. */
    memset(big, 'a', 299);
    big[299] = '\0';
    memset(utf, 'b', 255);
    memcpy(utf + 255, "\xc3\xa9", 3); /* 257 bytes: the é straddles byte 256 */
    args = json_pack("{s:s, s:s, s:[s]}", "q", big, "u", utf, "l", big);
    v = mg_audit_args_reduce(args, MG_CONF_AUDIT_ARGS_REDACTED);
    s = (char *)json_string_value(json_object_get(v, "q"));
    TAP_OK(s && strlen(s) == 256 + strlen("...[truncated 43 bytes]") &&
               strcmp(s + 256, "...[truncated 43 bytes]") == 0,
           "299 bytes: 256 kept, marker says 43 removed");
    s = (char *)json_string_value(json_object_get(v, "u"));
    TAP_OK(s && strncmp(s + 255, "...[truncated 2 bytes]", 22) == 0,
           "a character straddling the bound is dropped whole (%s)", s ? s + 250 : "");
    s = (char *)json_string_value(json_array_get(json_object_get(v, "l"), 0));
    TAP_OK(s && strstr(s, "...[truncated 43 bytes]") != NULL, "inside arrays too");
    json_decref(v);
    /* Regression (found by fuzz_audit): NULs become U+FFFD (3 bytes) when
     * a string is cut, and the bound is on the bytes kept, not read. */
    {
        json_t *nuls = json_object();
        char zeros[300] = {0};
        json_object_set_new(nuls, "z", json_stringn(zeros, sizeof zeros));
        v = mg_audit_args_reduce(nuls, MG_CONF_AUDIT_ARGS_REDACTED);
        s = (char *)json_string_value(json_object_get(v, "z"));
        TAP_OK(s && strlen(s) == 255 + strlen("...[truncated 215 bytes]") &&
                   strcmp(s + 255, "...[truncated 215 bytes]") == 0,
               "300 NULs: 85 kept as U+FFFD (255 bytes), 215 cut");
        json_decref(v);
        json_decref(nuls);
    }
    v = mg_audit_args_reduce(args, MG_CONF_AUDIT_ARGS_FULL);
    TAP_IS_INT(json_string_length(json_object_get(v, "q")), 299, "full: strings kept whole");
    json_decref(v);
    json_decref(args);

    /* Depth and size bounds. */
    x = json_string("leaf");
    for (int i = 0; i < 40; i++) {
        json_t *a = json_array();
        json_array_append_new(a, x);
        x = a;
    }
    v = mg_audit_args_reduce(x, MG_CONF_AUDIT_ARGS_FULL);
    s = json_dumps(v, JSON_COMPACT);
    TAP_OK(s && strstr(s, "\"[too deep]\"") && !strstr(s, "leaf"), "nesting past 32: a marker");
    free(s);
    json_decref(v);
    json_decref(x);
    {
        struct mg_audit_record *r = mg_audit_record_new();
        char *huge = malloc(2u << 20), *text = NULL, hash[65];
        size_t len;
        memset(huge, 'z', (2u << 20) - 1);
        huge[(2u << 20) - 1] = '\0';
        args = json_pack("{s:s}", "blob", huge);
        mg_audit_record_set_arguments(r, args, MG_CONF_AUDIT_ARGS_FULL);
        mg_audit_record_chain(r, 1, mg_audit_zero_hash, &text, &len, hash);
        TAP_OK(strstr(text, "\"arguments\":\"[too large: 2097162 bytes]\"") != NULL,
               "full arguments over 1 MiB: a marker with their size");
        TAP_OK(mg_audit_record_size(r) < 8192, "and the record stays small");
        free(text);
        mg_audit_record_set_arguments(r, args, MG_CONF_AUDIT_ARGS_KEYS);
        mg_audit_record_chain(r, 1, mg_audit_zero_hash, &text, &len, hash);
        TAP_OK(strstr(text, "\"argument_keys\":[\"blob\"]") && !strstr(text, "\"arguments\""),
               "keys mode: argument_keys replaces arguments");
        free(text);
        mg_audit_record_set_arguments(r, args, MG_CONF_AUDIT_ARGS_NONE);
        mg_audit_record_chain(r, 1, mg_audit_zero_hash, &text, &len, hash);
        TAP_OK(!strstr(text, "argument"), "none mode: no arguments field at all");
        free(text);
        json_decref(args);
        free(huge);
        mg_audit_record_free(r);
    }

    TAP_OK(mg_audit_is_secret_key("PASSWORD") && mg_audit_is_secret_key("x-Api-Key") &&
               mg_audit_is_secret_key("github_token") && mg_audit_is_secret_key("Cookie") &&
               mg_audit_is_secret_key("ssh_private_key") && mg_audit_is_secret_key("credentials") &&
               mg_audit_is_secret_key("client_secret"),
           "secret-looking keys, any case");
    TAP_OK(mg_audit_is_secret_key("max_tokens"), "substring match is blunt: max_tokens too");
    {
        /* Every word on its own, and every word one byte short (docs/config.md). */
        static const char *const words[] = {
            "password",    "passwd",      "passphrase",    "secret",     "token",      "api_key",
            "apikey",      "api-key",     "authorization", "auth_key",   "bearer",     "cookie",
            "session_key", "private_key", "privatekey",    "access_key", "credential",
        };
        size_t wrong = 0;
        for (size_t i = 0; i < MG_ARRAY_LEN(words); i++) {
            char cut[32];
            snprintf(cut, sizeof cut, "%.*s", (int)strlen(words[i]) - 1, words[i]);
            wrong += !mg_audit_is_secret_key(words[i]);
            wrong += mg_audit_is_secret_key(cut);
        }
        TAP_IS_INT(wrong, 0, "each secret word alone is a secret key, each cut short is not");
    }
    TAP_OK(!mg_audit_is_secret_key("username") && !mg_audit_is_secret_key("sql") &&
               !mg_audit_is_secret_key("author") && !mg_audit_is_secret_key(NULL),
           "ordinary keys are not");
}

static void test_since(void)
{
    const int64_t now = 1700000000000LL;
    int64_t t = 0;
    TAP_IS_INT(mg_audit_parse_since("15m", now, &t), 0, "15m");
    TAP_IS_INT(t, now - 900000, "15 minutes back");
    TAP_IS_INT(mg_audit_parse_since("7d", now, &t), 0, "7d");
    TAP_IS_INT(t, now - 7 * 86400000LL, "7 days back");
    TAP_IS_INT(mg_audit_parse_since("90s", now, &t), 0, "90s");
    TAP_IS_INT(t, now - 90000, "90 s back");
    TAP_IS_INT(mg_audit_parse_since("2023-11-14T22:13:20Z", now, &t), 0, "RFC 3339 Z");
    TAP_IS_INT(t, 1700000000000LL, "its time");
    TAP_IS_INT(mg_audit_parse_since("2023-11-14T22:13:20.5Z", now, &t), 0, "with a fraction");
    TAP_IS_INT(t, 1700000000500LL, "500 ms");
    TAP_IS_INT(mg_audit_parse_since("2023-11-14T23:13:20+01:00", now, &t), 0, "with an offset");
    TAP_IS_INT(t, 1700000000000LL, "offset applied");
    TAP_IS_INT(mg_audit_parse_since("2023-11-14", now, &t), 0, "a date");
    TAP_IS_INT(t, 1699920000000LL, "midnight UTC");
    static const char *const bad[] = {"",
                                      "15",
                                      "15x",
                                      "-5m",
                                      "2023-13-01",
                                      "2023-02-30",
                                      "2023-11-14T25:00:00Z",
                                      "2023-11-14T22:13:20",
                                      "yesterday",
                                      "1h30m"};
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++)
        TAP_IS_INT(mg_audit_parse_since(bad[i], now, &t), MG_EINVAL, "refused: '%s'", bad[i]);
}

/* ---------------------------------------------------------------------------
 * The writer with the file sink.
 */

static struct mg_audit *open_file(const char *path, char **err_out)
{
    struct mg_audit_opts o = {.sink = MG_CONF_AUDIT_FILE,
                              .target = path,
                              .arguments = MG_CONF_AUDIT_ARGS_REDACTED,
                              .retry_min_ms = 10,
                              .retry_max_ms = 50};
    struct mg_audit *a = NULL;
    char *err = NULL;
    if (mg_audit_new(&o, &a, &err) != 0 && !err_out)
        printf("# audit open %s: %s\n", path, err ? err : "?");
    if (err_out)
        *err_out = err;
    else
        free(err);
    return a;
}

static int submit_n(struct mg_audit *a, int from, int n)
{
    int ok = 0;
    for (int i = from; i < from + n; i++)
        ok += mg_audit_submit(a, sample(i, i % 3 != 0), NULL, NULL, NULL) == 0;
    return ok;
}

static void test_file_sink(void)
{
    char path[128], *err = NULL;
    struct mg_audit *a, *b;
    struct mg_audit_verify v;
    struct mg_audit_stats st;
    char **l;
    int n;
    json_t *rec;

    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    a = open_file(path, NULL);
    TAP_OK(a != NULL, "open a new audit file");
    if (!a)
        return;
    {
        struct stat sb;
        TAP_OK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "created mode 0600");
    }
    TAP_IS_INT(submit_n(a, 1, 3), 3, "submit three records");
    TAP_IS_INT(mg_audit_flush(a, 5000), 0, "flush");
    TAP_IS_INT(count_lines(path), 3, "three lines");
    mg_audit_stats(a, &st);
    TAP_OK(st.written == 3 && st.head_seq == 3 && st.sink_ok && st.queued == 0,
           "stats: 3 written, head 3");
    b = open_file(path, &err);
    TAP_OK(b == NULL && err && strstr(err, "in use by another process"),
           "a second writer on the same file is refused (%s)", err ? err : "");
    free(err);
    mg_audit_free(b);
    mg_audit_free(a);

    /* The chain continues across a restart. */
    a = open_file(path, NULL);
    TAP_OK(a != NULL, "reopen");
    TAP_IS_INT(submit_n(a, 4, 2), 2, "two more");
    mg_audit_free(a); /* a clean stop writes what is queued */
    TAP_IS_INT(count_lines(path), 5, "five lines after the stop");
    TAP_IS_INT(mg_audit_verify_file(path, &v), 0, "verify: intact");
    TAP_IS_INT(v.records, 5, "five records");
    TAP_IS_INT(v.head_seq, 5, "head seq 5");
    l = lines_of(path, &n);
    rec = json_loads(l[3], 0, NULL);
    {
        char h[65];
        mg_audit_hash_hex(l[2], strlen(l[2]), h);
        TAP_IS_INT(json_integer_value(json_object_get(rec, "seq")), 4, "line 4 is seq 4");
        TAP_IS_STR(json_string_value(json_object_get(rec, "prev")), h,
                   "and chains to line 3 across the restart");
        mg_audit_hash_hex(l[4], strlen(l[4]), h);
        TAP_IS_STR(v.head_hash, h, "verify reports the last line's hash as head");
    }
    json_decref(rec);
    free_lines(l, n);

    /* A torn last line (crash during a write) is cut at the next start. */
    {
        FILE *f = fopen(path, "ab");
        fputs("{\"arguments\":{\"sql\":\"SEL", f);
        fclose(f);
    }
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "verify sees the torn line");
    TAP_OK(v.problem == MG_AUDIT_EDITED && v.line == 6 && strstr(v.message, "cut short"),
           "as a line cut short at line 6 (%s)", v.message);
    a = open_file(path, NULL);
    TAP_OK(a != NULL, "reopen over a torn line");
    TAP_IS_INT(count_lines(path), 5, "the partial line is gone");
    TAP_IS_INT(submit_n(a, 6, 1), 1, "one more");
    mg_audit_free(a);
    TAP_IS_INT(mg_audit_verify_file(path, &v), 0, "intact again");
    TAP_IS_INT(v.head_seq, 6, "seq 6 follows 5");

    /* A last line that is not a record: refuse to guess where the chain is. */
    {
        FILE *f = fopen(path, "ab");
        fputs("hello\n", f);
        fclose(f);
    }
    a = open_file(path, &err);
    TAP_OK(a == NULL && err && strstr(err, "not an audit record"),
           "a foreign last line stops the start (%s)", err ? err : "");
    free(err);
    mg_audit_free(a);

    /* Files that cannot be audit files. */
    a = open_file(dir, &err);
    TAP_OK(a == NULL && err, "a directory is refused (%s)", err ? err : "");
    free(err);
    snprintf(path, sizeof path, "%s/no/such/dir/a.jsonl", dir);
    a = open_file(path, &err);
    TAP_OK(a == NULL && err && strstr(err, "No such file"), "a missing directory (%s)",
           err ? err : "");
    free(err);
    {
        char link[160], target[160];
        snprintf(target, sizeof target, "%s/target.jsonl", dir);
        snprintf(link, sizeof link, "%s/link.jsonl", dir);
        spit(target, "");
        TAP_IS_INT(symlink(target, link), 0, "a symlink");
        a = open_file(link, &err);
        TAP_OK(a == NULL && err, "is refused (%s)", err ? err : "");
        free(err);
    }
    {
        struct mg_audit_opts o = {.sink = (enum mg_conf_audit_sink)42};
        TAP_IS_INT(mg_audit_new(&o, &a, &err), MG_EINVAL, "unknown sink kind");
        free(err);
    }
}

/* The largest record mcpgate can write fits the bound every reader uses,
 * and reads back. */
static void test_worst_case(void)
{
    struct mg_identity *id = mg_identity_new();
    struct mg_audit_record *r = mg_audit_record_new();
    struct mg_audit_verify v;
    struct mg_audit *a;
    char ctl[2000], path[128], *text = NULL, hash[65];
    size_t len = 0;
    json_t *args;
    char *blob;

    memset(ctl, '\x01', sizeof ctl - 1); /* 6 bytes each as JSON */
    ctl[sizeof ctl - 1] = '\0';
    id->groups = calloc(MG_IDENTITY_MAX_GROUPS, sizeof(char *));
    for (int i = 0; i < MG_IDENTITY_MAX_GROUPS; i++)
        id->groups[i] = strdup(ctl);
    id->n_groups = MG_IDENTITY_MAX_GROUPS;
    free(id->subject);
    id->subject = strdup(ctl);
    free(id->email);
    id->email = strdup(ctl);
    free(id->client_id);
    id->client_id = strdup(ctl);
    mg_audit_record_set_identity(r, id);
    mg_audit_record_set_route(r, ctl);
    mg_audit_record_set_source(r, ctl);
    mg_audit_record_set_session(r, ctl);
    mg_audit_record_set_call(r, ctl, ctl);
    mg_audit_record_set_decision(r, false, ctl, ctl);
    blob = malloc(174000);
    memset(blob, '\x02', 173999); /* ~1 MiB once escaped */
    blob[173999] = '\0';
    args = json_pack("{s:s}", "blob", blob);
    mg_audit_record_set_arguments(r, args, MG_CONF_AUDIT_ARGS_FULL);
    mg_audit_record_chain(r, 1, mg_audit_zero_hash, &text, &len, hash);
    TAP_OK(strstr(text, "too large") == NULL, "arguments just under 1 MiB serialised are kept");
    TAP_OK(len > (2u << 20) && len <= MG_AUDIT_MAX_RECORD_BYTES,
           "the worst-case record (%zu bytes) fits MG_AUDIT_MAX_RECORD_BYTES", len);
    free(text);
    snprintf(path, sizeof path, "%s/worst.jsonl", dir);
    a = open_file(path, NULL);
    mg_audit_submit(a, sample(2, true), NULL, NULL, NULL);
    TAP_IS_INT(mg_audit_submit(a, r, NULL, NULL, NULL), 0, "written by the file sink");
    mg_audit_free(a);
    TAP_IS_INT(mg_audit_verify_file(path, &v), 0, "and verified whole (%s)", v.message);
    TAP_IS_INT(v.records, 2, "two records");
    a = open_file(path, NULL);
    TAP_OK(a != NULL, "the sink reopens with it as the last line");
    TAP_IS_INT(submit_n(a, 3, 1), 1, "and chains after it");
    mg_audit_free(a);
    TAP_IS_INT(mg_audit_verify_file(path, &v), 0, "intact");
    TAP_IS_INT(v.records, 3, "three records");
    json_decref(args);
    free(blob);
    mg_identity_unref(id);
}

/* Regression (found by fuzz_audit): full arguments holding \u0000 were
 * written fine but every reader refused to parse them back, so verify
 * called an intact chain edited and the sink would not restart after it. */
static void test_nul_in_full_arguments(void)
{
    struct mg_audit_opts o = {.sink = MG_CONF_AUDIT_FILE, .arguments = MG_CONF_AUDIT_ARGS_FULL};
    struct mg_audit *a = NULL;
    struct mg_audit_record *r = mg_audit_record_new();
    struct mg_audit_verify v;
    struct mg_store_audit_filter f = {0};
    json_t *args = json_loads("{\"s\":\"a\\u0000b\"}", JSON_ALLOW_NUL, NULL), *arr = NULL;
    char path[128], err[128], *e = NULL;

    snprintf(path, sizeof path, "%s/nul.jsonl", dir);
    o.target = path;
    MG_ASSERT(args && mg_audit_new(&o, &a, &e) == 0);
    mg_audit_record_set_arguments(r, args, mg_audit_arguments(a));
    mg_audit_submit(a, r, NULL, NULL, NULL);
    mg_audit_free(a);
    TAP_IS_INT(mg_audit_verify_file(path, &v), 0,
               "a record with \\u0000 in its arguments verifies");
    a = NULL;
    TAP_IS_INT(mg_audit_new(&o, &a, &e), 0, "the sink restarts after it");
    mg_audit_free(a);
    TAP_IS_INT(mg_audit_query_file(path, &f, &arr, err, sizeof err), 0, "and queries find it");
    TAP_IS_INT(json_string_length(
                   json_object_get(json_object_get(json_array_get(arr, 0), "arguments"), "s")),
               3, "the NUL kept as sent (full)");
    json_decref(arr);
    json_decref(args);
    free(e);
}

/* ---------------------------------------------------------------------------
 * Verification of files.
 */

/* A fresh chain of n records in path. */
static void make_chain(const char *path, int n)
{
    struct mg_audit *a;
    unlink(path);
    a = open_file(path, NULL);
    MG_ASSERT(a != NULL);
    MG_ASSERT(submit_n(a, 1, n) == n);
    mg_audit_free(a);
}

static void test_verify_file(void)
{
    char path[128], **l, *s;
    struct mg_audit_verify v;
    int n;

    snprintf(path, sizeof path, "%s/verify.jsonl", dir);
    spit(path, "");
    TAP_IS_INT(mg_audit_verify_file(path, &v), 0, "an empty file is an intact empty chain");
    TAP_OK(v.records == 0 && v.head_seq == 0 && strcmp(v.head_hash, mg_audit_zero_hash) == 0,
           "no records, zero head");
    TAP_IS_INT(mg_audit_verify_file("/nonexistent/x.jsonl", &v), MG_EIO, "a missing file: MG_EIO");
    TAP_OK(strstr(v.message, "No such file") != NULL, "says why (%s)", v.message);

    /* Edited: one byte of record 3's decision. */
    make_chain(path, 6);
    l = lines_of(path, &n);
    s = strstr(l[2], "\"decision\":\"");
    MG_ASSERT(s != NULL);
    memcpy(s + 12, strncmp(s + 12, "deny", 4) == 0 ? "DENY" : "ALLO", 4);
    write_lines(path, l, n);
    free_lines(l, n);
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "edited record: broken");
    TAP_IS_INT(v.problem, MG_AUDIT_EDITED, "edited");
    TAP_IS_INT(v.seq, 3, "seq 3");
    TAP_IS_INT(v.line, 3, "line 3");
    TAP_IS_INT(v.records, 2, "two records verified before it");
    TAP_OK(strstr(v.message, "seq 3 (line 3) was edited") != NULL, "message: %s", v.message);

    /* Edited: the last record changes nothing the chain sees, but its form. */
    make_chain(path, 3);
    l = lines_of(path, &n);
    {
        json_t *rec = json_loads(l[2], 0, NULL);
        free(l[2]);
        l[2] = json_dumps(rec, JSON_INDENT(0) | JSON_SORT_KEYS);
        json_decref(rec);
    }
    write_lines(path, l, n);
    free_lines(l, n);
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "re-serialised record: broken");
    TAP_OK(v.problem == MG_AUDIT_EDITED && v.seq == 3 && strstr(v.message, "canonical"),
           "not canonical: rewritten (%s)", v.message);

    /* Deleted: line 3 of 6. */
    make_chain(path, 6);
    l = lines_of(path, &n);
    free(l[2]);
    memmove(&l[2], &l[3], (size_t)(n - 3) * sizeof *l);
    write_lines(path, l, n - 1);
    free_lines(l, n - 1);
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "deleted record: broken");
    TAP_IS_INT(v.problem, MG_AUDIT_DELETED, "deleted");
    TAP_IS_INT(v.seq, 3, "seq 3 is missing");
    TAP_IS_INT(v.line, 3, "before line 3");
    TAP_OK(strstr(v.message, "record seq 3 is missing before line 3") != NULL, "message: %s",
           v.message);

    /* Deleted: the first two. */
    make_chain(path, 4);
    l = lines_of(path, &n);
    write_lines(path, l + 2, n - 2);
    free_lines(l, n);
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "first records deleted: broken");
    TAP_OK(v.problem == MG_AUDIT_DELETED && v.seq == 1 && v.line == 1,
           "seq 1 missing before line 1 (%s)", v.message);

    /* Inserted: a copy of record 2 after it. */
    make_chain(path, 4);
    l = lines_of(path, &n);
    l = realloc(l, (size_t)(n + 1) * sizeof *l);
    memmove(&l[3], &l[2], (size_t)(n - 2) * sizeof *l);
    l[2] = strdup(l[1]);
    write_lines(path, l, n + 1);
    free_lines(l, n + 1);
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "duplicated record: broken");
    TAP_IS_INT(v.problem, MG_AUDIT_INSERTED, "inserted");
    TAP_OK(v.seq == 2 && v.line == 3, "seq 2 again at line 3 (%s)", v.message);

    /* Inserted: a forged record that chains correctly after record 2 and
     * takes seq 3; the real seq 3 then has no place. */
    make_chain(path, 4);
    l = lines_of(path, &n);
    {
        struct mg_audit_record *forged = sample(99, true);
        char prev[65], hash[65], *text = NULL;
        size_t len;
        mg_audit_hash_hex(l[1], strlen(l[1]), prev);
        mg_audit_record_chain(forged, 3, prev, &text, &len, hash);
        mg_audit_record_free(forged);
        l = realloc(l, (size_t)(n + 1) * sizeof *l);
        memmove(&l[3], &l[2], (size_t)(n - 2) * sizeof *l);
        l[2] = text;
    }
    write_lines(path, l, n + 1);
    free_lines(l, n + 1);
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "forged insertion: broken");
    TAP_IS_INT(v.problem, MG_AUDIT_INSERTED, "inserted");
    TAP_OK(v.seq == 3 && v.line == 4 && v.records == 3,
           "the real seq 3 at line 4 has no place (%s)", v.message);

    /* Edited: renumbered to hide a deletion. */
    make_chain(path, 4);
    l = lines_of(path, &n);
    s = strstr(l[2], "\"seq\":3");
    MG_ASSERT(s != NULL);
    s[6] = '7';
    write_lines(path, l, n);
    free_lines(l, n);
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "renumbered: broken");
    TAP_OK(v.problem == MG_AUDIT_EDITED && v.line == 3 && strstr(v.message, "seq was edited"),
           "the seq field was edited (%s)", v.message);

    /* Not a record at all. */
    make_chain(path, 2);
    {
        FILE *f = fopen(path, "ab");
        fputs("[1,2]\n", f);
        fclose(f);
    }
    TAP_IS_INT(mg_audit_verify_file(path, &v), MG_EPROTO, "a non-record line: broken");
    TAP_OK(v.problem == MG_AUDIT_EDITED && v.line == 3 && v.seq == 3,
           "at line 3, where seq 3 should be (%s)", v.message);

    /* What a chain alone cannot show: the newest records cut off. The head
     * verify prints, kept elsewhere, shows it. */
    make_chain(path, 4);
    {
        struct mg_audit_verify before;
        mg_audit_verify_file(path, &before);
        l = lines_of(path, &n);
        write_lines(path, l, n - 1);
        free_lines(l, n);
        TAP_IS_INT(mg_audit_verify_file(path, &v), 0, "tail cut off: the chain itself is intact");
        TAP_OK(v.head_seq == 3 && before.head_seq == 4 && strcmp(v.head_hash, before.head_hash),
               "but the head differs from the one recorded before (3 vs 4)");
    }
}

/* ---------------------------------------------------------------------------
 * A sink under the test's control: it can fail and it can hold a write.
 */

static struct tsink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool fail, hold, entered;
    int writes, failures;
    int64_t seq;
    char hash[MG_AUDIT_HASH_HEX + 1];
    int chain_errors;
} ts = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void ts_reset(void)
{
    pthread_mutex_lock(&ts.mu);
    ts.fail = ts.hold = ts.entered = false;
    ts.writes = ts.failures = ts.chain_errors = 0;
    ts.seq = 0;
    memcpy(ts.hash, mg_audit_zero_hash, sizeof ts.hash);
    pthread_mutex_unlock(&ts.mu);
}

static int ts_open(const char *target, void **sink, char *err, size_t cap)
{
    MG_UNUSED(target);
    MG_UNUSED(err);
    MG_UNUSED(cap);
    *sink = &ts;
    return 0;
}

static int ts_head(void *p, int64_t *seq, char hash[65], char *err, size_t cap)
{
    MG_UNUSED(p);
    MG_UNUSED(err);
    MG_UNUSED(cap);
    pthread_mutex_lock(&ts.mu);
    *seq = ts.seq;
    memcpy(hash, ts.hash, 65);
    pthread_mutex_unlock(&ts.mu);
    return 0;
}

static int ts_write(void *p, const struct mg_audit_entry *e, size_t n, bool durable, char *err,
                    size_t cap)
{
    int rc = 0;
    MG_UNUSED(p);
    pthread_mutex_lock(&ts.mu);
    ts.entered = true;
    pthread_cond_broadcast(&ts.cv);
    while (ts.hold)
        pthread_cond_wait(&ts.cv, &ts.mu);
    if (ts.fail) {
        ts.failures++;
        snprintf(err, cap, "test sink: no space left on device");
        rc = MG_EIO;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (e[i].seq != ts.seq + 1 || strcmp(e[i].prev, ts.hash) != 0)
                ts.chain_errors++;
            ts.seq = e[i].seq;
            memcpy(ts.hash, e[i].hash, 65);
        }
        ts.writes++;
    }
    pthread_mutex_unlock(&ts.mu);
    return rc;
}

static void ts_close(void *p)
{
    MG_UNUSED(p);
}

static const struct mg_audit_sink_ops test_ops = {
    .name = "test",
    .persistent = true,
    .open = ts_open,
    .head = ts_head,
    .write = ts_write,
    .close = ts_close,
};

static void ts_set(bool *field, bool value)
{
    pthread_mutex_lock(&ts.mu);
    *field = value;
    pthread_cond_broadcast(&ts.cv);
    pthread_mutex_unlock(&ts.mu);
}

/* The sink's counters, read under its lock (the writer thread updates them). */
static int64_t ts_get(const void *field)
{
    int64_t v;
    pthread_mutex_lock(&ts.mu);
    v = field == &ts.seq ? ts.seq : *(const int *)field;
    pthread_mutex_unlock(&ts.mu);
    return v;
}

static bool ts_wait_entered(void)
{
    bool ok;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&ts.mu);
    while (!ts.entered && pthread_cond_timedwait(&ts.cv, &ts.mu, &dl) == 0)
        ;
    ok = ts.entered;
    pthread_mutex_unlock(&ts.mu);
    return ok;
}

static struct mg_audit *open_test(size_t max_queue, size_t max_bytes, bool fail_open, bool sync)
{
    struct mg_audit_opts o = {.sink_ops = &test_ops,
                              .max_queue = max_queue,
                              .max_queue_bytes = max_bytes,
                              .fail_open = fail_open,
                              .sync = sync,
                              .retry_min_ms = 10,
                              .retry_max_ms = 40};
    struct mg_audit *a = NULL;
    char *err = NULL;
    ts_reset();
    MG_ASSERT(mg_audit_new(&o, &a, &err) == 0);
    free(err);
    return a;
}

/* Polls cond (bounded: 5 s). */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        for (int w_ = 0; w_ < 500 && !(cond); w_++)                                                \
            sleep_ms(10);                                                                          \
    } while (0)

static void on_done(void *arg, int status);

static void test_queue_bound(void)
{
    struct mg_audit *a = open_test(3, 0, false, false);
    struct mg_audit_stats st;

    TAP_OK(mg_audit_healthy(a), "healthy at start");
    TAP_IS_INT(mg_audit_arguments(a), MG_CONF_AUDIT_ARGS_NONE, "arguments mode as given");
    TAP_OK(!mg_audit_wants_sync(a), "sync as given");
    ts_set(&ts.hold, true);
    TAP_IS_INT(mg_audit_submit(a, sample(1, true), NULL, NULL, NULL), 0, "submit 1");
    TAP_OK(ts_wait_entered(), "the writer is inside the sink's write (held)");
    TAP_IS_INT(mg_audit_submit(a, sample(2, true), NULL, NULL, NULL), 0, "submit 2");
    TAP_IS_INT(mg_audit_submit(a, sample(3, true), NULL, NULL, NULL), 0, "submit 3: queue full");
    TAP_IS_INT(mg_audit_submit(a, sample(4, true), NULL, NULL, NULL), MG_ELIMIT,
               "submit 4: MG_ELIMIT, returns at once");
    TAP_OK(!mg_audit_healthy(a), "a full queue is unhealthy (on_failure: deny)");
    mg_audit_stats(a, &st);
    TAP_OK(st.queued == 3 && st.rejected == 1, "stats: 3 queued (one in the write), 1 rejected");
    ts_set(&ts.hold, false);
    TAP_IS_INT(mg_audit_flush(a, 5000), 0, "release the sink and flush");
    mg_audit_stats(a, &st);
    TAP_OK(st.written == 3 && st.queued == 0, "three written");
    TAP_OK(mg_audit_healthy(a), "healthy again");
    TAP_IS_INT(ts_get(&ts.chain_errors), 0, "the sink saw one unbroken chain");
    TAP_IS_INT(ts_get(&ts.seq), 3, "seq 1..3");
    TAP_IS_INT(mg_audit_submit(a, NULL, NULL, NULL, NULL), MG_EINVAL, "no record: MG_EINVAL");
    {
        static int dummy;
        TAP_IS_INT(mg_audit_submit(a, sample(5, true), NULL, on_done, &dummy), MG_EINVAL,
                   "a completion without a port: MG_EINVAL");
    }
    mg_audit_free(a);
    mg_audit_free(NULL);

    /* The byte bound holds whatever max_queue says. */
    a = open_test(1000, 4000, false, false);
    ts_set(&ts.hold, true);
    TAP_IS_INT(mg_audit_submit(a, sample(1, true), NULL, NULL, NULL), 0, "bytes: submit 1");
    TAP_OK(ts_wait_entered(), "held");
    {
        int ok = 0, refused = 0;
        for (int i = 0; i < 10; i++) {
            int rc = mg_audit_submit(a, sample(i, true), NULL, NULL, NULL);
            ok += rc == 0;
            refused += rc == MG_ELIMIT;
        }
        TAP_OK(ok >= 1 && ok < 10 && refused == 10 - ok,
               "20000 bytes hold a few records, not 10 (%d in, %d refused)", ok, refused);
    }
    ts_set(&ts.hold, false);
    mg_audit_free(a);

    /* on_failure: allow never reports unhealthy. */
    a = open_test(1, 0, true, false);
    ts_set(&ts.hold, true);
    mg_audit_submit(a, sample(1, true), NULL, NULL, NULL);
    ts_wait_entered();
    TAP_IS_INT(mg_audit_submit(a, sample(2, true), NULL, NULL, NULL), MG_ELIMIT,
               "fail open: a full queue still refuses the record");
    TAP_OK(mg_audit_healthy(a), "but the writer stays healthy (on_failure: allow)");
    ts_set(&ts.hold, false);
    mg_audit_free(a);
}

static void test_sink_failure(void)
{
    struct mg_audit *a = open_test(100, 0, false, false);
    struct mg_audit_stats st;
    char err[256];

    ts_set(&ts.fail, true);
    TAP_IS_INT(submit_n(a, 1, 2), 2, "submit while the sink fails");
    WAIT_FOR(!mg_audit_healthy(a));
    TAP_OK(!mg_audit_healthy(a), "unhealthy after a failed write");
    mg_audit_last_error(a, err, sizeof err);
    TAP_OK(strstr(err, "no space left") != NULL, "the reason is kept (%s)", err);
    WAIT_FOR(ts_get(&ts.failures) >= 3);
    TAP_OK(ts_get(&ts.failures) >= 3, "the writer keeps retrying (%d attempts)",
           (int)ts_get(&ts.failures));
    TAP_IS_INT(mg_audit_flush(a, 100), MG_ETIMEDOUT, "flush times out while failing");
    mg_audit_stats(a, &st);
    TAP_OK(st.queued == 2 && st.written == 0 && !st.sink_ok && st.write_failures >= 3,
           "records stay queued");
    TAP_IS_INT(submit_n(a, 3, 1), 1, "a record submitted meanwhile queues behind them");
    ts_set(&ts.fail, false);
    TAP_IS_INT(mg_audit_flush(a, 5000), 0, "the sink recovers: everything is written");
    TAP_OK(mg_audit_healthy(a), "healthy again");
    mg_audit_stats(a, &st);
    TAP_OK(st.written == 3 && st.head_seq == 3 && st.sink_ok, "3 written, once each, seq 1..3");
    TAP_IS_INT(ts_get(&ts.chain_errors), 0, "in order, one chain");
    mg_audit_free(a);

    /* Fail open: healthy throughout. */
    a = open_test(100, 0, true, false);
    ts_set(&ts.fail, true);
    submit_n(a, 1, 1);
    WAIT_FOR(ts_get(&ts.failures) >= 2);
    TAP_OK(mg_audit_healthy(a), "on_failure: allow stays healthy while the sink fails");
    mg_audit_stats(a, &st);
    TAP_OK(!st.sink_ok, "though the stats show the sink failing");
    ts_set(&ts.fail, false);
    mg_audit_flush(a, 5000);
    mg_audit_free(a);

    /* A stop while failing gives up after one attempt instead of hanging. */
    a = open_test(100, 0, false, false);
    ts_set(&ts.fail, true);
    submit_n(a, 1, 3);
    {
        uint64_t t0 = mg_now_ms();
        mg_audit_free(a);
        TAP_OK(mg_now_ms() - t0 < 2000, "stop with a failing sink returns (%llu ms)",
               (unsigned long long)(mg_now_ms() - t0));
    }
    ts_set(&ts.fail, false);
}

/* A real file whose writes fail: the file size limit (RLIMIT_FSIZE) is
 * the disk-full of the test. A batch cut short is cut off again. */
static void test_file_failure(void)
{
    char path[128];
    struct mg_audit *a;
    struct mg_audit_verify v;
    struct rlimit old, lim;
    struct stat sb;
    off_t size;

    snprintf(path, sizeof path, "%s/full.jsonl", dir);
    unlink(path);
    a = open_file(path, NULL);
    submit_n(a, 1, 2);
    mg_audit_flush(a, 5000);
    stat(path, &sb);
    size = sb.st_size;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 100; /* room for part of a record only */
    TAP_IS_INT(setrlimit(RLIMIT_FSIZE, &lim), 0, "limit the file size");
    submit_n(a, 3, 1);
    WAIT_FOR(!mg_audit_healthy(a));
    TAP_OK(!mg_audit_healthy(a), "a write past the limit fails: unhealthy");
    stat(path, &sb);
    TAP_IS_INT(sb.st_size, size, "the partial record was cut off again");
    TAP_IS_INT(setrlimit(RLIMIT_FSIZE, &old), 0, "lift the limit");
    TAP_IS_INT(mg_audit_flush(a, 5000), 0, "the retry succeeds");
    TAP_OK(mg_audit_healthy(a), "healthy");
    mg_audit_free(a);
    TAP_IS_INT(mg_audit_verify_file(path, &v), 0, "and the chain is intact");
    TAP_IS_INT(v.records, 3, "three records");
}

/* ---------------------------------------------------------------------------
 * Completions on the caller's loop.
 */

struct waiter {
    int calls, status;
    int lines_when_done; /* durable: on disk when the callback ran */
    const char *path;
};

static void on_done(void *arg, int status)
{
    struct waiter *w = arg;
    w->calls++;
    w->status = status;
    if (w->path)
        w->lines_when_done = count_lines(w->path);
}

static void on_timeout(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Runs loop until *calls reaches want (bounded: 5 s). */
static void run_until(uv_loop_t *loop, int *calls, int want)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_timeout, 5000, 0);
    while (*calls < want)
        if (uv_run(loop, UV_RUN_ONCE) == 0 || !uv_is_active((uv_handle_t *)&t))
            break;
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_sync(void)
{
    uv_loop_t loop;
    struct mg_audit_port *port = NULL;
    struct mg_audit *a;
    struct waiter w[3] = {{0}};
    char path[128];
    struct mg_audit_opts o = {.sink = MG_CONF_AUDIT_FILE, .sync = true};
    char *err = NULL;
    int total = 0;

    uv_loop_init(&loop);
    TAP_IS_INT(mg_audit_port_new(&loop, &port), 0, "a port on the caller's loop");
    snprintf(path, sizeof path, "%s/sync.jsonl", dir);
    unlink(path);
    o.target = path;
    TAP_IS_INT(mg_audit_new(&o, &a, &err), 0, "a sync file writer");
    free(err);
    TAP_OK(mg_audit_wants_sync(a), "wants sync");
    for (int i = 0; i < 3; i++) {
        w[i].path = path;
        w[i].status = -99;
        TAP_IS_INT(mg_audit_submit(a, sample(i, true), port, on_done, &w[i]), 0, "submit %d", i);
    }
    TAP_IS_INT(mg_audit_port_pending(port), 3, "three pending");
    for (int i = 0; i < 3; i++)
        total += w[i].calls;
    TAP_IS_INT(total, 0, "no completion before the loop runs them");
    run_until(&loop, &w[2].calls, 1);
    for (int i = 0; i < 3; i++) {
        TAP_OK(w[i].calls == 1 && w[i].status == 0, "completion %d: once, status 0", i);
        TAP_OK(w[i].lines_when_done >= i + 1, "record %d was on disk when it ran", i);
    }
    TAP_IS_INT(mg_audit_port_pending(port), 0, "nothing pending");
    mg_audit_free(a);

    /* A failing sink completes with the error at the first failure, and
     * the record is still written once the sink recovers. */
    {
        struct mg_audit_opts t = {.sink_ops = &test_ops, .sync = true, .retry_min_ms = 10};
        struct waiter f = {.status = -99};
        ts_reset();
        MG_ASSERT(mg_audit_new(&t, &a, &err) == 0);
        ts_set(&ts.fail, true);
        TAP_IS_INT(mg_audit_submit(a, sample(1, true), port, on_done, &f), 0, "sync submit");
        run_until(&loop, &f.calls, 1);
        TAP_OK(f.calls == 1 && f.status == MG_EIO, "completion with MG_EIO when the write fails");
        ts_set(&ts.fail, false);
        TAP_IS_INT(mg_audit_flush(a, 5000), 0, "the record is written after all");
        uv_run(&loop, UV_RUN_NOWAIT);
        TAP_IS_INT(f.calls, 1, "and the completion does not run twice");
        TAP_IS_INT(ts_get(&ts.seq), 1, "written once");
        mg_audit_free(a);
    }
    mg_audit_port_close(port);
    uv_run(&loop, UV_RUN_DEFAULT);
    TAP_IS_INT(uv_loop_close(&loop), 0, "the port closed cleanly");
}

/* ---------------------------------------------------------------------------
 * The store sink, and verification of the store.
 */

static struct {
    const char *name;
    bool is_pg;
    char dsn[512];
    char path[128];
} be;

static void ignore_notice(void *arg, const char *message)
{
    MG_UNUSED(arg);
    MG_UNUSED(message);
}

static int raw_exec(const char *q)
{
    int rc = -1;
    if (be.is_pg) {
        PGconn *c = PQconnectdb(be.dsn);
        PGresult *res;
        PQsetNoticeProcessor(c, ignore_notice, NULL);
        res = PQexec(c, q);
        if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
            rc = 0;
        else
            printf("# postgres: %s", PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
    } else {
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(be.path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
            sqlite3_busy_timeout(db, 5000);
            rc = sqlite3_exec(db, q, NULL, NULL, NULL);
            if (rc != SQLITE_OK)
                printf("# sqlite: %s\n", sqlite3_errmsg(db));
        }
        sqlite3_close(db);
    }
    return rc;
}

static struct mg_audit *open_store_writer(void)
{
    struct mg_audit_opts o = {.sink = MG_CONF_AUDIT_STORE, .target = be.dsn};
    struct mg_audit *a = NULL;
    char *err = NULL;
    if (mg_audit_new(&o, &a, &err) != 0)
        printf("# audit store %s: %s\n", be.dsn, err ? err : "?");
    free(err);
    return a;
}

static struct mg_store *store_open(void)
{
    struct mg_store *st = NULL;
    char *err = NULL;
    if (mg_store_open(be.dsn, &st, &err) != 0)
        printf("# store: %s\n", err ? err : "?");
    free(err);
    return st;
}

/* A fresh chain of n records in the store's table. */
static void store_chain(int n)
{
    struct mg_audit *a;
    MG_ASSERT(raw_exec("DELETE FROM audit") == 0);
    a = open_store_writer();
    MG_ASSERT(a != NULL && submit_n(a, 1, n) == n);
    mg_audit_free(a);
}

static void verify_store(struct mg_audit_verify *v, int *rc)
{
    struct mg_store *st = store_open();
    *rc = mg_audit_verify_store(st, v);
    mg_store_free(st);
}

static void test_store_sink(void)
{
    struct mg_audit *a, *b;
    struct mg_audit_verify v;
    struct mg_store *st;
    struct mg_store_audit_filter f = {0};
    json_t *arr = NULL;
    char err[256], q[4096];
    int rc;

    printf("# --- store sink: %s\n", be.name);
    if (be.is_pg)
        MG_ASSERT(raw_exec("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public") == 0);
    a = open_store_writer();
    TAP_OK(a != NULL, "%s: a store writer (migrates the store)", be.name);
    if (!a)
        return;
    TAP_IS_INT(submit_n(a, 1, 4), 4, "%s: submit four", be.name);
    mg_audit_free(a);
    a = open_store_writer();
    TAP_IS_INT(submit_n(a, 5, 2), 2, "%s: two more after a restart", be.name);
    TAP_IS_INT(mg_audit_flush(a, 5000), 0, "%s: flushed", be.name);
    /* A second gateway on the same store: one chain, interleaved. */
    b = open_store_writer();
    TAP_IS_INT(submit_n(b, 7, 1) + submit_n(a, 8, 1) + submit_n(b, 9, 1) + submit_n(a, 10, 1), 4,
               "%s: two writers alternate", be.name);
    TAP_IS_INT(mg_audit_flush(a, 5000) + mg_audit_flush(b, 5000), 0, "%s: both flushed", be.name);
    mg_audit_free(a);
    mg_audit_free(b);
    verify_store(&v, &rc);
    TAP_IS_INT(rc, 0, "%s: verify store: intact (%s)", be.name, v.message);
    TAP_IS_INT(v.records, 10, "%s: ten records, one chain across restarts and writers", be.name);

    st = store_open();
    f = (struct mg_store_audit_filter){.tool = "query", .limit = 100};
    TAP_IS_INT(mg_audit_query_store(st, &f, &arr, err, sizeof err), 0, "%s: query by tool",
               be.name);
    TAP_IS_INT(json_array_size(arr), 5, "%s: the five odd ones call query", be.name);
    json_decref(arr);
    f = (struct mg_store_audit_filter){.user = "alice@example.COM", .decision = "deny"};
    TAP_IS_INT(mg_audit_query_store(st, &f, &arr, err, sizeof err), 0, "%s: by user and decision",
               be.name);
    TAP_IS_INT(json_array_size(arr), 3, "%s: alice's denials (3, 6, 9)", be.name);
    json_decref(arr);
    mg_store_free(st);

    /* Edited: the record text (hash column left as it was). */
    store_chain(5);
    TAP_IS_INT(raw_exec("UPDATE audit SET record = replace(record, '\"limit\":2', '\"limit\":9') "
                        "WHERE seq = 2"),
               0, "%s: edit record 2", be.name);
    verify_store(&v, &rc);
    TAP_IS_INT(rc, MG_EPROTO, "%s: broken", be.name);
    TAP_OK(v.problem == MG_AUDIT_EDITED && v.seq == 2 && strstr(v.message, "hash column"),
           "%s: edited seq 2 (%s)", be.name, v.message);
    /* Edited with the hash column fixed up: the next record gives it away. */
    {
        struct mg_store_audit_row *rows = NULL;
        struct mg_store_audit_filter two = {.after_seq = 1, .limit = 1};
        size_t n = 0;
        char h[65];
        st = store_open();
        MG_ASSERT(mg_store_audit_query(st, &two, &rows, &n) == 0 && n == 1);
        mg_audit_hash_hex(rows[0].record, strlen(rows[0].record), h);
        snprintf(q, sizeof q, "UPDATE audit SET hash = '%s' WHERE seq = 2", h);
        TAP_IS_INT(raw_exec(q), 0, "%s: and its hash column", be.name);
        mg_store_audit_list_free(rows, n);
        mg_store_free(st);
    }
    verify_store(&v, &rc);
    TAP_OK(rc == MG_EPROTO && v.problem == MG_AUDIT_EDITED && v.seq == 2,
           "%s: still edited seq 2 (%s)", be.name, v.message);

    /* A column changed behind the record's back would mislead queries. */
    store_chain(3);
    TAP_IS_INT(raw_exec("UPDATE audit SET decision = 'allow' WHERE seq = 3"), 0,
               "%s: flip a denial's decision column", be.name);
    verify_store(&v, &rc);
    TAP_OK(rc == MG_EPROTO && v.problem == MG_AUDIT_EDITED && v.seq == 3 &&
               strstr(v.message, "decision column"),
           "%s: caught (%s)", be.name, v.message);

    /* Deleted. */
    store_chain(5);
    TAP_IS_INT(raw_exec("DELETE FROM audit WHERE seq = 3"), 0, "%s: delete record 3", be.name);
    verify_store(&v, &rc);
    TAP_OK(rc == MG_EPROTO && v.problem == MG_AUDIT_DELETED && v.seq == 3 && v.line == 0,
           "%s: deleted seq 3 (%s)", be.name, v.message);

    /* Inserted: rows 3.. moved up one, a forged record chained in at 3. */
    store_chain(4);
    {
        struct mg_store_audit_row *rows = NULL;
        size_t n = 0;
        struct mg_audit_record *forged = sample(42, true);
        char hash[65], *text = NULL;
        size_t len;
        struct mg_store_audit_filter all = {0};
        st = store_open();
        mg_store_audit_query(st, &all, &rows, &n);
        mg_audit_record_chain(forged, 3, rows[1].hash, &text, &len, hash);
        TAP_IS_INT(raw_exec("UPDATE audit SET seq = seq + 100 WHERE seq >= 3"), 0, "%s: make room",
                   be.name);
        TAP_IS_INT(raw_exec("UPDATE audit SET seq = seq - 99 WHERE seq >= 100"), 0,
                   "%s: rows 3, 4 are now 4, 5", be.name);
        snprintf(q, sizeof q,
                 "INSERT INTO audit (seq, time_ms, route, subject, email, method, name, "
                 "decision, prev, hash, record) VALUES (3, %lld, 'files', "
                 "'user:alice@example.com', 'Alice@Example.com', 'tools/call', 'execute', "
                 "'allow', '%s', '%s', '%s')",
                 (long long)mg_audit_record_time_ms(forged), rows[1].hash, hash, text);
        TAP_IS_INT(raw_exec(q), 0, "%s: insert the forged row 3", be.name);
        free(text);
        mg_audit_record_free(forged);
        mg_store_audit_list_free(rows, n);
        mg_store_free(st);
    }
    verify_store(&v, &rc);
    TAP_OK(rc == MG_EPROTO && v.problem == MG_AUDIT_INSERTED && v.seq == 3 && v.records == 3,
           "%s: inserted: the real seq 3 has no place (%s)", be.name, v.message);
    TAP_IS_INT(raw_exec("DELETE FROM audit"), 0, "%s: clean up", be.name);
}

/* sync: false with a sink that syncs: each write is synced sync_interval
 * after it at the earliest (not at once: that is the point) and within
 * about that (bounded generously for slow CI machines); syncs are at least
 * sync_interval apart however fast records come; a stop syncs what is left. */
static struct {
    pthread_mutex_t mu;
    int n_writes, n_syncs;
    int64_t first_write_ms, last_write_ms, sync_ms[64];
} lz = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int lz_write(void *p, const struct mg_audit_entry *e, size_t n, bool durable, char *err,
                    size_t cap)
{
    int rc = ts_write(p, e, n, durable, err, cap);
    pthread_mutex_lock(&lz.mu);
    if (lz.n_writes++ == 0)
        lz.first_write_ms = (int64_t)mg_now_ms();
    lz.last_write_ms = (int64_t)mg_now_ms();
    pthread_mutex_unlock(&lz.mu);
    return rc;
}

static int lz_sync(void *p, char *err, size_t cap)
{
    MG_UNUSED(p);
    MG_UNUSED(err);
    MG_UNUSED(cap);
    pthread_mutex_lock(&lz.mu);
    if (lz.n_syncs < (int)MG_ARRAY_LEN(lz.sync_ms))
        lz.sync_ms[lz.n_syncs] = (int64_t)mg_now_ms();
    lz.n_syncs++;
    pthread_mutex_unlock(&lz.mu);
    return 0;
}

static const struct mg_audit_sink_ops lazy_ops = {
    .name = "lazy",
    .persistent = true,
    .open = ts_open,
    .head = ts_head,
    .write = lz_write,
    .sync = lz_sync,
    .close = ts_close,
};

static int lz_get(const int *field)
{
    int v;
    pthread_mutex_lock(&lz.mu);
    v = *field;
    pthread_mutex_unlock(&lz.mu);
    return v;
}

static void test_sync_interval(void)
{
    static const uint64_t intervals[] = {0, 250}; /* 0: the default, 20 ms */
    for (size_t k = 0; k < MG_ARRAY_LEN(intervals); k++) {
        int64_t want = intervals[k] ? (int64_t)intervals[k] : MG_CONF_AUDIT_SYNC_INTERVAL_MS;
        struct mg_audit_opts o = {.sink_ops = &lazy_ops, .sync_interval_ms = intervals[k]};
        struct mg_audit *a = NULL;
        char *err = NULL;
        int64_t start, gap_min = INT64_MAX, first_gap;
        int n_syncs, n_writes;
        bool gaps_ok = true, submits_ok = true;

        ts_reset();
        pthread_mutex_lock(&lz.mu);
        lz.n_writes = lz.n_syncs = 0;
        pthread_mutex_unlock(&lz.mu);
        TAP_IS_INT(mg_audit_new(&o, &a, &err), 0, "a lazy writer, sync_interval %lld ms",
                   (long long)want);
        free(err);
        if (!a)
            continue;
        TAP_IS_INT(mg_audit_submit(a, sample(1, true), NULL, NULL, NULL), 0, "one record");
        WAIT_FOR(lz_get(&lz.n_writes) >= 1);
        TAP_IS_INT(lz_get(&lz.n_writes), 1, "written without waiting for the interval");
        WAIT_FOR(lz_get(&lz.n_syncs) >= 1);
        pthread_mutex_lock(&lz.mu);
        first_gap = lz.sync_ms[0] - lz.first_write_ms;
        pthread_mutex_unlock(&lz.mu);
        TAP_OK(first_gap >= want - 1 && first_gap <= want + 2000,
               "synced %lld ms after the write (interval %lld ms)", (long long)first_gap,
               (long long)want);

        /* Records every 5 ms for 6 intervals: at most one sync per interval. */
        start = (int64_t)mg_now_ms();
        for (int i = 2; (int64_t)mg_now_ms() - start < 6 * want; i++) {
            if (mg_audit_submit(a, sample(i, true), NULL, NULL, NULL) != 0)
                submits_ok = false;
            sleep_ms(5);
        }
        TAP_OK(submits_ok, "records every 5 ms for 6 intervals");
        mg_audit_free(a); /* syncs what is left */
        pthread_mutex_lock(&lz.mu);
        n_syncs = lz.n_syncs;
        n_writes = lz.n_writes;
        for (int i = 1; i < n_syncs && i < (int)MG_ARRAY_LEN(lz.sync_ms); i++) {
            int64_t gap = lz.sync_ms[i] - lz.sync_ms[i - 1];
            if (i == n_syncs - 1)
                break; /* a stop syncs at once: the last gap may be short */
            gap_min = MG_MIN(gap_min, gap);
            if (gap < want - 1)
                gaps_ok = false;
        }
        TAP_OK(n_syncs >= 1 && n_syncs <= (int)MG_ARRAY_LEN(lz.sync_ms) &&
                   lz.sync_ms[MG_MIN(n_syncs, (int)MG_ARRAY_LEN(lz.sync_ms)) - 1] >=
                       lz.last_write_ms,
               "the stop synced after the last write");
        pthread_mutex_unlock(&lz.mu);
        TAP_OK(gaps_ok, "syncs at least %lld ms apart (closest %lld ms)", (long long)want,
               (long long)gap_min);
        TAP_OK(n_syncs >= 3 && n_syncs <= 1 + 6 + 2, "%d syncs for %d writes over 7 intervals",
               n_syncs, n_writes);
        TAP_OK(n_writes > n_syncs, "more writes (%d) than syncs (%d)", n_writes, n_syncs);
    }
}

/* ---------------------------------------------------------------------------
 * Queries on files, and the CLI.
 */

static void test_query_file(void)
{
    char path[128], err[256];
    struct mg_store_audit_filter f = {0};
    json_t *arr = NULL;

    snprintf(path, sizeof path, "%s/query.jsonl", dir);
    make_chain(path, 9); /* odd: route sql, tool query; n%3==0: deny; n%3==2: anonymous */
    {
        FILE *fp = fopen(path, "ab");
        fputs("not a record\n", fp);
        fclose(fp);
    }
#define Q(desc, want)                                                                              \
    do {                                                                                           \
        arr = NULL;                                                                                \
        TAP_IS_INT(mg_audit_query_file(path, &f, &arr, err, sizeof err), 0, "query: %s", desc);    \
        TAP_IS_INT(json_array_size(arr), want, "query %s: %d records", desc, want);                \
    } while (0)
    Q("everything (a foreign line skipped)", 9);
    json_decref(arr);
    f = (struct mg_store_audit_filter){.tool = "query"};
    Q("by tool", 5);
    json_decref(arr);
    f = (struct mg_store_audit_filter){.decision = "deny"};
    Q("by decision", 3);
    json_decref(arr);
    f = (struct mg_store_audit_filter){.user = "ALICE@example.com", .route = "sql"};
    Q("by email (any case) and route", 4);
    json_decref(arr);
    f = (struct mg_store_audit_filter){.user = "user:alice@example.com", .method = "tools/call"};
    Q("by subject and method", 6);
    json_decref(arr);
    f = (struct mg_store_audit_filter){.limit = 2, .newest = true};
    Q("newest 2", 2);
    TAP_OK(json_integer_value(json_object_get(json_array_get(arr, 0), "seq")) == 8 &&
               json_integer_value(json_object_get(json_array_get(arr, 1), "seq")) == 9,
           "seq 8 and 9, oldest first");
    json_decref(arr);
    f = (struct mg_store_audit_filter){.limit = 2};
    Q("first 2", 2);
    TAP_IS_INT(json_integer_value(json_object_get(json_array_get(arr, 0), "seq")), 1, "seq 1, 2");
    json_decref(arr);
    f = (struct mg_store_audit_filter){.since_ms = 4102444800000LL}; /* 2100 */
    Q("since the future", 0);
    json_decref(arr);
    f = (struct mg_store_audit_filter){.since_ms = 1};
    Q("since 1970", 9);
    json_decref(arr);
#undef Q
    TAP_IS_INT(mg_audit_query_file("/nonexistent", &f, &arr, err, sizeof err), MG_EIO,
               "query a missing file: MG_EIO");
}

/* Shows captured output as TAP comments. */
static void diag(const char *out)
{
    for (const char *p = out; p && *p;) {
        size_t n = strcspn(p, "\n");
        printf("#   %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* Runs the CLI with stdout captured into *out. */
static int cli(char **out, int argc, ...)
{
    char *argv[16], cap[160];
    va_list ap;
    int saved, saved_err, fd, rc;

    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;
    snprintf(cap, sizeof cap, "%s/cli.out", dir);
    fflush(stdout);
    fflush(stderr);
    saved = dup(1);
    saved_err = dup(2);
    fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    close(fd);
    fd = open("/dev/null", O_WRONLY); /* usage and errors: only exit codes are checked */
    dup2(fd, 2);
    close(fd);
    rc = mg_cli_audit(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, 1);
    dup2(saved_err, 2);
    close(saved);
    close(saved_err);
    *out = slurp(cap, NULL);
    return rc;
}

static void test_cli(void)
{
    char path[128], conf[128], yaml[512], *out = NULL;
    char **l;
    int n;

    snprintf(path, sizeof path, "%s/cli.jsonl", dir);
    snprintf(conf, sizeof conf, "%s/gw.yaml", dir);
    make_chain(path, 5);
    snprintf(yaml, sizeof yaml,
             "audit: {path: %s}\nroutes: [{name: r, from: 'https://a.example', to: 'http://b'}]\n",
             path);
    spit(conf, yaml);

    TAP_IS_INT(cli(&out, 3, "audit", "verify", "-c"), 2, "usage: -c without a value");
    free(out);
    TAP_IS_INT(cli(&out, 4, "audit", "verify", "-c", conf), 0, "verify -c: exit 0");
    TAP_OK(out && strstr(out, "5 records, chain intact; head seq 5 sha256 "), "prints the head");
    diag(out);
    free(out);
    TAP_IS_INT(cli(&out, 5, "audit", "query", "--json", "--file", path), 0, "query --json");
    {
        json_t *arr = json_loads(out ? out : "", 0, NULL);
        TAP_IS_INT(json_array_size(arr), 5, "a JSON array of five records");
        json_decref(arr);
    }
    free(out);
    TAP_IS_INT(cli(&out, 8, "audit", "query", "--decision", "deny", "--tool", "query", "-c", conf),
               0, "query as a table");
    TAP_OK(out && strstr(out, "DECISION_ID") && strstr(out, " deny ") && strstr(out, "query") &&
               !strstr(out, " allow "),
           "header and the one denied query (seq 3)");
    free(out);

    /* Control characters in a caller's tool name never reach the terminal. */
    {
        struct mg_audit *a = open_file(path, NULL);
        struct mg_audit_record *r = sample(1, true);
        mg_audit_record_set_call(r, "tools/call", "evil\x1b]0;pwned\x07name");
        mg_audit_submit(a, r, NULL, NULL, NULL);
        mg_audit_free(a);
    }
    TAP_IS_INT(cli(&out, 6, "audit", "query", "--since", "1h", "--file", path), 0,
               "query --since 1h");
    TAP_OK(out && strstr(out, "evil?]0;pwned?name") && !strchr(out, '\x1b'),
           "control characters shown as '?'");
    free(out);
    TAP_IS_INT(cli(&out, 6, "audit", "query", "--since", "soon", "--file", path), 2,
               "a bad --since: usage (2)");
    free(out);
    TAP_IS_INT(cli(&out, 6, "audit", "query", "--limit", "0", "--file", path), 2,
               "a bad --limit: usage (2)");
    free(out);
    TAP_IS_INT(cli(&out, 6, "audit", "query", "--decision", "maybe", "--file", path), 2,
               "a bad --decision: usage (2)");
    free(out);
    TAP_IS_INT(cli(&out, 2, "audit", "verify"), 2, "neither -c nor --file: usage (2)");
    free(out);
    TAP_IS_INT(cli(&out, 3, "audit", "frobnicate", "--file"), 2, "unknown subcommand: usage");
    free(out);

    l = lines_of(path, &n);
    free(l[1]);
    memmove(&l[1], &l[2], (size_t)(n - 2) * sizeof *l);
    write_lines(path, l, n - 1);
    free_lines(l, n - 1);
    TAP_IS_INT(cli(&out, 4, "audit", "verify", "--file", path), 1, "verify a broken file: exit 1");
    {
        char want[200];
        snprintf(want, sizeof want, "%s:2: deleted: seq 2: record seq 2 is missing before line 2",
                 path);
        TAP_OK(out && strstr(out, want), "FILE:LINE: problem: seq: message");
        diag(out);
    }
    free(out);

    snprintf(yaml, sizeof yaml,
             "audit: {sink: syslog}\nroutes: [{name: r, from: 'https://a.example', to: "
             "'http://b'}]\n");
    spit(conf, yaml);
    TAP_IS_INT(cli(&out, 4, "audit", "verify", "-c", conf), 1,
               "a syslog sink cannot be verified: exit 1");
    free(out);
    snprintf(yaml, sizeof yaml,
             "state_dir: %s\naudit: {sink: store}\nroutes: [{name: r, from: 'https://a.example', "
             "to: 'http://b'}]\n",
             dir);
    spit(conf, yaml);
    {
        struct mg_audit_opts o = {.sink = MG_CONF_AUDIT_STORE};
        struct mg_audit *a = NULL;
        char dsn[160], *err = NULL;
        snprintf(dsn, sizeof dsn, "sqlite:%s/mcpgate.db", dir);
        o.target = dsn;
        TAP_IS_INT(mg_audit_new(&o, &a, &err), 0, "a store writer on the state dir's store");
        free(err);
        submit_n(a, 1, 3);
        mg_audit_free(a);
    }
    TAP_IS_INT(cli(&out, 4, "audit", "verify", "-c", conf), 0, "verify -c with sink: store");
    TAP_OK(out && strstr(out, "store: 3 records, chain intact"), "reads the store");
    diag(out);
    free(out);
    TAP_IS_INT(cli(&out, 5, "audit", "query", "-c", conf, "--json"), 0, "query the store");
    TAP_OK(out && strstr(out, "\"seq\": 3"), "its records");
    free(out);
}

static void test_from_conf(void)
{
    struct mg_conf *c = NULL;
    struct mg_audit *a = NULL;
    char yaml[512], *err = NULL;
    char sd[128];
    snprintf(sd, sizeof sd, "%s/state", dir);
    MG_ASSERT(mkdir(sd, 0700) == 0);
    snprintf(yaml, sizeof yaml,
             "state_dir: %s\naudit: {arguments: keys, sync: true, on_failure: allow}\n"
             "routes: [{name: r, from: 'https://a.example', to: 'http://b'}]\n",
             sd);
    TAP_IS_INT(mg_conf_load_string("t.yaml", yaml, strlen(yaml), &c, &err), 0, "a config");
    free(err);
    TAP_IS_INT(mg_audit_new_from_conf(c, &a, &err), 0, "a writer from it");
    free(err);
    if (a) {
        TAP_OK(mg_audit_arguments(a) == MG_CONF_AUDIT_ARGS_KEYS && mg_audit_wants_sync(a),
               "its settings");
        submit_n(a, 1, 1);
        mg_audit_free(a);
    }
    {
        char p[160];
        snprintf(p, sizeof p, "%s/audit.jsonl", sd);
        TAP_IS_INT(count_lines(p), 1, "the default path in state_dir");
    }
    mg_conf_unref(c);
}

/* ---------------------------------------------------------------------------
 * Records are written without jansson (record.c); what verify relies on is
 * that the text is jansson's own canonical form of the parsed record. Random
 * records, hostile strings included, are held to that, and their arguments
 * to a reduction done the slow way on a jansson tree (the oracle below).
 */

/* A string of up to max bytes, mostly troublesome: controls, quotes,
 * backslashes, multi-byte characters, bad bytes, NULs (when allowed). */
static size_t rnd_bytes(char *out, size_t max, bool valid)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         " ",
                                         "\"",
                                         "\\",
                                         "/",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\n",
                                         "\t",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "token",
                                         "Password",
                                         "_key"};
    static const char *const bad[] = {"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf"};
    size_t n = 0, want = tap_rand(4) == 0 ? tap_rand((uint32_t)max + 1) : tap_rand(12);
    while (n < want) {
        const char *p = !valid && tap_rand(8) == 0 ? bad[tap_rand(MG_ARRAY_LEN(bad))]
                                                   : pieces[tap_rand(MG_ARRAY_LEN(pieces))];
        size_t l = strlen(p);
        if (n + l > max)
            break;
        memcpy(out + n, p, l);
        n += l;
    }
    out[n] = '\0';
    return n;
}

static json_t *rnd_value(int depth)
{
    char s[1400];
    size_t n;
    switch (depth > 36 ? 3 + tap_rand(4) : tap_rand(8)) {
    case 0:
    case 1: {
        json_t *o = json_object();
        for (uint32_t i = 0, k = tap_rand(6); i < k; i++) {
            n = rnd_bytes(s, tap_rand(3) == 0 ? 600 : 20, true);
            if (tap_rand(3) == 0 && n > 300 && (unsigned char)s[n - 1] < 0x80)
                s[n - 1] = 'x'; /* long keys that are one once cut */
            json_object_setn_new(o, s, n, rnd_value(depth + 1));
        }
        return o;
    }
    case 2: {
        json_t *a = json_array();
        for (uint32_t i = 0, k = tap_rand(5); i < k; i++)
            json_array_append_new(a, rnd_value(depth + 1));
        return a;
    }
    case 3:
        n = rnd_bytes(s, sizeof s - 1, true);
        if (tap_rand(10) == 0 && n > 0 && (unsigned char)s[0] < 0x80)
            s[0] = '\0'; /* JSON allows \u0000 */
        return json_stringn(s, n);
    case 4: return json_integer((json_int_t)tap_rand(2000000) - 1000000);
    case 5: return json_real((double)tap_rand(100000) / 7.0 - 5000.0);
    case 6: return tap_rand(2) ? json_true() : json_false();
    default: return json_null();
    }
}

/* The oracle: the reduction as documented, on a jansson tree. */
static json_t *oracle_str(const char *s, size_t n, size_t max)
{
    struct mg_buf b;
    size_t i = 0;
    mg_buf_init(&b, SIZE_MAX / 2);
    while (i < n) {
        size_t l = mg_utf8_seq_len((const unsigned char *)s + i, n - i);
        bool bad = l == 0 || (l == 1 && s[i] == '\0');
        if (b.len + (bad ? 3 : l) > max)
            break;
        mg_buf_append(&b, bad ? "\xef\xbf\xbd" : s + i, bad ? 3 : l);
        i += bad ? 1 : l;
    }
    if (i < n)
        mg_buf_appendf(&b, "...[truncated %zu bytes]", n - i);
    json_t *j = json_stringn(b.data ? b.data : "", b.len);
    mg_buf_fini(&b);
    return j;
}

static json_t *oracle(const json_t *v, bool redact, int depth)
{
    const char *k;
    size_t klen, i;
    json_t *x, *out;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (depth >= MG_AUDIT_MAX_DEPTH)
            return json_string("[too deep]");
        out = json_object();
        json_object_keylen_foreach((json_t *)v, k, klen, x)
        {
            char *key = mg_xstrndup(k, klen);
            bool secret = redact && strlen(key) == klen && mg_audit_is_secret_key(key);
            json_t *val = secret ? json_string("[redacted]") : oracle(x, redact, depth + 1);
            free(key);
            if (redact && klen > MG_AUDIT_MAX_STRING) {
                json_t *ks = oracle_str(k, klen, MG_AUDIT_MAX_STRING);
                json_object_setn_new(out, json_string_value(ks), json_string_length(ks), val);
                json_decref(ks);
            } else {
                json_object_setn_new(out, k, klen, val);
            }
        }
        return out;
    case JSON_ARRAY:
        if (depth >= MG_AUDIT_MAX_DEPTH)
            return json_string("[too deep]");
        out = json_array();
        json_array_foreach(v, i, x) json_array_append_new(out, oracle(x, redact, depth + 1));
        return out;
    case JSON_STRING:
        if (redact && json_string_length(v) > MG_AUDIT_MAX_STRING)
            return oracle_str(json_string_value(v), json_string_length(v), MG_AUDIT_MAX_STRING);
        return json_copy((json_t *)v);
    default: return json_copy((json_t *)v);
    }
}

static void test_random_records(void)
{
    int bad_canon = 0, bad_args = 0, bad_fields = 0, n = 3000;
    char s[8][1400];
    for (int it = 0; it < n; it++) {
        struct mg_audit_record *r = mg_audit_record_new();
        struct mg_identity *id = tap_rand(3) ? mg_identity_new() : NULL;
        enum mg_conf_audit_args mode = (enum mg_conf_audit_args)tap_rand(4);
        json_t *args = rnd_value(tap_rand(4) == 0 ? 30 : 0), *back, *want = NULL;
        char *text = NULL, *again, hash[MG_AUDIT_HASH_HEX + 1];
        size_t len = 0;
        for (int i = 0; i < 8; i++)
            rnd_bytes(s[i], tap_rand(5) == 0 ? sizeof s[i] - 1 : 40, false);
        if (id) {
            free(id->subject);
            id->subject = strdup(s[0]);
            id->n_groups = tap_rand(4);
            id->groups = calloc(id->n_groups + 1, sizeof(char *));
            for (size_t g = 0; g < id->n_groups; g++)
                id->groups[g] = strdup(s[1 + g]);
        }
        mg_audit_record_set_time_ms(r, (int64_t)tap_rand(2000000000) * 1000 + tap_rand(1000));
        mg_audit_record_set_identity(r, id);
        mg_audit_record_set_route(r, s[4]);
        mg_audit_record_set_source(r, s[5]);
        mg_audit_record_set_session(r, tap_rand(2) ? s[6] : NULL);
        mg_audit_record_set_call(r, s[7], tap_rand(2) ? s[0] : NULL);
        mg_audit_record_set_jsonrpc_id(r, tap_rand(2) ? args : NULL);
        mg_audit_record_set_arguments(r, args, mode);
        mg_audit_record_set_decision(r, tap_rand(2), s[1], "allowed");
        mg_audit_record_set_upstream(r, (int)tap_rand(600) - 1, (int64_t)tap_rand(100000) - 5);
        MG_ASSERT(mg_audit_record_chain(r, it + 1, mg_audit_zero_hash, &text, &len, hash) == 0);
        back = json_loadb(text, len, MG_AUDIT_JSON_FLAGS, NULL);
        again = back ? json_dumps(back, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (!again || strlen(again) != len || memcmp(again, text, len) != 0) {
            if (bad_canon++ == 0)
                printf("# not canonical:\n# %s\n# %s\n", text, again ? again : "(unparsable)");
        }
        if (mode == MG_CONF_AUDIT_ARGS_REDACTED || mode == MG_CONF_AUDIT_ARGS_FULL)
            want = oracle(args, mode == MG_CONF_AUDIT_ARGS_REDACTED, 0);
        else if (mode == MG_CONF_AUDIT_ARGS_KEYS && json_is_object(args))
            want = mg_audit_args_reduce(args, mode); /* checked by test_arguments */
        const json_t *got =
            json_object_get(back, mode == MG_CONF_AUDIT_ARGS_KEYS ? "argument_keys" : "arguments");
        if (want ? !json_equal(want, (json_t *)got) : got != NULL) {
            if (bad_args++ == 0) {
                char *w = want ? json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                printf("# arguments (mode %d):\n# want %s\n# got  %s\n", (int)mode,
                       w ? w : "(none)", text);
                free(w);
            }
        }
        json_t *route = oracle_str(s[4], strlen(s[4]), MG_AUDIT_MAX_FIELD);
        if (!json_equal(route, json_object_get(back, "route")))
            bad_fields++;
        json_decref(route);
        json_decref(want);
        free(again);
        json_decref(back);
        free(text);
        json_decref(args);
        mg_audit_record_free(r);
        mg_identity_unref(id);
    }
    TAP_IS_INT(bad_canon, 0, "%d random records: each text is jansson's canonical form", n);
    TAP_IS_INT(bad_args, 0, "their arguments match the reduction done on a jansson tree");
    TAP_IS_INT(bad_fields, 0, "their strings are bounded and made valid as documented");

    /* Two long keys that are the same once cut are one key, the later value
     * winning, as when a JSON object is built from them. */
    {
        char k1[301], k2[301];
        memset(k1, 'k', 300);
        memcpy(k2, k1, 300);
        k1[299] = '1';
        k2[299] = '2';
        k1[300] = k2[300] = '\0';
        json_t *args = json_pack("{s:i, s:i, s:i}", k1, 1, "b", 2, k2, 3);
        json_t *v = mg_audit_args_reduce(args, MG_CONF_AUDIT_ARGS_REDACTED);
        json_t *o = oracle(args, true, 0);
        TAP_OK(json_object_size(v) == 2 && json_equal(v, o), "keys equal once cut: one, the last");
        json_decref(o);
        json_decref(v);
        json_decref(args);
    }
}

/* --- record pools ----------------------------------------------------------------------- */

struct free_job {
    struct mg_audit_record *r[3];
};

static void *free_elsewhere(void *arg)
{
    struct free_job *j = arg;
    for (size_t i = 0; i < 3; i++)
        mg_audit_record_free(j->r[i]);
    return NULL;
}

static bool same_set(struct mg_audit_record *const *a, struct mg_audit_record *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < n; k++)
            found |= a[i] == b[k];
        if (!found)
            return false;
    }
    return true;
}

static void test_record_pool(void)
{
    mg_audit_record_pool_start();
    struct free_job j;
    for (size_t i = 0; i < 3; i++) {
        j.r[i] = mg_audit_record_new();
        mg_audit_record_set_route(j.r[i], "r");
    }
    struct mg_audit_record *first[3] = {j.r[0], j.r[1], j.r[2]};
    pthread_t t;
    TAP_OK(pthread_create(&t, NULL, free_elsewhere, &j) == 0 && pthread_join(t, NULL) == 0,
           "pool: records freed on another thread");
    struct mg_audit_record *again[3];
    for (size_t i = 0; i < 3; i++)
        again[i] = mg_audit_record_new();
    TAP_OK(same_set(first, again, 3), "pool: records freed elsewhere come back to their thread");
    char *text = NULL;
    size_t len = 0;
    char hash[MG_AUDIT_HASH_HEX + 1];
    TAP_IS_INT(mg_audit_record_chain(again[0], 1, mg_audit_zero_hash, &text, &len, hash), 0,
               "pool: a reused record is a fresh one");
    TAP_OK(text && strstr(text, "\"route\":\"\"") != NULL, "pool: nothing of its last use is left");
    free(text);
    for (size_t i = 0; i < 3; i++)
        mg_audit_record_free(again[i]);
    struct mg_audit_record *r = mg_audit_record_new();
    TAP_OK(r == again[2], "pool: a record freed on its own thread is reused first");
    mg_audit_record_free(r);
    /* Stopping frees every pooled record (ASan's leak check holds it to that). */
    mg_audit_record_pool_stop();
    r = mg_audit_record_new();
    mg_audit_record_free(r);
    TAP_OK(true, "pool: stopped, records are malloc blocks again");
}

/* Text that JSON carries raw (no quote, backslash or control), so a body
 * holding it as a string or a key is read flat: multi-byte characters
 * (cut points fall inside them), secret-looking words, sometimes long. */
static size_t raw_text(char *out, size_t max)
{
    static const char *const pieces[] = {
        "a",     "Z",        " ",    "/", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "token", "Password", "_key", "x"};
    size_t n = 0, want = tap_rand(4) == 0 ? 200 + tap_rand((uint32_t)max - 199) : tap_rand(12);
    while (n < want) {
        const char *p = pieces[tap_rand(MG_ARRAY_LEN(pieces))];
        size_t l = strlen(p);
        if (n + l > max)
            break;
        memcpy(out + n, p, l);
        n += l;
    }
    out[n] = '\0';
    return n;
}

/* The record text of r with these arguments set one way or the other. */
static char *record_text(struct mg_audit_record *r, size_t *len)
{
    char *text = NULL, hash[MG_AUDIT_HASH_HEX + 1];
    MG_ASSERT(mg_audit_record_chain(r, 7, mg_audit_zero_hash, &text, len, hash) == 0);
    return text;
}

static void test_flat_arguments(void)
{
    static const char *const secrets[] = {"password",      "API_KEY",   "xTokenx",
                                          "Authorization", "my_cookie", "Private_Key"};
    static const char *const ints[] = {
        "0", "-0", "7", "-12", "9223372036854775807", "-9223372036854775808", "100000"};
    int n = 3000, n_differ = 0, n_not_flat = 0;
    size_t n_secret = 0, n_cut = 0, n_merged = 0, n_texts = 0;
    char key[8][700], val[1500];
    for (int it = 0; it < n; it++) {
        struct mg_buf args, body;
        size_t members = tap_rand(9), n_keys = 0;
        mg_buf_init(&args, 1 << 20);
        mg_buf_init(&body, 1 << 20);
        mg_buf_appends(&args, "{");
        for (size_t m = 0; m < members; m++) {
            uint32_t kind = tap_rand(8);
            if (kind == 0) {
                snprintf(key[n_keys], sizeof key[n_keys], "%s", secrets[tap_rand(6)]);
            } else if (kind == 1 && n_keys > 0 && strlen(key[n_keys - 1]) > 300 &&
                       (unsigned char)key[n_keys - 1][strlen(key[n_keys - 1]) - 1] < 0x80) {
                /* the same as the one before once cut: a long shared start
                 * and the same length (the last character ASCII) */
                memcpy(key[n_keys], key[n_keys - 1], sizeof key[n_keys]);
                size_t l = strlen(key[n_keys]);
                key[n_keys][l - 1] = key[n_keys][l - 1] == 'q' ? 'r' : 'q';
            } else if (kind == 2) {
                size_t l = 300 + tap_rand(300);
                raw_text(key[n_keys], 40);
                size_t h = strlen(key[n_keys]);
                memset(key[n_keys] + h, 'k', l - h);
                key[n_keys][l] = '\0';
            } else {
                raw_text(key[n_keys], 600);
            }
            bool dup = false;
            for (size_t j = 0; j < n_keys; j++)
                dup = dup || strcmp(key[j], key[n_keys]) == 0;
            if (dup)
                continue;
            mg_buf_appendf(&args, "%s\"%s\":", n_keys ? "," : "", key[n_keys]);
            n_keys++;
            switch (tap_rand(6)) {
            case 0:
            case 1:
                raw_text(val, sizeof val - 1);
                mg_buf_appendf(&args, "\"%s\"", val);
                break;
            case 2: mg_buf_appends(&args, ints[tap_rand(MG_ARRAY_LEN(ints))]); break;
            case 3: mg_buf_appendf(&args, "%d", (int)tap_rand(2000001) - 1000000); break;
            case 4: mg_buf_appends(&args, tap_rand(2) ? "true" : "false"); break;
            default: mg_buf_appends(&args, "null"); break;
            }
        }
        mg_buf_appends(&args, "}");
        mg_buf_appendf(&body,
                       "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
                       "\"name\":\"q\",\"arguments\":%s}}",
                       args.data);
        struct mg_jsonrpc_info info;
        mg_jsonrpc_inspect(body.data, body.len, &info);
        const struct mg_args_flat *flat = info.n_messages ? info.msgs[0].args_flat : NULL;
        json_t *tree = json_loadb(args.data, args.len, JSON_REJECT_DUPLICATES, NULL);
        if (flat == NULL || tree == NULL) {
            n_not_flat++;
        } else {
            struct mg_audit_record *r = mg_audit_record_new();
            for (int mode = 0; mode < 4; mode++) {
                size_t lt, lf;
                mg_audit_record_set_arguments(r, tree, (enum mg_conf_audit_args)mode);
                char *t = record_text(r, &lt);
                mg_audit_record_set_arguments_flat(r, flat, (enum mg_conf_audit_args)mode);
                char *f = record_text(r, &lf);
                n_texts++;
                if (lt != lf || memcmp(t, f, lt) != 0) {
                    if (n_differ++ < 2)
                        printf("# mode %d, flat and tree differ:\n# %s\n# %s\n", mode, t, f);
                }
                if (mode == MG_CONF_AUDIT_ARGS_REDACTED) {
                    n_secret += strstr(t, "\"[redacted]\"") != NULL;
                    n_cut += strstr(t, "...[truncated ") != NULL;
                    json_t *v = mg_audit_args_reduce(tree, MG_CONF_AUDIT_ARGS_REDACTED);
                    n_merged += json_object_size(v) < json_object_size(tree);
                    json_decref(v);
                }
                free(t);
                free(f);
            }
            mg_audit_record_free(r);
        }
        json_decref(tree);
        mg_jsonrpc_info_fini(&info);
        mg_buf_fini(&args);
        mg_buf_fini(&body);
    }
    TAP_IS_INT(n_not_flat, 0, "%d random flat arguments: each read flat", n);
    TAP_IS_INT(n_differ, 0,
               "%zu records (four modes): flat arguments give the tree's text byte "
               "for byte",
               n_texts);
    TAP_OK(n_secret > 100 && n_cut > 100 && n_merged > 10,
           "with secrets redacted (%zu), strings and keys cut (%zu), keys merged once cut (%zu)",
           n_secret, n_cut, n_merged);

    /* None: no arguments at all; and NULL flat arguments are none. */
    struct mg_audit_record *r = mg_audit_record_new();
    size_t l1, l2;
    char *a = record_text(r, &l1);
    mg_audit_record_set_arguments_flat(r, NULL, MG_CONF_AUDIT_ARGS_FULL);
    char *b = record_text(r, &l2);
    TAP_OK(l1 == l2 && memcmp(a, b, l1) == 0 && strstr(b, "argument") == NULL,
           "no flat arguments: no arguments field");
    free(a);
    free(b);
    mg_audit_record_free(r);
}

int main(void)
{
    const char *pg = getenv("MCPGATE_TEST_PG_DSN");
    char cmd[160];

    snprintf(dir, sizeof dir, "/tmp/mg-audit-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_record();
    test_record_pool();
    test_arguments();
    test_random_records();
    test_flat_arguments();
    test_since();
    /* The file sink's writer thread frees records the test thread made. */
    mg_audit_record_pool_start();
    test_file_sink();
    mg_audit_record_pool_stop();
    test_verify_file();
    test_worst_case();
    test_nul_in_full_arguments();
    test_queue_bound();
    test_sink_failure();
    test_file_failure();
    test_sync();
    test_sync_interval();
    test_query_file();
    test_from_conf();
    test_cli();

    be.name = "sqlite";
    snprintf(be.path, sizeof be.path, "%s/store.db", dir);
    snprintf(be.dsn, sizeof be.dsn, "sqlite:%s", be.path);
    test_store_sink();
    if (pg && *pg) {
        be.name = "postgres";
        be.is_pg = true;
        snprintf(be.dsn, sizeof be.dsn, "%s", pg);
        test_store_sink();
    } else {
        TAP_SKIP("audit store sink on PostgreSQL: MCPGATE_TEST_PG_DSN is not set (make unit "
                 "sets it)");
    }

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}

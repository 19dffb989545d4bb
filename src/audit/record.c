/* Audit records: building, argument reduction, canonical text and hashes;
 * see record.h. */
#include "audit/record.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <time.h>

struct mg_audit_record {
    json_t *o; /* every field but seq and prev until chained */
    char decision_id[MG_AUDIT_DECISION_ID + 1];
    int64_t time_ms;
    size_t args_bytes; /* serialised size of the kept arguments */
};

const char mg_audit_zero_hash[MG_AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[b[i] >> 4];
        out[2 * i + 1] = hexdigits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void mg_audit_hash_hex(const void *data, size_t len, char out[MG_AUDIT_HASH_HEX + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    to_hex(md, sizeof md, out);
}

/* ---------------------------------------------------------------------------
 * Strings. Every string a record holds is valid UTF-8 (jansson refuses
 * anything else) and bounded: at most max bytes, cut at a character
 * boundary, then "...[truncated N bytes]" with N the input bytes removed.
 */

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

static json_t *bounded_string(const char *s, size_t n, size_t max)
{
    struct mg_buf b;
    size_t i = 0, kept;
    json_t *j;

    mg_buf_init(&b, max + 64);
    while (i < n) {
        size_t l = mg_utf8_seq_len((const unsigned char *)s + i, n - i);
        /* A NUL is valid JSON (\u0000) but ends C strings downstream. */
        bool bad = l == 0 || (l == 1 && s[i] == '\0');
        if (b.len + (bad ? 3 : l) > max) /* the bound is on what is kept */
            break;
        if (bad)
            MG_ASSERT(mg_buf_append(&b, replacement, 3) == 0);
        else
            MG_ASSERT(mg_buf_append(&b, s + i, l) == 0);
        i += bad ? 1 : l;
    }
    kept = i;
    if (kept < n)
        MG_ASSERT(mg_buf_appendf(&b, "...[truncated %zu bytes]", n - kept) == 0);
    j = json_stringn(b.data ? b.data : "", b.len);
    mg_buf_fini(&b);
    MG_ASSERT(j != NULL);
    return j;
}

static json_t *field(const char *s)
{
    return bounded_string(s ? s : "", s ? strlen(s) : 0, MG_AUDIT_MAX_FIELD);
}

/* ---------------------------------------------------------------------------
 * Arguments.
 */

/* Substrings of key names whose values are secrets (docs/config.md). */
static const char *const secret_words[] = {
    "password",    "passwd",      "passphrase",    "secret",     "token",      "api_key",
    "apikey",      "api-key",     "authorization", "auth_key",   "bearer",     "cookie",
    "session_key", "private_key", "privatekey",    "access_key", "credential",
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool contains_ci(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && lower(hay[i + j]) == needle[j])
            j++;
        if (j == m)
            return true;
    }
    return false;
}

static bool is_secret_keyn(const char *key, size_t n)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(secret_words); i++)
        if (contains_ci(key, n, secret_words[i]))
            return true;
    return false;
}

bool mg_audit_is_secret_key(const char *key)
{
    return key && is_secret_keyn(key, strlen(key));
}

/* A copy of v with secrets masked and strings cut (redact), or a plain
 * copy bounded in depth only (full). */
static json_t *reduce(const json_t *v, bool redact, int depth)
{
    json_t *out, *x;
    const char *k;
    size_t klen, i;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (depth >= MG_AUDIT_MAX_DEPTH)
            return json_string("[too deep]");
        out = json_object();
        json_object_keylen_foreach((json_t *)v, k, klen, x)
        {
            json_t *val = redact && is_secret_keyn(k, klen) ? json_string("[redacted]")
                                                            : reduce(x, redact, depth + 1);
            if (redact && klen > MG_AUDIT_MAX_STRING) {
                json_t *ks = bounded_string(k, klen, MG_AUDIT_MAX_STRING);
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
        json_array_foreach(v, i, x) json_array_append_new(out, reduce(x, redact, depth + 1));
        return out;
    case JSON_STRING:
        if (redact && json_string_length(v) > MG_AUDIT_MAX_STRING)
            return bounded_string(json_string_value(v), json_string_length(v), MG_AUDIT_MAX_STRING);
        return json_stringn(json_string_value(v), json_string_length(v));
    default: return json_copy((json_t *)v); /* numbers, true, false, null */
    }
}

static int key_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    size_t lx = json_string_length(x), ly = json_string_length(y);
    int c = memcmp(json_string_value(x), json_string_value(y), MG_MIN(lx, ly));
    return c ? c : (lx > ly) - (lx < ly);
}

json_t *mg_audit_args_reduce(const json_t *args, enum mg_conf_audit_args mode)
{
    if (!args || mode == MG_CONF_AUDIT_ARGS_NONE)
        return NULL;
    if (mode == MG_CONF_AUDIT_ARGS_KEYS) {
        const char *k;
        size_t klen, n = 0;
        json_t *x, *out, **keys;
        if (!json_is_object(args))
            return NULL;
        keys = mg_xcalloc(json_object_size(args) + 1, sizeof *keys);
        json_object_keylen_foreach((json_t *)args, k, klen, x)
        {
            MG_UNUSED(x);
            keys[n++] = bounded_string(k, klen, MG_AUDIT_MAX_STRING);
        }
        qsort(keys, n, sizeof *keys, key_cmp);
        out = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(out, keys[i]);
        free(keys);
        return out;
    }
    return reduce(args, mode == MG_CONF_AUDIT_ARGS_REDACTED, 0);
}

/* ---------------------------------------------------------------------------
 * Records.
 */

static void set(struct mg_audit_record *r, const char *key, json_t *v)
{
    MG_ASSERT(v != NULL && json_object_set_new(r->o, key, v) == 0);
}

struct mg_audit_record *mg_audit_record_new(void)
{
    struct mg_audit_record *r = mg_xcalloc(1, sizeof *r);
    uint8_t id[MG_AUDIT_DECISION_ID / 2];
    struct timespec ts;

    /* The id is how a denied caller and an operator find the same record:
     * unguessable, so knowing one id tells nothing of another. */
    MG_ASSERT(RAND_bytes(id, sizeof id) == 1);
    to_hex(id, sizeof id, r->decision_id);
    r->o = json_object();
    MG_ASSERT(r->o != NULL);
    clock_gettime(CLOCK_REALTIME, &ts);
    mg_audit_record_set_time_ms(r, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    set(r, "v", json_integer(1));
    set(r, "decision_id", json_string(r->decision_id));
    mg_audit_record_set_route(r, NULL);
    mg_audit_record_set_identity(r, NULL);
    mg_audit_record_set_source(r, NULL);
    mg_audit_record_set_session(r, NULL);
    mg_audit_record_set_jsonrpc_id(r, NULL);
    mg_audit_record_set_call(r, NULL, NULL);
    mg_audit_record_set_decision(r, false, NULL, NULL);
    mg_audit_record_set_upstream(r, 0, 0);
    return r;
}

void mg_audit_record_free(struct mg_audit_record *r)
{
    if (!r)
        return;
    json_decref(r->o);
    free(r);
}

const char *mg_audit_record_decision_id(const struct mg_audit_record *r)
{
    return r->decision_id;
}

int64_t mg_audit_record_time_ms(const struct mg_audit_record *r)
{
    return r->time_ms;
}

void mg_audit_record_set_time_ms(struct mg_audit_record *r, int64_t unix_ms)
{
    char t[40];
    r->time_ms = unix_ms;
    mg_audit_format_time(unix_ms, t, sizeof t);
    set(r, "time", json_string(t));
}

void mg_audit_record_set_route(struct mg_audit_record *r, const char *route)
{
    set(r, "route", field(route));
}

void mg_audit_record_set_identity(struct mg_audit_record *r, const struct mg_identity *id)
{
    json_t *o = json_object(), *groups = json_array();
    for (size_t i = 0; id && i < id->n_groups && i < MG_IDENTITY_MAX_GROUPS; i++)
        json_array_append_new(groups, field(id->groups[i]));
    json_object_set_new(o, "subject", field(id ? id->subject : NULL));
    json_object_set_new(o, "email", field(id ? id->email : NULL));
    json_object_set_new(o, "groups", groups);
    json_object_set_new(o, "client_id", field(id ? id->client_id : NULL));
    json_object_set_new(o, "auth_method",
                        field(mg_auth_method_name(id ? id->method : MG_AUTH_NONE)));
    json_object_set_new(o, "token_id", field(id ? id->token_id : NULL));
    set(r, "identity", o);
}

void mg_audit_record_set_source(struct mg_audit_record *r, const char *address)
{
    set(r, "source", field(address));
}

void mg_audit_record_set_session(struct mg_audit_record *r, const char *mcp_session_id)
{
    set(r, "session", field(mcp_session_id));
}

void mg_audit_record_set_jsonrpc_id(struct mg_audit_record *r, const json_t *id)
{
    json_t *v;
    if (json_is_string(id))
        v = bounded_string(json_string_value(id), json_string_length(id), MG_AUDIT_MAX_FIELD);
    else if (json_is_number(id))
        v = json_copy((json_t *)id);
    else
        v = json_null();
    set(r, "jsonrpc_id", v);
}

void mg_audit_record_set_jsonrpc_id_json(struct mg_audit_record *r, const char *id_json)
{
    json_t *id = id_json ? json_loads(id_json, JSON_DECODE_ANY | MG_AUDIT_JSON_FLAGS, NULL) : NULL;
    mg_audit_record_set_jsonrpc_id(r, id);
    json_decref(id);
}

void mg_audit_record_set_call(struct mg_audit_record *r, const char *method, const char *name)
{
    set(r, "method", field(method));
    set(r, "name", field(name));
}

void mg_audit_record_set_arguments(struct mg_audit_record *r, const json_t *args,
                                   enum mg_conf_audit_args mode)
{
    json_t *v = mg_audit_args_reduce(args, mode);
    size_t n;

    json_object_del(r->o, "arguments");
    json_object_del(r->o, "argument_keys");
    r->args_bytes = 0;
    if (!v)
        return;
    /* Bounded whatever the mode: a record is one line, one row, one
     * message, and the writer's queue counts its bytes. */
    n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    if (n > MG_AUDIT_MAX_ARGS_BYTES) {
        char msg[64];
        json_decref(v);
        snprintf(msg, sizeof msg, "[too large: %zu bytes]", n);
        v = json_string(msg);
        n = strlen(msg) + 2;
    }
    r->args_bytes = n;
    set(r, mode == MG_CONF_AUDIT_ARGS_KEYS ? "argument_keys" : "arguments", v);
}

void mg_audit_record_set_decision(struct mg_audit_record *r, bool allow, const char *rule,
                                  const char *reason)
{
    set(r, "decision", json_string(allow ? "allow" : "deny"));
    set(r, "rule", field(rule));
    set(r, "reason", field(reason));
}

void mg_audit_record_set_upstream(struct mg_audit_record *r, int status, int64_t latency_ms)
{
    set(r, "upstream_status", json_integer(status));
    set(r, "latency_ms", json_integer(latency_ms < 0 ? 0 : latency_ms));
}

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

void mg_audit_record_cols(const struct mg_audit_record *r, struct mg_audit_record_cols *out)
{
    const json_t *id = json_object_get(r->o, "identity");
    out->route = str_of(r->o, "route");
    out->subject = str_of(id, "subject");
    out->email = str_of(id, "email");
    out->method = str_of(r->o, "method");
    out->name = str_of(r->o, "name");
    out->decision = str_of(r->o, "decision");
}

size_t mg_audit_record_size(const struct mg_audit_record *r)
{
    /* Everything but the arguments is bounded small; 4 KiB covers it short
     * of a record with hundreds of long group names, which still counts. */
    return sizeof *r + 4096 + r->args_bytes;
}

int mg_audit_record_chain(struct mg_audit_record *r, int64_t seq, const char *prev, char **out,
                          size_t *len, char hash[MG_AUDIT_HASH_HEX + 1])
{
    char *s;
    set(r, "seq", json_integer(seq));
    set(r, "prev", json_string(prev));
    /* Sorted keys and no whitespace: one record has one text, so anyone can
     * recompute the chain from the parsed records, not only from the bytes. */
    s = json_dumps(r->o, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        return MG_ENOMEM;
    *out = s;
    *len = strlen(s);
    mg_audit_hash_hex(s, *len, hash);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Time.
 */

void mg_audit_format_time(int64_t unix_ms, char *out, size_t cap)
{
    time_t secs = (time_t)(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
    int ms = (int)(unix_ms - (int64_t)secs * 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, cap, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

/* Exactly n decimal digits at *p; advances *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool lit(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static int parse_rfc3339(const char *s, int64_t *unix_ms)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
    struct tm tm = {0};
    time_t t;

    if (!digits(&p, 4, &y) || !lit(&p, '-') || !digits(&p, 2, &mo) || !lit(&p, '-') ||
        !digits(&p, 2, &d))
        return MG_EINVAL;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return MG_EINVAL;
        p++;
        if (!digits(&p, 2, &h) || !lit(&p, ':') || !digits(&p, 2, &mi) || !lit(&p, ':') ||
            !digits(&p, 2, &sec))
            return MG_EINVAL;
        if (*p == '.') {
            int scale = 100, n = 0;
            p++;
            while (*p >= '0' && *p <= '9' && n < 9) {
                ms += (*p - '0') * scale;
                scale /= 10;
                p++;
                n++;
            }
            if (n == 0)
                return MG_EINVAL;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om, sign = *p == '-' ? -1 : 1;
            p++;
            if (!digits(&p, 2, &oh) || !lit(&p, ':') || !digits(&p, 2, &om) || oh > 23 || om > 59)
                return MG_EINVAL;
            off = sign * (oh * 60 + om);
        } else {
            return MG_EINVAL;
        }
        if (*p != '\0')
            return MG_EINVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return MG_EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    /* timegm normalises 2025-02-31 to March: refuse dates that moved. */
    if (tm.tm_mday != d || tm.tm_mon != mo - 1)
        return MG_EINVAL;
    *unix_ms = ((int64_t)t - (int64_t)off * 60) * 1000 + ms;
    return 0;
}

int mg_audit_parse_since(const char *s, int64_t now_ms, int64_t *unix_ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    size_t n, i = 0;
    uint64_t v;

    if (!s || !*s)
        return MG_EINVAL;
    if (parse_rfc3339(s, unix_ms) == 0)
        return 0;
    n = strlen(s);
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0 || i > 12 || mg_parse_u64(s, i, &v) != 0)
        return MG_EINVAL;
    for (size_t u = 0; u < MG_ARRAY_LEN(units); u++) {
        if (strcmp(s + i, units[u].unit) == 0) {
            *unix_ms = now_ms - (int64_t)v * units[u].ms;
            return 0;
        }
    }
    return MG_EINVAL;
}

/* Audit records: building, argument reduction, canonical text and hashes;
 * see record.h.
 *
 * A record is a plain struct: the loop that made the decision copies the
 * few strings it needs (bounded) into the record's arena and reduces the
 * arguments straight to their canonical text; the writer thread turns the
 * rest into text in one pass, with the keys in their fixed sorted order. No
 * JSON tree is built for a record: this is on every request's path
 * (bench/RESULTS.md, "Where the time goes"). The text is byte for byte what
 * jansson writes for the parsed record with JSON_COMPACT | JSON_SORT_KEYS,
 * which is how `mcpgate audit verify` checks it; tests/unit/test_audit.c
 * holds the two to that. */
#include "audit/record.h"
#include "authn/token.h"
#include "mcp/args.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The strings a record copies, each bounded (see field()). */
enum {
    F_ROUTE,
    F_SOURCE,
    F_SESSION,
    F_METHOD,
    F_NAME,
    F_RULE,
    F_REASON,
    F_JSONRPC_ID,
    F_SUBJECT,
    F_EMAIL,
    F_CLIENT_ID,
    F_AUTH_METHOD,
    F_TOKEN_ID,
    F_COUNT
};

/* A string in the arena: its first `len` bytes (at most the bound plus one
 * character: enough to cut it where the writer will) and its whole length. */
struct span {
    uint32_t off, len, orig; /* orig: at most UINT32_MAX (a body is far smaller) */
};

enum id_kind { ID_NULL, ID_STRING, ID_NUMBER };

/* A usual record (route, identity, call, rule, small arguments) fits in one
 * allocation: the writer thread frees records that loops allocated, and a
 * free across threads costs more than the copy (bench/RESULTS.md). */
#define INLINE_ARENA  448 /* the whole record stays under glibc's 1 KiB large-chunk */
#define INLINE_GROUPS 4   /* threshold, past which malloc consolidates its fast bins */
#define INLINE_ARGS   256 /* arguments text up to this goes in the arena */

struct mg_audit_record {
    char decision_id[MG_AUDIT_DECISION_ID + 1];
    int64_t time_ms;
    bool allow;
    int upstream_status;
    int64_t latency_ms;
    enum id_kind id_kind; /* ID_STRING: a string field; ID_NUMBER: its JSON text */
    struct span f[F_COUNT];
    struct span *groups; /* groups_inline, or allocated for many */
    struct span groups_inline[INLINE_GROUPS];
    size_t n_groups;
    /* The copied strings: in `inline_arena` until they outgrow it. */
    char *arena;
    size_t arena_len, arena_cap;
    /* The reduced arguments as canonical JSON text, under "arguments" or
     * "argument_keys": in the arena (args_off) when small, else args_heap. */
    bool has_args, args_keys;
    size_t args_off, args_len;
    char *args_heap;
    /* mg_audit_record_cols: the indexed fields, bounded, NUL-terminated. */
    struct mg_buf cols;
    /* The pool it goes back to (NULL: malloc's), and its link there. */
    struct rec_pool *pool;
    struct mg_audit_record *next_free;
    /* The writer's queue entry (mg_audit_record_link). */
    _Alignas(max_align_t) unsigned char link[MG_AUDIT_RECORD_LINK];
    char inline_arena[INLINE_ARENA];
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
    uint8_t md[MG_TOKEN_HASH_LEN];
    MG_ASSERT(mg_sha256(data, len, md) == MG_OK);
    to_hex(md, sizeof md, out);
}

/* Records are written a few bytes at a time: the common case (room in
 * the buffer) is a copy. */
static inline void put(struct mg_buf *b, const void *s, size_t n)
{
    if (n < b->cap - b->len && n <= b->max - b->len) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    MG_ASSERT(mg_buf_append(b, s, n) == 0);
}

#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

static void put_i64(struct mg_buf *b, int64_t v)
{
    if (v < 0) {
        PUT_LIT(b, "-");
        MG_ASSERT(mg_buf_append_u64(b, (uint64_t)0 - (uint64_t)v) == 0);
    } else {
        MG_ASSERT(mg_buf_append_u64(b, (uint64_t)v) == 0);
    }
}

/* ---------------------------------------------------------------------------
 * Strings. Every string a record writes is valid UTF-8 and bounded: at most
 * max bytes, cut at a character boundary, then "...[truncated N bytes]"
 * with N the input bytes removed. A bad byte, or a NUL (valid JSON, but it
 * ends C strings downstream), becomes U+FFFD.
 */

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Appends the bounded form of s (n bytes available of orig in all) to b. */
static void put_bounded(struct mg_buf *b, const char *s, size_t n, size_t orig, size_t max)
{
    size_t i = 0, out = 0;
    while (i < n) {
        size_t l = mg_utf8_seq_len((const unsigned char *)s + i, n - i);
        bool bad = l == 0 || (l == 1 && s[i] == '\0');
        if (out + (bad ? 3 : l) > max) /* the bound is on what is kept */
            break;
        if (bad)
            put(b, replacement, 3);
        else
            put(b, s + i, l);
        out += bad ? 3 : l;
        i += bad ? 1 : l;
    }
    if (i < orig)
        MG_ASSERT(mg_buf_appendf(b, "...[truncated %zu bytes]", orig - i) == 0);
}

/* The bytes that may stand in a JSON string as they are (jansson's rules:
 * '"', '\\' and controls are escaped, everything else is kept). */
static bool plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}

/* s (valid UTF-8) as a JSON string, escaped as jansson escapes it. */
static void put_json_str(struct mg_buf *b, const char *s, size_t n)
{
    static const char upper[] = "0123456789ABCDEF";
    size_t i = 0;
    PUT_LIT(b, "\"");
    while (i < n) {
        size_t run = i;
        while (run < n && plain((unsigned char)s[run]))
            run++;
        put(b, s + i, run - i);
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        switch (c) {
        case '"': PUT_LIT(b, "\\\""); break;
        case '\\': PUT_LIT(b, "\\\\"); break;
        case '\b': PUT_LIT(b, "\\b"); break;
        case '\f': PUT_LIT(b, "\\f"); break;
        case '\n': PUT_LIT(b, "\\n"); break;
        case '\r': PUT_LIT(b, "\\r"); break;
        case '\t': PUT_LIT(b, "\\t"); break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', upper[c >> 4], upper[c & 15]};
            put(b, e, sizeof e);
        }
        }
        i = run + 1;
    }
    PUT_LIT(b, "\"");
}

/* True if s is printable ASCII without '"' or '\\', i.e. its bounded form
 * and its JSON text are s itself in quotes. */
static bool simple(const char *s, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    /* 16 bytes at a time: as signed bytes, controls and every byte >= 0x80
     * are below 0x20. */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        if (_mm_movemask_epi8(m))
            return false;
    }
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!plain(c) || c >= 0x80)
            return false;
    }
    return true;
}

/* The bounded form of s as a JSON string. */
static void put_field(struct mg_buf *b, const char *s, size_t n, size_t orig, size_t max)
{
    if (orig <= max && simple(s, n)) {
        PUT_LIT(b, "\"");
        put(b, s, n);
        PUT_LIT(b, "\"");
        return;
    }
    struct mg_buf t;
    mg_buf_init(&t, max + 64);
    put_bounded(&t, s, n, orig, max);
    put_json_str(b, t.data ? t.data : "", t.len);
    mg_buf_fini(&t);
}

/* ---------------------------------------------------------------------------
 * Arguments, reduced straight to canonical text: a jansson tree, or flat
 * arguments (mcp/args.h) through the same writers, so that the two give the
 * same bytes.
 */

/* Substrings of key names whose values are secrets (docs/config.md), with
 * their lengths: every argument key of every request is checked. */
#define SW(lit)                                                                                    \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }
static const struct {
    const char *s;
    size_t len;
} secret_words[] = {
    SW("password"),   SW("passwd"),     SW("passphrase"),  SW("secret"),        SW("token"),
    SW("api_key"),    SW("apikey"),     SW("api-key"),     SW("authorization"), SW("auth_key"),
    SW("bearer"),     SW("cookie"),     SW("session_key"), SW("private_key"),   SW("privatekey"),
    SW("access_key"), SW("credential"),
};
#undef SW
#define SECRET_WORD_MIN 5 /* "token" */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool contains_ci(const char *hay, size_t n, const char *needle, size_t m)
{
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
    if (n < SECRET_WORD_MIN)
        return false;
    for (size_t i = 0; i < MG_ARRAY_LEN(secret_words); i++)
        if (secret_words[i].len <= n && contains_ci(key, n, secret_words[i].s, secret_words[i].len))
            return true;
    return false;
}

bool mg_audit_is_secret_key(const char *key)
{
    return key && is_secret_keyn(key, strlen(key));
}

/* A key as written: bounded (redacted mode, when long) or as it is. */
struct key {
    const char *k; /* as written */
    size_t len;
    size_t order; /* position in the object */
    const json_t *v;
    const struct mg_arg *arg; /* flat arguments: the member (v is NULL) */
    const char *orig;         /* the key as sent: secrets are judged on it */
    size_t orig_len;
    size_t cut_off; /* cut: where its cut form starts in the keys' buffer */
    bool cut;
};

#define SMALL_OBJECT 8 /* keys sorted without an allocation */

/* Points each cut key at its text once the buffer holding them is final. */
static void settle_keys(struct key *keys, size_t n, const struct mg_buf *kb)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].cut) /* an empty key leaves the buffer unallocated */
            keys[i].k = kb->data ? kb->data + keys[i].cut_off : "";
}

static void cut_key(struct key *key, struct mg_buf *kb)
{
    key->cut = true;
    key->cut_off = kb->len;
    put_bounded(kb, key->orig, key->orig_len, key->orig_len, MG_AUDIT_MAX_STRING);
    key->len = kb->len - key->cut_off;
}

static int key_cmp(const void *a, const void *b)
{
    const struct key *x = a, *y = b;
    int c = memcmp(x->k, y->k, MG_MIN(x->len, y->len));
    if (c == 0)
        c = (x->len > y->len) - (x->len < y->len);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static bool same_key(const struct key *x, const struct key *y)
{
    return x->len == y->len && memcmp(x->k, y->k, x->len) == 0;
}

static void put_value(struct mg_buf *b, const json_t *v, bool redact, int depth);
static void put_arg(struct mg_buf *b, const struct mg_arg *a, bool redact);

static const char redacted[] = "\"[redacted]\"";

/* An object's members (keys[], gathered in member order, the cut ones in
 * kb), at depth: keys sorted by their bytes, then their length. Two keys
 * that are the same once cut are one, the later value winning, as in a
 * JSON object. */
static void put_members(struct mg_buf *b, struct key *keys, size_t n, const struct mg_buf *kb,
                        bool redact, int depth)
{
    settle_keys(keys, n, kb);
    qsort(keys, n, sizeof *keys, key_cmp);
    PUT_LIT(b, "{");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && same_key(&keys[i], &keys[i + 1]))
            continue;
        if (!first)
            PUT_LIT(b, ",");
        first = false;
        put_json_str(b, keys[i].k, keys[i].len);
        PUT_LIT(b, ":");
        if (redact && is_secret_keyn(keys[i].orig, keys[i].orig_len))
            PUT_LIT(b, redacted);
        else if (keys[i].arg)
            put_arg(b, keys[i].arg, redact);
        else
            put_value(b, keys[i].v, redact, depth + 1);
    }
    PUT_LIT(b, "}");
}

/* The keys alone (keys[] all cut into kb), sorted, as a JSON array. */
static void put_key_list(struct mg_buf *b, struct key *keys, size_t n, const struct mg_buf *kb)
{
    settle_keys(keys, n, kb);
    qsort(keys, n, sizeof *keys, key_cmp);
    PUT_LIT(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT_LIT(b, ",");
        put_json_str(b, keys[i].k, keys[i].len);
    }
    PUT_LIT(b, "]");
}

/* A string value: cut when redacting and long. */
static void put_string(struct mg_buf *b, const char *s, size_t n, bool redact)
{
    if (redact && n > MG_AUDIT_MAX_STRING)
        put_field(b, s, n, n, MG_AUDIT_MAX_STRING);
    else
        put_json_str(b, s, n); /* jansson's strings are valid UTF-8, flat ones too */
}

/* A member of flat arguments, written as put_value writes the value jansson
 * would have parsed from the same bytes. */
static void put_arg(struct mg_buf *b, const struct mg_arg *a, bool redact)
{
    switch (a->type) {
    case MG_ARG_STRING: put_string(b, a->s, a->s_len, redact); return;
    case MG_ARG_INT: put_i64(b, a->i); return;
    case MG_ARG_TRUE: PUT_LIT(b, "true"); return;
    case MG_ARG_FALSE: PUT_LIT(b, "false"); return;
    default: PUT_LIT(b, "null"); return;
    }
}

/* v's canonical text: objects' keys sorted by their bytes, compact. When
 * redacting, values under secret-looking keys are "[redacted]" and strings
 * (keys too) over MG_AUDIT_MAX_STRING bytes are cut; either way nesting
 * deeper than MG_AUDIT_MAX_DEPTH is "[too deep]". Two keys that are the
 * same once cut are one, the later value winning, as in a JSON object. */
static void put_value(struct mg_buf *b, const json_t *v, bool redact, int depth)
{
    static const char too_deep[] = "\"[too deep]\"";
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char *k;
        size_t klen;
        json_t *x;
        if (depth >= MG_AUDIT_MAX_DEPTH) {
            PUT_LIT(b, too_deep);
            return;
        }
        struct key small[SMALL_OBJECT];
        struct key *keys = n <= SMALL_OBJECT ? small : mg_xcalloc(n, sizeof *keys);
        struct mg_buf kb; /* cut keys, each at most MAX_STRING plus the marker */
        mg_buf_init(&kb, n * (MG_AUDIT_MAX_STRING + 64) + 1);
        json_object_keylen_foreach((json_t *)v, k, klen, x)
        {
            keys[i] =
                (struct key){.k = k, .len = klen, .order = i, .v = x, .orig = k, .orig_len = klen};
            if (redact && klen > MG_AUDIT_MAX_STRING)
                cut_key(&keys[i], &kb);
            i++;
        }
        put_members(b, keys, n, &kb, redact, depth);
        mg_buf_fini(&kb);
        if (keys != small)
            free(keys);
        return;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        if (depth >= MG_AUDIT_MAX_DEPTH) {
            PUT_LIT(b, too_deep);
            return;
        }
        PUT_LIT(b, "[");
        json_array_foreach(v, i, x)
        {
            if (i)
                PUT_LIT(b, ",");
            put_value(b, x, redact, depth + 1);
        }
        PUT_LIT(b, "]");
        return;
    }
    case JSON_STRING: put_string(b, json_string_value(v), json_string_length(v), redact); return;
    case JSON_INTEGER: put_i64(b, (int64_t)json_integer_value(v)); return;
    case JSON_TRUE: PUT_LIT(b, "true"); return;
    case JSON_FALSE: PUT_LIT(b, "false"); return;
    case JSON_NULL: PUT_LIT(b, "null"); return;
    default: {
        /* A real: jansson's own text for it, so the record stays canonical. */
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        MG_ASSERT(s != NULL);
        put(b, s, strlen(s));
        free(s);
    }
    }
}

/* The sorted top-level names, each cut to MG_AUDIT_MAX_STRING. */
static void put_keys(struct mg_buf *b, const json_t *args)
{
    size_t n = json_object_size(args), i = 0;
    const char *k;
    size_t klen;
    json_t *x;
    struct key *keys = mg_xcalloc(n + 1, sizeof *keys);
    struct mg_buf kb;
    mg_buf_init(&kb, n * (MG_AUDIT_MAX_STRING + 64) + 1);
    json_object_keylen_foreach((json_t *)args, k, klen, x)
    {
        keys[i] = (struct key){.order = i, .v = x, .orig = k, .orig_len = klen};
        cut_key(&keys[i], &kb);
        i++;
    }
    put_key_list(b, keys, n, &kb);
    mg_buf_fini(&kb);
    free(keys);
}

/* The reduced arguments' canonical text into b; false when there is none. */
static bool reduce_text(const json_t *args, enum mg_conf_audit_args mode, struct mg_buf *b)
{
    if (!args || mode == MG_CONF_AUDIT_ARGS_NONE)
        return false;
    if (mode == MG_CONF_AUDIT_ARGS_KEYS) {
        if (!json_is_object(args))
            return false;
        put_keys(b, args);
        return true;
    }
    put_value(b, args, mode == MG_CONF_AUDIT_ARGS_REDACTED, 0);
    return true;
}

/* reduce_text for flat arguments: the same text as for the tree they stand
 * for, through the same writers, without building it. */
static bool reduce_flat(const struct mg_args_flat *f, enum mg_conf_audit_args mode,
                        struct mg_buf *b)
{
    if (!f || mode == MG_CONF_AUDIT_ARGS_NONE)
        return false;
    bool keys_only = mode == MG_CONF_AUDIT_ARGS_KEYS, redact = mode == MG_CONF_AUDIT_ARGS_REDACTED;
    struct key keys[MG_ARGS_FLAT_MAX];
    struct mg_buf kb; /* cut keys, as put_value and put_keys keep them */
    size_t n = f->n;
    MG_ASSERT(n <= MG_ARGS_FLAT_MAX);
    mg_buf_init(&kb, n * (MG_AUDIT_MAX_STRING + 64) + 1);
    for (size_t i = 0; i < n; i++) {
        const struct mg_arg *a = &f->m[i];
        keys[i] = (struct key){.k = a->key,
                               .len = a->key_len,
                               .order = i,
                               .arg = a,
                               .orig = a->key,
                               .orig_len = a->key_len};
        if (keys_only || (redact && a->key_len > MG_AUDIT_MAX_STRING))
            cut_key(&keys[i], &kb);
    }
    if (keys_only)
        put_key_list(b, keys, n, &kb);
    else
        put_members(b, keys, n, &kb, redact, 0);
    mg_buf_fini(&kb);
    return true;
}

json_t *mg_audit_args_reduce(const json_t *args, enum mg_conf_audit_args mode)
{
    struct mg_buf b;
    json_t *v = NULL;
    mg_buf_init(&b, SIZE_MAX / 2);
    if (reduce_text(args, mode, &b)) {
        v = json_loadb(b.data, b.len, JSON_DECODE_ANY | MG_AUDIT_JSON_FLAGS, NULL);
        MG_ASSERT(v != NULL);
    }
    mg_buf_fini(&b);
    return v;
}

/* ---------------------------------------------------------------------------
 * Records.
 */

/* Decision ids come from a per-thread pool of random bytes: one RAND_bytes
 * per 256 ids instead of one (with its lock) per request. The bytes of an
 * id are wiped from the pool once used. */
#define ID_POOL 4096

static _Thread_local struct {
    uint8_t b[ID_POOL];
    size_t used;
    bool filled;
} id_pool;

static void new_decision_id(char out[MG_AUDIT_DECISION_ID + 1])
{
    enum { N = MG_AUDIT_DECISION_ID / 2 };
    if (!id_pool.filled || id_pool.used + N > ID_POOL) {
        MG_ASSERT(RAND_bytes(id_pool.b, ID_POOL) == 1);
        id_pool.used = 0;
        id_pool.filled = true;
    }
    to_hex(id_pool.b + id_pool.used, N, out);
    memset(id_pool.b + id_pool.used, 0, N);
    id_pool.used += N;
}

/* Appends n bytes to the arena; returns their offset. Bounded by the
 * setters' bounds times the times they are called. */
static size_t arena_put(struct mg_audit_record *r, const void *s, size_t n)
{
    size_t off = r->arena_len;
    if (n > r->arena_cap - r->arena_len) {
        size_t cap = r->arena_cap * 2;
        while (cap - r->arena_len < n)
            cap *= 2;
        if (r->arena == r->inline_arena) {
            r->arena = mg_xmalloc(cap);
            memcpy(r->arena, r->inline_arena, r->arena_len);
        } else {
            r->arena = mg_xrealloc(r->arena, cap);
        }
        r->arena_cap = cap;
    }
    if (n)
        memcpy(r->arena + off, s, n);
    r->arena_len += n;
    return off;
}

/* Copies what the writer needs of s to cut it at max: the bounded form
 * never keeps more than max input bytes, plus one character to know that
 * the next does not fit. */
static struct span copy_bounded(struct mg_audit_record *r, const char *s, size_t n, size_t max)
{
    size_t keep = MG_MIN(n, max + 4);
    size_t off = arena_put(r, s ? s : "", keep);
    return (struct span){(uint32_t)off, (uint32_t)keep, (uint32_t)MG_MIN(n, (size_t)UINT32_MAX)};
}

static void set_str(struct mg_audit_record *r, int f, const char *s, size_t max)
{
    r->f[f] = copy_bounded(r, s, s ? strlen(s) : 0, max);
}

static const char *span_ptr(const struct mg_audit_record *r, const struct span *sp)
{
    return r->arena + sp->off;
}

/* --- record pools (see mg_audit_record_pool_start) ----------------------- */

struct rec_pool {
    /* Freed on other threads: pushed here, taken all at once by the owner
     * (a single consumer that takes the whole list has no ABA problem). */
    _Atomic(struct mg_audit_record *) returned;
    struct mg_audit_record *free; /* the owner's own */
    size_t n_free;
    struct rec_pool *next; /* every pool, for stop */
};

/* Spare records a thread keeps on its own list; more are freed. Records
 * back from other threads are bounded by how many were out at once. */
#define POOL_KEEP 1024

static atomic_bool pools_on;
static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rec_pool *pools;
static _Thread_local struct rec_pool *my_pool;

void mg_audit_record_pool_start(void)
{
    atomic_store(&pools_on, true);
}

static void free_list(struct mg_audit_record *r)
{
    while (r) {
        struct mg_audit_record *next = r->next_free;
        free(r);
        r = next;
    }
}

void mg_audit_record_pool_stop(void)
{
    atomic_store(&pools_on, false);
    pthread_mutex_lock(&pools_mu);
    while (pools) {
        struct rec_pool *p = pools;
        pools = p->next;
        free_list(p->free);
        free_list(atomic_exchange(&p->returned, NULL));
        free(p);
    }
    pthread_mutex_unlock(&pools_mu);
    my_pool = NULL;
}

static struct mg_audit_record *rec_alloc(void)
{
    if (!atomic_load_explicit(&pools_on, memory_order_relaxed)) {
        struct mg_audit_record *r = mg_xmalloc(sizeof *r);
        r->pool = NULL;
        return r;
    }
    struct rec_pool *p = my_pool;
    if (p == NULL) {
        p = mg_xcalloc(1, sizeof *p);
        pthread_mutex_lock(&pools_mu);
        p->next = pools;
        pools = p;
        pthread_mutex_unlock(&pools_mu);
        my_pool = p;
    }
    if (p->free == NULL) {
        p->free = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
        p->n_free = 0; /* unknown; only bounds what this thread keeps */
    }
    struct mg_audit_record *r = p->free;
    if (r) {
        p->free = r->next_free;
        if (p->n_free)
            p->n_free--;
    } else {
        r = mg_xmalloc(sizeof *r);
    }
    r->pool = p;
    return r;
}

static void rec_release(struct mg_audit_record *r)
{
    struct rec_pool *p = r->pool;
    if (p == NULL) {
        free(r);
    } else if (p == my_pool) {
        if (p->n_free >= POOL_KEEP) {
            free(r);
            return;
        }
        r->next_free = p->free;
        p->free = r;
        p->n_free++;
    } else {
        struct mg_audit_record *head = atomic_load_explicit(&p->returned, memory_order_relaxed);
        do
            r->next_free = head;
        while (!atomic_compare_exchange_weak_explicit(&p->returned, &head, r, memory_order_release,
                                                      memory_order_relaxed));
    }
}

struct mg_audit_record *mg_audit_record_new(void)
{
    struct mg_audit_record *r = rec_alloc();
    struct rec_pool *pool = r->pool;
    struct timespec ts;
    /* Everything but the inline arena starts zeroed (no need to clear it). */
    memset(r, 0, offsetof(struct mg_audit_record, inline_arena));
    r->pool = pool;

    /* The id is how a denied caller and an operator find the same record:
     * unguessable, so knowing one id tells nothing of another. */
    new_decision_id(r->decision_id);
    clock_gettime(CLOCK_REALTIME, &ts);
    r->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    r->arena = r->inline_arena;
    r->arena_cap = sizeof r->inline_arena;
    r->groups = r->groups_inline;
    mg_buf_init(&r->cols, SIZE_MAX / 2);
    /* Every span starts empty (offset 0, length 0): "". */
    mg_audit_record_set_identity(r, NULL);
    return r;
}

void mg_audit_record_free(struct mg_audit_record *r)
{
    if (!r)
        return;
    if (r->arena != r->inline_arena)
        free(r->arena);
    if (r->groups != r->groups_inline)
        free(r->groups);
    mg_buf_fini(&r->cols);
    free(r->args_heap);
    rec_release(r);
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
    r->time_ms = unix_ms;
}

void mg_audit_record_set_route(struct mg_audit_record *r, const char *route)
{
    set_str(r, F_ROUTE, route, MG_AUDIT_MAX_FIELD);
}

void mg_audit_record_set_identity(struct mg_audit_record *r, const struct mg_identity *id)
{
    size_t n = id ? MG_MIN(id->n_groups, (size_t)MG_IDENTITY_MAX_GROUPS) : 0;
    set_str(r, F_SUBJECT, id ? id->subject : NULL, MG_AUDIT_MAX_FIELD);
    set_str(r, F_EMAIL, id ? id->email : NULL, MG_AUDIT_MAX_FIELD);
    set_str(r, F_CLIENT_ID, id ? id->client_id : NULL, MG_AUDIT_MAX_FIELD);
    set_str(r, F_AUTH_METHOD, mg_auth_method_name(id ? id->method : MG_AUTH_NONE),
            MG_AUDIT_MAX_FIELD);
    set_str(r, F_TOKEN_ID, id ? id->token_id : NULL, MG_AUDIT_MAX_FIELD);
    if (r->groups != r->groups_inline)
        free(r->groups);
    r->groups = n > INLINE_GROUPS ? mg_xcalloc(n, sizeof *r->groups) : r->groups_inline;
    r->n_groups = n;
    for (size_t i = 0; i < n; i++)
        r->groups[i] = copy_bounded(r, id->groups[i], strlen(id->groups[i]), MG_AUDIT_MAX_FIELD);
}

void mg_audit_record_set_source(struct mg_audit_record *r, const char *address)
{
    set_str(r, F_SOURCE, address, MG_AUDIT_MAX_FIELD);
}

void mg_audit_record_set_session(struct mg_audit_record *r, const char *mcp_session_id)
{
    set_str(r, F_SESSION, mcp_session_id, MG_AUDIT_MAX_FIELD);
}

void mg_audit_record_set_jsonrpc_id(struct mg_audit_record *r, const json_t *id)
{
    if (json_is_string(id)) {
        r->f[F_JSONRPC_ID] =
            copy_bounded(r, json_string_value(id), json_string_length(id), MG_AUDIT_MAX_FIELD);
        r->id_kind = ID_STRING;
    } else if (json_is_number(id)) {
        struct mg_buf b;
        mg_buf_init(&b, 64);
        put_value(&b, id, false, 0);
        size_t off = arena_put(r, b.data, b.len);
        r->f[F_JSONRPC_ID] = (struct span){(uint32_t)off, (uint32_t)b.len, (uint32_t)b.len};
        mg_buf_fini(&b);
        r->id_kind = ID_NUMBER;
    } else {
        r->id_kind = ID_NULL;
    }
}

void mg_audit_record_set_jsonrpc_id_json(struct mg_audit_record *r, const char *id_json)
{
    json_t *id = id_json ? json_loads(id_json, JSON_DECODE_ANY | MG_AUDIT_JSON_FLAGS, NULL) : NULL;
    mg_audit_record_set_jsonrpc_id(r, id);
    json_decref(id);
}

void mg_audit_record_set_call(struct mg_audit_record *r, const char *method, const char *name)
{
    set_str(r, F_METHOD, method, MG_AUDIT_MAX_FIELD);
    set_str(r, F_NAME, name, MG_AUDIT_MAX_FIELD);
}

/* The arguments, a tree or flat (one of them), reduced into the record. */
static void set_arguments(struct mg_audit_record *r, const json_t *args,
                          const struct mg_args_flat *flat, enum mg_conf_audit_args mode)
{
    struct mg_buf b;
    free(r->args_heap);
    r->args_heap = NULL;
    r->has_args = false;
    r->args_len = 0;
    mg_buf_init(&b, SIZE_MAX / 2);
    if (flat ? reduce_flat(flat, mode, &b) : reduce_text(args, mode, &b)) {
        /* Bounded whatever the mode: a record is one line, one row, one
         * message, and the writer's queue counts its bytes. */
        if (b.len > MG_AUDIT_MAX_ARGS_BYTES) {
            char msg[64];
            snprintf(msg, sizeof msg, "[too large: %zu bytes]", b.len);
            mg_buf_reset(&b);
            put_json_str(&b, msg, strlen(msg));
        }
        r->args_keys = mode == MG_CONF_AUDIT_ARGS_KEYS;
        r->has_args = true;
        r->args_len = b.len;
        if (b.len <= INLINE_ARGS)
            r->args_off = arena_put(r, b.data, b.len);
        else
            r->args_heap = mg_buf_steal(&b, NULL);
    }
    mg_buf_fini(&b);
}

void mg_audit_record_set_arguments(struct mg_audit_record *r, const json_t *args,
                                   enum mg_conf_audit_args mode)
{
    set_arguments(r, args, NULL, mode);
}

void mg_audit_record_set_arguments_flat(struct mg_audit_record *r, const struct mg_args_flat *args,
                                        enum mg_conf_audit_args mode)
{
    set_arguments(r, NULL, args, mode);
}

void mg_audit_record_set_decision(struct mg_audit_record *r, bool allow, const char *rule,
                                  const char *reason)
{
    r->allow = allow;
    set_str(r, F_RULE, rule, MG_AUDIT_MAX_FIELD);
    set_str(r, F_REASON, reason, MG_AUDIT_MAX_FIELD);
}

void mg_audit_record_set_upstream(struct mg_audit_record *r, int status, int64_t latency_ms)
{
    r->upstream_status = status;
    r->latency_ms = latency_ms < 0 ? 0 : latency_ms;
}

/* The bounded form of field f, NUL-terminated, at *off in r->cols. */
static void col(struct mg_audit_record *r, int f, size_t *off)
{
    const struct span *sp = &r->f[f];
    *off = r->cols.len;
    put_bounded(&r->cols, span_ptr(r, sp), sp->len, sp->orig, MG_AUDIT_MAX_FIELD);
    put(&r->cols, "", 1);
}

void mg_audit_record_cols(struct mg_audit_record *r, struct mg_audit_record_cols *out)
{
    size_t route, subject, email, method, name;
    mg_buf_reset(&r->cols);
    col(r, F_ROUTE, &route);
    col(r, F_SUBJECT, &subject);
    col(r, F_EMAIL, &email);
    col(r, F_METHOD, &method);
    col(r, F_NAME, &name);
    out->route = r->cols.data + route;
    out->subject = r->cols.data + subject;
    out->email = r->cols.data + email;
    out->method = r->cols.data + method;
    out->name = r->cols.data + name;
    out->decision = r->allow ? "allow" : "deny";
}

size_t mg_audit_record_size(const struct mg_audit_record *r)
{
    return sizeof *r + (r->arena != r->inline_arena ? r->arena_cap : 0) +
           r->n_groups * sizeof *r->groups + (r->args_heap ? r->args_len : 0);
}

void *mg_audit_record_link(struct mg_audit_record *r)
{
    return r->link;
}

/* ---------------------------------------------------------------------------
 * Canonical text: the keys in their sorted order, fixed by the record's
 * shape (record.h).
 */

/* The time as RFC 3339 with milliseconds; the writer formats one record
 * after another, mostly within the same second. */
static void put_time(struct mg_buf *b, int64_t unix_ms)
{
    static _Thread_local int64_t cached_sec = INT64_MIN;
    static _Thread_local char cached[32];
    int64_t sec = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
    int ms = (int)(unix_ms - sec * 1000);
    char t[32];
    if (sec != cached_sec) {
        mg_audit_format_time(sec * 1000, cached, sizeof cached);
        cached_sec = sec;
    }
    if (strlen(cached) != 24) { /* years past 9999 */
        mg_audit_format_time(unix_ms, t, sizeof t);
    } else {
        memcpy(t, cached, 20); /* "2025-06-01T12:00:00." */
        t[20] = (char)('0' + ms / 100);
        t[21] = (char)('0' + ms / 10 % 10);
        t[22] = (char)('0' + ms % 10);
        t[23] = 'Z';
        t[24] = '\0';
    }
    PUT_LIT(b, "\"");
    put(b, t, strlen(t));
    PUT_LIT(b, "\"");
}

static void put_span(struct mg_buf *b, const struct mg_audit_record *r, const struct span *sp)
{
    put_field(b, span_ptr(r, sp), sp->len, sp->orig, MG_AUDIT_MAX_FIELD);
}

#define KEY(b, k) PUT_LIT(b, k)

static void put_record(struct mg_buf *b, const struct mg_audit_record *r, int64_t seq,
                       const char *prev)
{
    PUT_LIT(b, "{");
    if (r->has_args) {
        if (r->args_keys)
            KEY(b, "\"argument_keys\":");
        else
            KEY(b, "\"arguments\":");
        put(b, r->args_heap ? r->args_heap : r->arena + r->args_off, r->args_len);
        PUT_LIT(b, ",");
    }
    if (r->allow)
        KEY(b, "\"decision\":\"allow\",\"decision_id\":\"");
    else
        KEY(b, "\"decision\":\"deny\",\"decision_id\":\"");
    put(b, r->decision_id, MG_AUDIT_DECISION_ID);
    KEY(b, "\",\"identity\":{\"auth_method\":");
    put_span(b, r, &r->f[F_AUTH_METHOD]);
    KEY(b, ",\"client_id\":");
    put_span(b, r, &r->f[F_CLIENT_ID]);
    KEY(b, ",\"email\":");
    put_span(b, r, &r->f[F_EMAIL]);
    KEY(b, ",\"groups\":[");
    for (size_t i = 0; i < r->n_groups; i++) {
        if (i)
            PUT_LIT(b, ",");
        put_span(b, r, &r->groups[i]);
    }
    KEY(b, "],\"subject\":");
    put_span(b, r, &r->f[F_SUBJECT]);
    KEY(b, ",\"token_id\":");
    put_span(b, r, &r->f[F_TOKEN_ID]);
    KEY(b, "},\"jsonrpc_id\":");
    if (r->id_kind == ID_STRING)
        put_span(b, r, &r->f[F_JSONRPC_ID]);
    else if (r->id_kind == ID_NUMBER)
        put(b, span_ptr(r, &r->f[F_JSONRPC_ID]), r->f[F_JSONRPC_ID].len);
    else
        PUT_LIT(b, "null");
    KEY(b, ",\"latency_ms\":");
    put_i64(b, r->latency_ms);
    KEY(b, ",\"method\":");
    put_span(b, r, &r->f[F_METHOD]);
    KEY(b, ",\"name\":");
    put_span(b, r, &r->f[F_NAME]);
    KEY(b, ",\"prev\":");
    put_field(b, prev, strlen(prev), strlen(prev), MG_AUDIT_MAX_FIELD);
    KEY(b, ",\"reason\":");
    put_span(b, r, &r->f[F_REASON]);
    KEY(b, ",\"route\":");
    put_span(b, r, &r->f[F_ROUTE]);
    KEY(b, ",\"rule\":");
    put_span(b, r, &r->f[F_RULE]);
    KEY(b, ",\"seq\":");
    put_i64(b, seq);
    KEY(b, ",\"session\":");
    put_span(b, r, &r->f[F_SESSION]);
    KEY(b, ",\"source\":");
    put_span(b, r, &r->f[F_SOURCE]);
    KEY(b, ",\"time\":");
    put_time(b, r->time_ms);
    KEY(b, ",\"upstream_status\":");
    put_i64(b, r->upstream_status);
    KEY(b, ",\"v\":1}");
}

int mg_audit_record_append(const struct mg_audit_record *r, int64_t seq, const char *prev,
                           struct mg_buf *out, char hash[MG_AUDIT_HASH_HEX + 1])
{
    size_t start = out->len;
    if (out->max - out->len < MG_AUDIT_MAX_RECORD_BYTES)
        return MG_ELIMIT;
    put_record(out, r, seq, prev);
    mg_audit_hash_hex(out->data + start, out->len - start, hash);
    return 0;
}

int mg_audit_record_chain(struct mg_audit_record *r, int64_t seq, const char *prev, char **out,
                          size_t *len, char hash[MG_AUDIT_HASH_HEX + 1])
{
    struct mg_buf b;
    mg_buf_init(&b, MG_AUDIT_MAX_RECORD_BYTES);
    int rc = mg_audit_record_append(r, seq, prev, &b, hash);
    if (rc != 0) {
        mg_buf_fini(&b);
        return rc;
    }
    *out = mg_buf_steal(&b, len);
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

/* The one-pass list filter; see listscan.h.
 *
 * A recursive descent over the bytes (depth bounded), with the four objects
 * that matter told apart by where they are: the top level (id, result),
 * result (the list's array), an item (its name, and for tools its
 * annotations) and an item's annotations (readOnlyHint, destructiveHint).
 * Everything else is only validated. Plain string bytes, the bulk of a list
 * answer (descriptions, schemas), are skipped 16 at a time with SSE2 where
 * the compiler targets it (x86-64 always does), 8 at a time otherwise.
 *
 * Duplicate keys: every object's keys are kept on a stack (offset, length)
 * while it is open and checked when it closes — pairwise for a few keys,
 * sorted by hash for many — comparing decoded keys, so "na\u006de" is
 * "name".
 * The answer's output is built lazily: until an item is removed it equals
 * the input, so an answer the caller sees whole is never copied. Items are
 * judged in batches of PENDING after they are scanned, not one by one in
 * between: the scanner and the policy evaluator then do not evict each
 * other's code and data (a sixth of the time for a 1,000-tool answer). */
#include "mcp/listscan.h"

#include <math.h>
#include <stdlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define KEYS_INLINE 64
#define PAIRWISE    16 /* objects with more keys are sorted to find duplicates */

/* A key of an open object: where its raw text is (and, once an object of
 * many keys closes, the hash of its decoded bytes). */
struct key {
    uint32_t off;  /* of the raw text (after the quote), from the document's start */
    uint32_t len;  /* raw bytes */
    uint32_t esc;  /* the raw text has escapes */
    uint32_t hash; /* set when the object closes, if it is sorted */
};

/* A string's raw text, between the quotes. */
struct span {
    const unsigned char *a, *b;
    bool esc;
};

enum obj_kind { OBJ_PLAIN, OBJ_TOP, OBJ_RESULT, OBJ_ITEM, OBJ_ANNOT };

/* What an item's object says about the item. */
struct item_state {
    struct span name;
    bool has_name, ro, destr_false;
};

/* Items scanned and not yet judged: judging them in batches keeps the
 * scanner's and the evaluator's code and data apart in the caches. */
#define PENDING 256
struct pending {
    const unsigned char *a, *b; /* the item's bytes */
    struct item_state it;
};

struct scan {
    const unsigned char *base, *p, *end;
    int depth;
    const char *err;
    /* the keys of the open objects */
    struct key *keys;
    size_t n_keys, keys_cap;
    struct key keys_inline[KEYS_INLINE];
    struct mg_buf scratch; /* decoded keys and names */
    /* what to look for */
    const char *list_key, *name_field;
    size_t list_key_len, name_field_len;
    bool tools;
    mg_listscan_keep_fn keep;
    void *ctx;
    /* what was found */
    const unsigned char *id_a, *id_b; /* the top-level id's value */
    bool seen_result, seen_list;
    const unsigned char *list_open, *list_close; /* '[' and ']' of result.<key> */
    /* the output */
    struct mg_buf *out;
    size_t out_start;
    bool materialized; /* out holds the answer up to the last kept item */
    int out_rc;
    const unsigned char *last_kept_end;
    size_t n_items, n_kept;
    struct pending pending[PENDING];
    size_t n_pending;
};

static bool fail(struct scan *s, const char *why)
{
    if (s->err == NULL)
        s->err = why;
    return false;
}

/* ---------------------------------------------------------------------------
 * Whitespace, literals, numbers.
 */

/* Skips whitespace; false at the end of the document. Most answers are
 * compact: the first byte usually decides. */
static inline bool ws(struct scan *s)
{
    const unsigned char *p = s->p, *end = s->end;
    if (p<end && * p> ' ')
        return true;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    s->p = p;
    return p < end;
}

static inline bool more(struct scan *s)
{
    return ws(s) || fail(s, "unexpected end of the document");
}

static bool literal(struct scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return fail(s, "invalid literal");
    s->p += n;
    return true;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 8259 §6, and what jansson refuses on top: an integer (no fraction,
 * no exponent) beyond int64, a real that overflows a double. */
static bool scan_number(struct scan *s)
{
    const unsigned char *p = s->p, *end = s->end, *start = p, *int_a, *int_b, *frac_a = NULL;
    const unsigned char *frac_b = NULL;
    bool neg = false, real = false;
    long exp = 0;

    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p == end || !is_digit(*p))
        return fail(s, "invalid number");
    int_a = p;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    int_b = p;
    if (p < end && *p == '.') {
        p++;
        frac_a = p;
        if (p == end || !is_digit(*p))
            return fail(s, "invalid number");
        while (p < end && is_digit(*p))
            p++;
        frac_b = p;
        real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !is_digit(*p))
            return fail(s, "invalid number");
        for (; p < end && is_digit(*p); p++)
            if (exp < 1000000)
                exp = exp * 10 + (*p - '0');
        if (eneg)
            exp = -exp;
        real = true;
    }
    s->p = p;
    if (!real) {
        /* json_int_t is long long; RFC 8259 has no leading zeros, so the
         * digit count is the magnitude. */
        size_t n = (size_t)(int_b - int_a);
        if (n < 19)
            return true;
        if (n > 19 || memcmp(int_a, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0)
            return fail(s, "integer out of range");
        return true;
    }
    /* The decimal exponent of the leading digit decides, except at the
     * edge, where strtod does (the process runs in the C locale). */
    long lead;
    if (*int_a != '0') {
        lead = (long)(int_b - int_a) - 1;
    } else {
        const unsigned char *z = frac_a;
        while (z && z < frac_b && *z == '0')
            z++;
        if (z == NULL || z == frac_b)
            return true; /* zero */
        lead = -(long)(z - frac_a) - 1;
    }
    if (lead + exp < 308)
        return true;
    if (lead + exp > 308)
        return fail(s, "real number overflow");
    size_t n = (size_t)(p - start);
    char small[128], *copy = n < sizeof small ? small : mg_xmalloc(n + 1);
    memcpy(copy, start, n);
    copy[n] = '\0';
    bool inf = isinf(strtod(copy, NULL));
    if (copy != small)
        free(copy);
    return !inf || fail(s, "real number overflow");
}

/* ---------------------------------------------------------------------------
 * Strings.
 */

/* The first byte at or after p that a string scan must look at: '"', '\\',
 * a control character or a non-ASCII byte; end if none. */
static const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed: bytes >= 0x80 are negative, so below 0x20 too */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        /* a zero byte in q or b; a byte below 0x20; any byte >= 0x80 */
        uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | (x - ones * 0x20) | x;
        if (hit & high)
            break; /* the scalar loop finds which */
        p += 8;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80)
        p++;
    return p;
}

/* Bytes of the UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        int d = c >= '0' && c <= '9'   ? (int)(c - '0')
                : c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10)
                : c >= 'A' && c <= 'F' ? (int)(c - 'A' + 10)
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* At a backslash: validates one escape (a \u high surrogate with the low
 * one after it) and returns the code point, or -1. Advances *pp. */
static long escape(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp + 1;
    long cp;
    if (p == end)
        return -1;
    switch (*p) {
    case '"': cp = '"'; break;
    case '\\': cp = '\\'; break;
    case '/': cp = '/'; break;
    case 'b': cp = '\b'; break;
    case 'f': cp = '\f'; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 't': cp = '\t'; break;
    case 'u': {
        if (end - p < 5 || (cp = hex4(p + 1)) < 0)
            return -1;
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return -1; /* a low surrogate alone */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            long lo;
            if (end - p < 7 || p[1] != '\\' || p[2] != 'u' || (lo = hex4(p + 3)) < 0xDC00 ||
                lo > 0xDFFF)
                return -1; /* a high surrogate without its low one */
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        if (cp == 0)
            return -1; /* jansson refuses \u0000 unless asked; so do we */
        break;
    }
    default: return -1;
    }
    *pp = p + 1;
    return cp;
}

/* At the opening quote: validates the string, sets its raw span. */
/* Inlined into its three callers: most strings are short keys, and the
 * call was a tenth of the scan. */
static inline __attribute__((always_inline)) bool scan_string(struct scan *s, struct span *sp)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    sp->a = p;
    sp->esc = false;
    for (;;) {
        p = skip_plain(p, end);
        if (p == end)
            return fail(s, "unterminated string");
        unsigned c = *p;
        if (c == '"')
            break;
        if (c == '\\') {
            if (escape(&p, end) < 0)
                return fail(s, "invalid escape in a string");
            sp->esc = true;
        } else if (c < 0x20) {
            return fail(s, "control character in a string");
        } else {
            size_t n = utf8_len(p, end);
            if (n == 0)
                return fail(s, "invalid UTF-8 in a string");
            p += n;
        }
    }
    sp->b = p;
    s->p = p + 1;
    return true;
}

static size_t put_utf8(unsigned char *o, long cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Appends the decoded text of a validated string to the scratch buffer and
 * returns its offset there (the buffer may move). */
static size_t decode(struct scan *s, const unsigned char *a, const unsigned char *b, bool esc)
{
    size_t at = s->scratch.len;
    if (!esc) {
        MG_ASSERT(mg_buf_append(&s->scratch, a, (size_t)(b - a)) == 0);
        return at;
    }
    while (a < b) {
        const unsigned char *q = a;
        while (q < b && *q != '\\')
            q++;
        MG_ASSERT(mg_buf_append(&s->scratch, a, (size_t)(q - a)) == 0);
        if (q == b)
            break;
        unsigned char u[4];
        long cp = escape(&q, b);
        MG_ASSERT(cp > 0);
        MG_ASSERT(mg_buf_append(&s->scratch, u, put_utf8(u, cp)) == 0);
        a = q;
    }
    return at;
}

/* ---------------------------------------------------------------------------
 * Keys.
 */

static uint32_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ULL;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x94D049BB133111EBULL;
        h ^= h >> 29;
    }
    return (uint32_t)(h ^ h >> 32);
}

/* The decoded bytes of a key, in the scratch buffer when it has escapes. */
static const unsigned char *key_text(struct scan *s, const struct key *k, size_t *n)
{
    const unsigned char *a = s->base + k->off;
    if (!k->esc) {
        *n = k->len;
        return a;
    }
    size_t at = decode(s, a, a + k->len, true);
    *n = s->scratch.len - at;
    return (const unsigned char *)s->scratch.data + at;
}

/* Orders keys by hash, then by decoded bytes. */
static int key_cmp(const void *x, const void *y, void *ctx)
{
    const struct key *ka = x, *kb = y;
    struct scan *s = ctx;
    if (ka->hash != kb->hash)
        return ka->hash < kb->hash ? -1 : 1;
    size_t mark = s->scratch.len, na, nb;
    /* decode both before taking pointers: the buffer may move */
    const unsigned char *ta = key_text(s, ka, &na);
    size_t off_a = ka->esc ? (size_t)(ta - (const unsigned char *)s->scratch.data) : 0;
    const unsigned char *tb = key_text(s, kb, &nb);
    if (ka->esc)
        ta = (const unsigned char *)s->scratch.data + off_a;
    int r = memcmp(ta, tb, MG_MIN(na, nb));
    if (r == 0)
        r = na < nb ? -1 : na > nb;
    s->scratch.len = mark;
    return r;
}

static void key_push(struct scan *s, const struct span *sp)
{
    struct key k = {
        .off = (uint32_t)(sp->a - s->base), .len = (uint32_t)(sp->b - sp->a), .esc = sp->esc};
    if (s->n_keys == s->keys_cap) {
        size_t cap = s->keys_cap * 2;
        if (s->keys == s->keys_inline) {
            s->keys = mg_xmalloc(cap * sizeof *s->keys);
            memcpy(s->keys, s->keys_inline, sizeof s->keys_inline);
        } else {
            s->keys = mg_xrealloc(s->keys, cap * sizeof *s->keys);
        }
        s->keys_cap = cap;
    }
    s->keys[s->n_keys++] = k;
}

/* Whether two keys decode to the same text. */
static bool key_eq(struct scan *s, const struct key *a, const struct key *b)
{
    if (!a->esc && !b->esc)
        return a->len == b->len && (a->len == 0 || s->base[a->off] == s->base[b->off]) &&
               memcmp(s->base + a->off, s->base + b->off, a->len) == 0;
    return key_cmp(a, b, s) == 0;
}

/* An object closes: no key twice among keys[base..]; pops them. */
static bool keys_close(struct scan *s, size_t base)
{
    struct key *k = s->keys + base;
    size_t n = s->n_keys - base;
    bool dup = false;
    s->n_keys = base;
    if (n < 2)
        return true;
    if (n <= PAIRWISE) {
        /* a handful of keys: compare lengths, then bytes; no hashing */
        for (size_t i = 0; i < n && !dup; i++)
            for (size_t j = i + 1; j < n && !dup; j++)
                dup = key_eq(s, &k[i], &k[j]);
    } else {
        for (size_t i = 0; i < n; i++) {
            size_t len, mark = s->scratch.len;
            const unsigned char *t = key_text(s, &k[i], &len);
            k[i].hash = hash_bytes(t, len);
            s->scratch.len = mark;
        }
        qsort_r(k, n, sizeof *k, key_cmp, s);
        for (size_t i = 1; i < n && !dup; i++)
            dup = k[i - 1].hash == k[i].hash && key_cmp(&k[i - 1], &k[i], s) == 0;
    }
    return !dup || fail(s, "duplicate key in an object");
}

/* Whether a key (raw span) decodes to word. */
static bool key_is(struct scan *s, const struct span *sp, const char *word, size_t n)
{
    if (!sp->esc)
        return (size_t)(sp->b - sp->a) == n && memcmp(sp->a, word, n) == 0;
    size_t mark = s->scratch.len, at = decode(s, sp->a, sp->b, true);
    bool eq = s->scratch.len - at == n && memcmp(s->scratch.data + at, word, n) == 0;
    s->scratch.len = mark;
    return eq;
}

/* ---------------------------------------------------------------------------
 * Values.
 */

static bool scan_value(struct scan *s);

/* After an element or member, at a non-blank byte: 1 past a ',' (another
 * follows), 0 at `close` (not consumed), -1 on anything else (failed). */
static int next_or_close(struct scan *s, char close, const char *expected)
{
    if (*s->p == close)
        return 0;
    if (*s->p != ',') {
        fail(s, expected);
        return -1;
    }
    s->p++;
    return more(s) ? 1 : -1;
}
static bool scan_object(struct scan *s, enum obj_kind kind, struct item_state *it);

static bool scan_array(struct scan *s)
{
    if (++s->depth > MG_LISTSCAN_MAX_DEPTH)
        return fail(s, "nesting too deep");
    s->p++;
    if (!more(s))
        return false;
    if (*s->p != ']') {
        for (;;) {
            if (!scan_value(s) || !more(s))
                return false;
            int next = next_or_close(s, ']', "',' or ']' expected");
            if (next < 0)
                return false;
            if (next == 0)
                break;
        }
    }
    s->p++;
    s->depth--;
    return true;
}

static bool scan_value(struct scan *s)
{
    struct span sp;
    switch (*s->p) {
    case '"': return scan_string(s, &sp);
    case '{': return scan_object(s, OBJ_PLAIN, NULL);
    case '[': return scan_array(s);
    case 't': return literal(s, "true", 4);
    case 'f': return literal(s, "false", 5);
    case 'n': return literal(s, "null", 4);
    default:
        if (*s->p == '-' || is_digit(*s->p))
            return scan_number(s);
        return fail(s, "unexpected character");
    }
}

static void out_append(struct scan *s, const void *data, size_t n)
{
    if (s->out_rc == 0)
        s->out_rc = mg_buf_append(s->out, data, n);
}

/* One item of the list: judge it, and keep its bytes or drop them. */
static void item_done(struct scan *s, const unsigned char *a, const unsigned char *b,
                      const struct item_state *it)
{
    struct mg_listscan_item item = {.tool_class = MG_TOOL_DESTRUCTIVE};
    size_t mark = s->scratch.len;
    if (it->has_name) {
        size_t at = decode(s, it->name.a, it->name.b, it->name.esc);
        MG_ASSERT(mg_buf_append(&s->scratch, "", 1) == 0);
        item.name = s->scratch.data + at;
        item.name_len = s->scratch.len - at - 1;
    }
    if (s->tools)
        item.tool_class = it->ro            ? MG_TOOL_READ_ONLY
                          : it->destr_false ? MG_TOOL_WRITE
                                            : MG_TOOL_DESTRUCTIVE;
    bool keep = s->keep(s->ctx, &item);
    s->scratch.len = mark;
    s->n_items++;
    if (keep) {
        if (s->materialized) {
            if (s->n_kept)
                out_append(s, ",", 1);
            out_append(s, a, (size_t)(b - a));
        }
        s->last_kept_end = b;
        s->n_kept++;
    } else if (!s->materialized) {
        /* Until now the answer was the input: copy it up to the last kept
         * item (or the array's opening bracket). */
        const unsigned char *upto = s->n_kept ? s->last_kept_end : s->list_open + 1;
        out_append(s, s->base, (size_t)(upto - s->base));
        s->materialized = true;
    }
}

static void flush_items(struct scan *s)
{
    for (size_t i = 0; i < s->n_pending; i++)
        item_done(s, s->pending[i].a, s->pending[i].b, &s->pending[i].it);
    s->n_pending = 0;
}

/* At the '[' of result.<key>. */
static bool scan_items(struct scan *s)
{
    if (++s->depth > MG_LISTSCAN_MAX_DEPTH)
        return fail(s, "nesting too deep");
    s->list_open = s->p;
    s->p++;
    if (!more(s))
        return false;
    if (*s->p != ']') {
        for (;;) {
            struct item_state it = {0};
            const unsigned char *a = s->p;
            if (*s->p == '{' ? !scan_object(s, OBJ_ITEM, &it) : !scan_value(s))
                return false;
            s->pending[s->n_pending++] = (struct pending){a, s->p, it};
            if (s->n_pending == PENDING)
                flush_items(s);
            if (!more(s))
                return false;
            if (*s->p == ']')
                break;
            if (*s->p != ',')
                return fail(s, "',' or ']' expected");
            s->p++;
            if (!more(s))
                return false;
        }
    }
    flush_items(s);
    s->list_close = s->p;
    s->p++;
    s->depth--;
    return true;
}

/* The value of a key of an object of the given kind. */
static bool member(struct scan *s, enum obj_kind kind, const struct span *k, struct item_state *it)
{
    switch (kind) {
    case OBJ_TOP:
        if (key_is(s, k, "id", 2)) {
            const unsigned char *a = s->p;
            if (!scan_value(s))
                return false;
            s->id_a = a; /* a second id is a duplicate: refused when the object closes */
            s->id_b = s->p;
            return true;
        }
        if (*s->p == '{' && !s->seen_result && key_is(s, k, "result", 6)) {
            s->seen_result = true;
            return scan_object(s, OBJ_RESULT, NULL);
        }
        break;
    case OBJ_RESULT:
        if (*s->p == '[' && !s->seen_list && key_is(s, k, s->list_key, s->list_key_len)) {
            s->seen_list = true;
            return scan_items(s);
        }
        break;
    case OBJ_ITEM:
        if (key_is(s, k, s->name_field, s->name_field_len)) {
            if (*s->p != '"')
                return fail(s, "an item's name is not a string");
            it->has_name = true;
            return scan_string(s, &it->name);
        }
        if (s->tools && *s->p == '{' && key_is(s, k, "annotations", 11))
            return scan_object(s, OBJ_ANNOT, it);
        break;
    case OBJ_ANNOT:
        /* mg_listfilter_tool_class: only the literals true and false count */
        if (*s->p == 't' && key_is(s, k, "readOnlyHint", 12)) {
            it->ro = true;
            return literal(s, "true", 4);
        }
        if (*s->p == 'f' && key_is(s, k, "destructiveHint", 15)) {
            it->destr_false = true;
            return literal(s, "false", 5);
        }
        break;
    case OBJ_PLAIN: break;
    }
    return scan_value(s);
}

static bool scan_object(struct scan *s, enum obj_kind kind, struct item_state *it)
{
    size_t base = s->n_keys;
    if (++s->depth > MG_LISTSCAN_MAX_DEPTH)
        return fail(s, "nesting too deep");
    s->p++;
    if (!more(s))
        return false;
    if (*s->p != '}') {
        for (;;) {
            struct span k;
            if (*s->p != '"')
                return fail(s, "object key expected");
            if (!scan_string(s, &k) || !more(s))
                return false;
            key_push(s, &k);
            if (*s->p != ':')
                return fail(s, "':' expected");
            s->p++;
            if (!more(s) || !member(s, kind, &k, it) || !more(s))
                return false;
            int next = next_or_close(s, '}', "',' or '}' expected");
            if (next < 0)
                return false;
            if (next == 0)
                break;
        }
    }
    s->p++;
    s->depth--;
    return keys_close(s, base);
}

/* Whether the answer's id (validated JSON) is the request's, as json_equal
 * says (an integer 1 is not the real 1.0, as before). */
static bool id_matches(struct scan *s, const json_t *want)
{
    if (s->id_a == NULL || want == NULL)
        return false;
    json_t *got = json_loadb((const char *)s->id_a, (size_t)(s->id_b - s->id_a),
                             JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    bool eq = got && json_equal(got, want);
    json_decref(got);
    return eq;
}

static const char *name_field_of(const char *key)
{
    if (strcmp(key, "resources") == 0)
        return "uri";
    if (strcmp(key, "resourceTemplates") == 0)
        return "uriTemplate";
    return "name";
}

int mg_listscan_filter(const char *doc, size_t len, const char *key, const json_t *id,
                       mg_listscan_keep_fn keep, void *ctx, struct mg_buf *out,
                       struct mg_listscan_result *res)
{
    struct scan *s = mg_xcalloc(1, sizeof *s);
    bool ok;
    int rc = 0;

    memset(res, 0, sizeof *res);
    if (len >= UINT32_MAX) {
        free(s);
        res->error = "document too large";
        return MG_ELIMIT;
    }
    s->base = s->p = (const unsigned char *)doc;
    s->end = s->base + len;
    s->keys = s->keys_inline;
    s->keys_cap = KEYS_INLINE;
    /* decoded text is never longer than its raw text; key_cmp holds two */
    mg_buf_init(&s->scratch, 2 * len + 16);
    s->list_key = key;
    s->list_key_len = strlen(key);
    s->name_field = name_field_of(key);
    s->name_field_len = strlen(s->name_field);
    s->tools = strcmp(key, "tools") == 0;
    s->keep = keep;
    s->ctx = ctx;
    s->out = out;
    s->out_start = out->len;

    if (!ws(s))
        ok = fail(s, "empty document");
    else if (*s->p == '{')
        ok = scan_object(s, OBJ_TOP, NULL);
    else if (*s->p == '[')
        ok = scan_array(s);
    else
        ok = fail(s, "'[' or '{' expected");
    if (ok && ws(s))
        ok = fail(s, "bytes after the document");

    if (!ok) {
        res->error = s->err;
        rc = MG_EPROTO;
    } else if (s->seen_list && id_matches(s, id)) {
        res->filtered = true;
        res->n_items = s->n_items;
        res->n_kept = s->n_kept;
        if (s->materialized) {
            out_append(s, s->list_close, (size_t)(s->end - s->list_close));
            res->changed = true;
        }
        if (s->out_rc < 0) {
            res->error = "the filtered answer is over its bound";
            rc = MG_ELIMIT;
        }
    }
    if (rc < 0 || !res->changed) {
        out->len = s->out_start; /* nothing of a refused or unchanged answer stays */
        res->changed = false;
    }
    if (s->keys != s->keys_inline)
        free(s->keys);
    mg_buf_fini(&s->scratch);
    free(s);
    return rc;
}

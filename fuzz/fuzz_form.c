/* libFuzzer target for the urlencoded form parser and encoder (src/http/form).
 * The first input byte picks the mode and limits: bit 5 set treats the rest
 * as a redirect URL for mg_form_url_append; otherwise the rest is a form,
 * parsed with small limits when bit 6 is set (so every bound is reached),
 * else the defaults, whole and cut into pieces (bit 7 set: one piece;
 * otherwise pieces of 1..2^(b&7) bytes from a PRNG seeded with that byte),
 * and both must give the same status and pairs. Each pair is checked (within
 * the limits, UTF-8, no NUL), lookups must agree with the pairs, and
 * encoding the pairs then parsing them again must give them back. */
#include "http/form.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct mg_form_limits small = {256, 8, 16, 32};
/* Room for any re-encoded form: each byte becomes at most 3. */
static const struct mg_form_limits roomy = {3 * MG_FORM_MAX_BYTES + MG_FORM_MAX_PAIRS,
                                            MG_FORM_MAX_PAIRS, MG_FORM_MAX_NAME, MG_FORM_MAX_VALUE};

static bool utf8_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = mg_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

static uint64_t hash_pairs(const struct mg_form *f)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < f->n_pairs; i++) {
        h = mix(h, f->pairs[i].name, f->pairs[i].name_len + 1);
        h = mix(h, f->pairs[i].value, f->pairs[i].value_len + 1);
    }
    return mix_u(h, f->n_pairs);
}

static void check_pairs(const struct mg_form *f, const struct mg_form_limits *lim)
{
    MG_ASSERT(f->n_pairs <= lim->max_pairs);
    for (size_t i = 0; i < f->n_pairs; i++) {
        const struct mg_form_pair *p = &f->pairs[i];
        MG_ASSERT(p->name_len <= lim->max_name && p->value_len <= lim->max_value);
        MG_ASSERT(strlen(p->name) == p->name_len && strlen(p->value) == p->value_len);
        MG_ASSERT(utf8_ok(p->name, p->name_len) && utf8_ok(p->value, p->value_len));
        const char *v = NULL;
        size_t n = mg_form_count_of(f, p->name);
        int rc = mg_form_get(f, p->name, &v);
        MG_ASSERT(n >= 1);
        MG_ASSERT(n == 1 ? rc == MG_OK && v == p->value : rc == MG_EINVAL && v == NULL);
    }
}

static uint64_t parse(const char *in, size_t len, uint8_t seed, const struct mg_form_limits *lim,
                      struct mg_form *f)
{
    uint32_t rng = 0x9e3779b9u ^ seed;
    size_t max_piece = (size_t)1 << (seed & 7);
    size_t off = 0;
    int rc = MG_OK;
    mg_form_init(f, lim);
    while (off < len && rc == MG_OK) {
        size_t n = len - off;
        if (!(seed & 0x80)) {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            n = MG_MIN(n, 1 + rng % max_piece);
        }
        rc = mg_form_feed(f, in + off, n);
        off += n;
    }
    if (rc == MG_OK)
        rc = mg_form_end(f);
    MG_ASSERT(rc == MG_OK || rc == MG_EINVAL || rc == MG_ELIMIT);
    return mix_u(rc == MG_OK ? hash_pairs(f) : 0, (uint64_t)(rc + 100));
}

static void url_mode(const char *in, size_t len)
{
    static const struct mg_form_param params[] = {
        {"code", "c&d"}, {"state", "s t"}, {"iss", "https://gw.example"}};
    char *url = mg_xstrndup(in, len);
    struct mg_buf b;
    mg_buf_init(&b, 4 * len + 256);
    int rc = mg_form_url_append(&b, url, params, MG_ARRAY_LEN(params));
    MG_ASSERT(rc == MG_OK || rc == MG_EINVAL);
    if (rc == MG_OK) {
        size_t ul = strlen(url);
        MG_ASSERT(b.len > ul && memcmp(b.data, url, ul) == 0);
        MG_ASSERT(memchr(b.data, '#', b.len) == NULL);
        const char *q = memchr(b.data, '?', b.len);
        MG_ASSERT(q != NULL);
        struct mg_form f;
        const char *v = NULL;
        /* The registered query passed the default limits; ours adds 3 pairs. */
        struct mg_form_limits lim = MG_FORM_LIMITS_DEFAULT;
        lim.max_bytes = b.len;
        lim.max_pairs += MG_ARRAY_LEN(params);
        MG_ASSERT(mg_form_parse(&f, &lim, q + 1, b.len - (size_t)(q + 1 - b.data)) == MG_OK);
        for (size_t i = 0; i < MG_ARRAY_LEN(params); i++)
            MG_ASSERT(mg_form_get(&f, params[i].name, &v) == MG_OK &&
                      strcmp(v, params[i].value) == 0);
        mg_form_fini(&f);
    } else {
        MG_ASSERT(b.len == 0);
    }
    mg_buf_fini(&b);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] & 0x20) {
        url_mode(in, len);
        return 0;
    }
    const struct mg_form_limits *lim = (data[0] & 0x40) ? &small : NULL;
    const struct mg_form_limits eff = lim ? *lim : MG_FORM_LIMITS_DEFAULT;
    struct mg_form whole, split;
    uint64_t hw = parse(in, len, 0x80, lim, &whole);
    uint64_t hs = parse(in, len, data[0], lim, &split);
    MG_ASSERT(hw == hs);
    if (whole.ended && whole.status == MG_OK) {
        check_pairs(&whole, &eff);
        /* Encode and parse again: the same pairs. */
        struct mg_buf b;
        struct mg_form again;
        mg_buf_init(&b, roomy.max_bytes);
        for (size_t i = 0; i < whole.n_pairs; i++)
            MG_ASSERT(mg_form_append(&b, whole.pairs[i].name, whole.pairs[i].value) == MG_OK);
        MG_ASSERT(mg_form_parse(&again, &roomy, b.data ? b.data : "", b.len) == MG_OK);
        MG_ASSERT(hash_pairs(&again) == hash_pairs(&whole));
        mg_form_fini(&again);
        mg_buf_fini(&b);
    }
    mg_form_fini(&whole);
    mg_form_fini(&split);
    return 0;
}

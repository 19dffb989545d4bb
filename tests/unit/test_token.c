/* Unit tests for src/authn/token: token format, uniqueness, kind parsing,
 * refusal of every malformed shape, the hash known answers, and the strict
 * base64url codec shared with PKCE and JWT. */
#include "authn/token.h"

#include "tap.h"

static int cmp_tok(const void *a, const void *b)
{
    return memcmp(a, b, MG_TOKEN_BUF);
}

static void test_format(void)
{
    static const struct {
        enum mg_token_kind kind;
        const char *prefix;
    } kinds[] = {{MG_TOKEN_ACCESS, "mcpg_at_"},
                 {MG_TOKEN_REFRESH, "mcpg_rt_"},
                 {MG_TOKEN_CODE, "mcpg_ac_"},
                 {MG_TOKEN_SERVICE, "mcpg_sa_"}};
    for (size_t i = 0; i < MG_ARRAY_LEN(kinds); i++) {
        char t[MG_TOKEN_BUF];
        enum mg_token_kind k = (enum mg_token_kind)99;
        TAP_IS_INT(mg_token_new(kinds[i].kind, t, sizeof t), MG_OK, "new %s", kinds[i].prefix);
        TAP_IS_INT(strlen(t), MG_TOKEN_LEN, "length of %s token", kinds[i].prefix);
        TAP_OK(strncmp(t, kinds[i].prefix, 8) == 0, "prefix %s", kinds[i].prefix);
        TAP_OK(mg_authn_b64url_alphabet(t + 8, 43), "body is base64url for %s", kinds[i].prefix);
        TAP_IS_INT(mg_token_kind_of(t, &k), MG_OK, "kind_of accepts %s", t);
        TAP_IS_INT(k, kinds[i].kind, "kind_of parses %s", kinds[i].prefix);
    }
    char small[MG_TOKEN_LEN];
    TAP_IS_INT(mg_token_new(MG_TOKEN_ACCESS, small, sizeof small), MG_ELIMIT, "cap too small");
    char t[MG_TOKEN_BUF];
    TAP_IS_INT(mg_token_new((enum mg_token_kind)7, t, sizeof t), MG_EINVAL, "unknown kind");
    TAP_OK(mg_token_kind_name((enum mg_token_kind)7) == NULL, "no name for unknown kind");
}

static void test_unique(void)
{
    enum { N = 10000 };
    char(*toks)[MG_TOKEN_BUF] = mg_xcalloc(N, MG_TOKEN_BUF);
    int bad = 0, dup = 0;
    for (int i = 0; i < N; i++) {
        if (mg_token_new(MG_TOKEN_ACCESS, toks[i], MG_TOKEN_BUF) != MG_OK ||
            mg_token_kind_of(toks[i], NULL) != MG_OK)
            bad++;
    }
    qsort(toks, N, MG_TOKEN_BUF, cmp_tok);
    for (int i = 1; i < N; i++)
        if (memcmp(toks[i - 1], toks[i], MG_TOKEN_BUF) == 0)
            dup++;
    TAP_IS_INT(bad, 0, "10000 tokens created and parsed");
    TAP_IS_INT(dup, 0, "10000 tokens are distinct");
    free(toks);
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "",
        "mcpg_at_",
        "mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42 chars */
        "mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44 chars */
        "mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  /* padding */
        "mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",  /* base64, not url */
        "mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/",
        "mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.",
        "mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ",
        "mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", /* non-zero trailing bits */
        "mcpg_xx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* unknown kind */
        "mcpg_AT_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* kind is case-sensitive */
        "MCPG_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* prefix case */
        "mcpx_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* wrong prefix */
        "mcpg-at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* wrong separator */
        "mcpg_at-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mcpg_atxAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        " mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Bearer mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++)
        TAP_IS_INT(mg_token_kind_of(bad[i], NULL), MG_EINVAL, "refuses \"%s\"", bad[i]);
    TAP_IS_INT(mg_token_kind_of(NULL, NULL), MG_EINVAL, "refuses NULL");
    /* An embedded NUL makes the token short. */
    char t[MG_TOKEN_BUF + 8];
    TAP_IS_INT(mg_token_new(MG_TOKEN_REFRESH, t, sizeof t), MG_OK, "new for NUL test");
    t[20] = '\0';
    TAP_IS_INT(mg_token_kind_of(t, NULL), MG_EINVAL, "refuses truncated token");
    /* Every single-byte corruption of a valid token to a non-alphabet byte. */
    int accepted = 0;
    TAP_IS_INT(mg_token_new(MG_TOKEN_SERVICE, t, sizeof t), MG_OK, "new for corruption test");
    for (size_t i = 8; i < MG_TOKEN_LEN; i++) {
        char c = t[i];
        t[i] = '=';
        accepted += mg_token_kind_of(t, NULL) == MG_OK;
        t[i] = c;
    }
    TAP_IS_INT(accepted, 0, "no corrupted body accepted");
    TAP_IS_INT(mg_token_kind_of("mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL), MG_OK,
               "all-zero body is well-formed");
    TAP_IS_INT(mg_token_kind_of("mcpg_ac___________________________________________8", NULL), MG_OK,
               "all-ones body (canonical last char 8) accepted");
    TAP_IS_INT(mg_token_kind_of("mcpg_ac____________________________________________", NULL),
               MG_EINVAL, "non-canonical last char refused");
}

static void test_hash(void)
{
    uint8_t h[MG_TOKEN_HASH_LEN];
    char hex[MG_TOKEN_HASH_HEX_BUF];
    /* printf %s 'mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' | sha256sum */
    TAP_IS_INT(mg_token_hash_hex("mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", hex), MG_OK,
               "hash_hex ok");
    TAP_IS_STR(hex, "3c670470454d53da6f370bdad18aa41d1babde93d6cad59eb7718be42cf8aed8",
               "hash of a fixed token");
    /* FIPS 180-2 vector: SHA-256("abc"). */
    TAP_IS_INT(mg_token_hash_hex("abc", hex), MG_OK, "hash_hex abc");
    TAP_IS_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
               "SHA-256(abc)");
    TAP_IS_INT(mg_token_hash("abc", h), MG_OK, "hash abc");
    TAP_OK(h[0] == 0xba && h[31] == 0xad, "raw hash bytes");
    TAP_IS_INT(mg_token_hash(NULL, h), MG_EINVAL, "hash of NULL refused");
}

static void test_ct_equal(void)
{
    TAP_OK(mg_ct_equal("abcdef", "abcdef", 6), "ct_equal equal");
    TAP_OK(!mg_ct_equal("abcdef", "abcdeg", 6), "ct_equal last byte differs");
    TAP_OK(!mg_ct_equal("xbcdef", "abcdef", 6), "ct_equal first byte differs");
    TAP_OK(mg_ct_equal("a", "b", 0), "ct_equal zero length");
}

static void test_b64url(void)
{
    /* RFC 4648 §10 vectors (url alphabet, no padding). */
    static const struct {
        const char *raw, *enc;
    } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
             {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < MG_ARRAY_LEN(v); i++) {
        char enc[16];
        uint8_t dec[16];
        size_t n = 99;
        TAP_IS_INT(
            mg_authn_b64url_encode((const uint8_t *)v[i].raw, strlen(v[i].raw), enc, sizeof enc),
            MG_OK, "encode \"%s\"", v[i].raw);
        TAP_IS_STR(enc, v[i].enc, "encoding of \"%s\"", v[i].raw);
        TAP_IS_INT(mg_authn_b64url_decode(v[i].enc, strlen(v[i].enc), dec, sizeof dec, &n), MG_OK,
                   "decode \"%s\"", v[i].enc);
        TAP_OK(n == strlen(v[i].raw) && memcmp(dec, v[i].raw, n) == 0, "round trip \"%s\"",
               v[i].raw);
    }
    const uint8_t ff[2] = {0xfb, 0xff};
    char enc[8];
    TAP_IS_INT(mg_authn_b64url_encode(ff, 2, enc, sizeof enc), MG_OK, "encode fbff");
    TAP_IS_STR(enc, "-_8", "url alphabet used");
    TAP_IS_INT(mg_authn_b64url_encode(ff, 2, enc, 3), MG_ELIMIT, "encode cap");
    uint8_t d[8];
    size_t n;
    TAP_IS_INT(mg_authn_b64url_decode("Zm9vYg==", 8, d, sizeof d, &n), MG_EINVAL, "padding");
    TAP_IS_INT(mg_authn_b64url_decode("Zm9vY", 5, d, sizeof d, &n), MG_EINVAL, "len mod 4 == 1");
    TAP_IS_INT(mg_authn_b64url_decode("Zh", 2, d, sizeof d, &n), MG_EINVAL, "non-canonical");
    TAP_IS_INT(mg_authn_b64url_decode("Zm+v", 4, d, sizeof d, &n), MG_EINVAL, "'+' refused");
    TAP_IS_INT(mg_authn_b64url_decode("Zm9 ", 4, d, sizeof d, &n), MG_EINVAL, "space refused");
    TAP_IS_INT(mg_authn_b64url_decode("Zm9vYmFy", 8, d, 5, &n), MG_ELIMIT, "decode cap");
}

int main(void)
{
    test_format();
    test_unique();
    test_malformed();
    test_hash();
    test_ct_equal();
    test_b64url();
    return tap_done();
}

/* Unit tests for src/http/form: the WHATWG urlencoded parsing rules (empty
 * sequences, first '=', '+', escapes), the strict refusals (bad escapes,
 * invalid UTF-8, NUL), every limit at its boundary, each input fed whole,
 * byte by byte and split at every point with the same result, the lookup
 * that refuses duplicates (RFC 6749 §3.1), the encoder and its round trip,
 * and redirect URLs that keep the registered query (RFC 6749 §3.1.2). */
#include "http/form.h"

#include "tap.h"

/* "rc=N" then one "[name]=[value]" per pair, non-printable bytes as \xNN. */
static void esc(struct mg_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '\\' || c == '[' || c == ']')
            mg_buf_appendf(b, "\\x%02x", c);
        else
            mg_buf_append(b, &s[i], 1);
    }
}

static char *transcript(struct mg_form *f, int rc)
{
    struct mg_buf b;
    mg_buf_init(&b, 1 << 20);
    mg_buf_appendf(&b, "rc=%d", rc);
    if (rc == MG_OK) {
        for (size_t i = 0; i < f->n_pairs; i++) {
            const struct mg_form_pair *p = &f->pairs[i];
            mg_buf_appends(&b, " [");
            esc(&b, p->name, p->name_len);
            mg_buf_appends(&b, "]=[");
            esc(&b, p->value, p->value_len);
            mg_buf_appends(&b, "]");
            if (p->name[p->name_len] != '\0' || p->value[p->value_len] != '\0' ||
                strlen(p->name) != p->name_len || strlen(p->value) != p->value_len)
                mg_buf_appends(&b, " BADTERM");
        }
    }
    return mg_buf_steal(&b, NULL);
}

/* Feeds in pieces ending at cuts[] then len; the transcript (caller frees). */
static char *run_cuts(const struct mg_form_limits *lim, const char *in, size_t len,
                      const size_t *cuts, size_t n_cuts)
{
    struct mg_form f;
    int rc = MG_OK;
    size_t start = 0;
    mg_form_init(&f, lim);
    for (size_t k = 0; k <= n_cuts && rc == MG_OK; k++) {
        size_t end = k < n_cuts ? cuts[k] : len;
        rc = mg_form_feed(&f, in + start, end - start);
        start = end;
    }
    if (rc == MG_OK)
        rc = mg_form_end(&f);
    char *t = transcript(&f, rc);
    mg_form_fini(&f);
    return t;
}

/* The same transcript whole, byte by byte, and at every single split. */
static void check_n(const struct mg_form_limits *lim, const char *in, size_t len, const char *want,
                    const char *name)
{
    char *whole = run_cuts(lim, in, len, NULL, 0);
    TAP_IS_STR(whole, want, "%s: whole", name);
    size_t *cuts = mg_xcalloc(len + 1, sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    char *bytes = run_cuts(lim, in, len, cuts, len);
    TAP_IS_STR(bytes, want, "%s: byte by byte", name);
    int bad_split = 0;
    for (size_t i = 0; i <= len; i++) {
        char *t = run_cuts(lim, in, len, &i, 1);
        bad_split += strcmp(t, want) != 0;
        free(t);
    }
    TAP_IS_INT(bad_split, 0, "%s: every split point", name);
    /* mg_form_parse is the same as init + feed + end. */
    struct mg_form f;
    int rc = mg_form_parse(&f, lim, in, len);
    char *t = transcript(&f, rc);
    TAP_IS_STR(t, want, "%s: mg_form_parse", name);
    mg_form_fini(&f);
    free(t);
    free(cuts);
    free(whole);
    free(bytes);
}

static void check(const char *in, const char *want)
{
    check_n(NULL, in, strlen(in), want, in);
}

static void test_whatwg(void)
{
    check("", "rc=0");
    check("&", "rc=0");
    check("&&&", "rc=0");
    check("a=1", "rc=0 [a]=[1]");
    check("a=1&b=2", "rc=0 [a]=[1] [b]=[2]");
    check("&&a=1&&b=2&&", "rc=0 [a]=[1] [b]=[2]");
    check("a", "rc=0 [a]=[]");
    check("a=", "rc=0 [a]=[]");
    check("=", "rc=0 []=[]");
    check("=b", "rc=0 []=[b]");
    check("a==b", "rc=0 [a]=[=b]");
    check("a=b=c&d", "rc=0 [a]=[b=c] [d]=[]");
    check("a+b=c+d", "rc=0 [a b]=[c d]");
    check("+", "rc=0 [ ]=[]");
    check("a=%2B", "rc=0 [a]=[+]");
    check("a=%20+%20", "rc=0 [a]=[   ]");
    check("a=%26b%3Dc", "rc=0 [a]=[&b=c]");
    check("%61%3d=%3D", "rc=0 [a=]=[=]");
    check("a=%c3%A9", "rc=0 [a]=[\\xc3\\xa9]");
    check("a=\xc3\xa9", "rc=0 [a]=[\\xc3\\xa9]");
    check("a=%F0%9F%98%80", "rc=0 [a]=[\\xf0\\x9f\\x98\\x80]");
    check("a=%25", "rc=0 [a]=[%]");
    check("a=1&a=2", "rc=0 [a]=[1] [a]=[2]");
    check("redirect_uri=https%3A%2F%2Fc.example%2Fcb%3Fx%3D1",
          "rc=0 [redirect_uri]=[https://c.example/cb?x=1]");
    /* Tab and raw controls pass through: only NUL is refused. */
    check("a=%09", "rc=0 [a]=[\\x09]");
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "%",       "a=%",        "a=%4",        "a=%4g",          "a=%g4",   "a=%%41",
        "a=%-1",   "a=% 1",      "a=%00",       "%00=a",          "a=1&b=%", "a=%C3",
        "a=%C3&b", "a=%C0%AF",   "a=%ED%A0%80", "a=%F4%90%80%80", "%FF=x",   "a=\xff",
        "a=\xc3",  "a=\xe2\x82", "a=%E2%82",    "a=%80",
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        char want[16];
        snprintf(want, sizeof want, "rc=%d", MG_EINVAL);
        check(bad[i], want);
    }
    /* A NUL in the raw input is refused as well as %00. */
    char want[16];
    snprintf(want, sizeof want, "rc=%d", MG_EINVAL);
    check_n(NULL, "a=b\0c", 5, want, "raw NUL");
}

static void test_limits(void)
{
    struct mg_form_limits lim = {.max_bytes = 20, .max_pairs = 3, .max_name = 4, .max_value = 6};
    char elimit[16];
    snprintf(elimit, sizeof elimit, "rc=%d", MG_ELIMIT);

    check_n(&lim, "aaaa=bbbbbb", 11, "rc=0 [aaaa]=[bbbbbb]", "name and value at limit");
    check_n(&lim, "aaaaa=b", 7, elimit, "name over limit");
    check_n(&lim, "a=bbbbbbb", 9, elimit, "value over limit");
    /* Limits count decoded bytes: six escapes are six bytes. */
    check_n(&lim, "a=%41%41%41", 11, "rc=0 [a]=[AAA]", "escapes count decoded");
    check_n(&lim, "a=++++++", 8, "rc=0 [a]=[      ]", "plus signs at limit");
    check_n(&lim, "a&b&c", 5, "rc=0 [a]=[] [b]=[] [c]=[]", "pairs at limit");
    check_n(&lim, "a&b&c&d", 7, elimit, "pairs over limit");
    check_n(&lim, "a&&&b&&&c&&&", 12, "rc=0 [a]=[] [b]=[] [c]=[]", "empty sequences not counted");
    check_n(&lim, "a=1&b=2&c=3&&&&&&&&&", 20, "rc=0 [a]=[1] [b]=[2] [c]=[3]", "bytes at limit");
    check_n(&lim, "a=1&b=2&c=3&&&&&&&&&&", 21, elimit, "bytes over limit");
    /* An error inside the limit wins over the byte limit, however split. */
    char einval[16];
    snprintf(einval, sizeof einval, "rc=%d", MG_EINVAL);
    check_n(&lim, "a=%zz&&&&&&&&&&&&&&&&&&&&", 25, einval, "error before the byte limit");

    /* The default limits. */
    struct mg_buf b;
    mg_buf_init(&b, 1 << 20);
    for (int i = 0; i < MG_FORM_MAX_PAIRS; i++)
        mg_buf_appendf(&b, "%sp%d=v", i ? "&" : "", i);
    struct mg_form f;
    TAP_IS_INT(mg_form_parse(&f, NULL, b.data, b.len), MG_OK, "64 pairs by default");
    TAP_IS_INT(f.n_pairs, MG_FORM_MAX_PAIRS, "64 pairs parsed");
    mg_form_fini(&f);
    mg_buf_appends(&b, "&x");
    TAP_IS_INT(mg_form_parse(&f, NULL, b.data, b.len), MG_ELIMIT, "65 pairs refused");
    mg_form_fini(&f);
    mg_buf_reset(&b);
    mg_buf_appends(&b, "v=");
    for (int i = 0; i < MG_FORM_MAX_VALUE; i++)
        mg_buf_append(&b, "x", 1);
    TAP_IS_INT(mg_form_parse(&f, NULL, b.data, b.len), MG_OK, "default value limit");
    mg_form_fini(&f);
    mg_buf_append(&b, "x", 1);
    TAP_IS_INT(mg_form_parse(&f, NULL, b.data, b.len), MG_ELIMIT, "default value limit + 1");
    mg_form_fini(&f);
    mg_buf_reset(&b);
    for (int i = 0; i <= MG_FORM_MAX_BYTES; i++)
        mg_buf_append(&b, "&", 1);
    TAP_IS_INT(mg_form_parse(&f, NULL, b.data, b.len - 1), MG_OK, "default byte limit");
    mg_form_fini(&f);
    TAP_IS_INT(mg_form_parse(&f, NULL, b.data, b.len), MG_ELIMIT, "default byte limit + 1");
    mg_form_fini(&f);
    mg_buf_fini(&b);
}

static void test_state(void)
{
    struct mg_form f;
    mg_form_init(&f, NULL);
    TAP_IS_INT(mg_form_feed(&f, "a=%zz", 5), MG_EINVAL, "error returned");
    TAP_IS_INT(mg_form_feed(&f, "&b=1", 4), MG_EINVAL, "error sticks on feed");
    TAP_IS_INT(mg_form_end(&f), MG_EINVAL, "error sticks on end");
    mg_form_fini(&f);

    mg_form_init(&f, NULL);
    TAP_IS_INT(mg_form_feed(&f, "a=1", 3), MG_OK, "feed");
    TAP_IS_INT(mg_form_end(&f), MG_OK, "end");
    TAP_IS_INT(mg_form_feed(&f, "&b=2", 4), MG_EINVAL, "feed after end refused");
    TAP_IS_INT(mg_form_end(&f), MG_EINVAL, "second end refused");
    TAP_IS_INT(f.n_pairs, 1, "pairs untouched");
    mg_form_fini(&f);
    mg_form_fini(&f); /* fini twice is harmless */

    /* fini without parse, and re-use after fini. */
    mg_form_init(&f, NULL);
    mg_form_fini(&f);
    TAP_IS_INT(mg_form_parse(&f, NULL, "x=y", 3), MG_OK, "re-use after fini");
    mg_form_fini(&f);
}

static void test_get(void)
{
    struct mg_form f;
    const char *v = "unset";
    const char *in = "grant_type=authorization_code&code=abc&resource=https%3A%2F%2Fa&"
                     "resource=https%3A%2F%2Fb&state=&state=x&empty=";
    TAP_IS_INT(mg_form_parse(&f, NULL, in, strlen(in)), MG_OK, "token request parses");
    TAP_IS_INT(mg_form_get(&f, "code", &v), MG_OK, "get code");
    TAP_IS_STR(v, "abc", "code value");
    TAP_IS_INT(mg_form_get(&f, "grant_type", &v), MG_OK, "get grant_type");
    TAP_IS_STR(v, "authorization_code", "grant_type value");
    TAP_IS_INT(mg_form_get(&f, "empty", &v), MG_OK, "get empty value");
    TAP_IS_STR(v, "", "empty value is \"\"");
    TAP_IS_INT(mg_form_get(&f, "code_verifier", &v), MG_ENOTFOUND, "absent");
    TAP_OK(v == NULL, "absent gives NULL");
    v = "unset";
    TAP_IS_INT(mg_form_get(&f, "state", &v), MG_EINVAL, "duplicate refused");
    TAP_OK(v == NULL, "duplicate gives NULL");
    TAP_IS_INT(mg_form_get(&f, "resource", &v), MG_EINVAL, "repeated resource refused by get");
    TAP_IS_INT(mg_form_count_of(&f, "resource"), 2, "count_of resource");
    TAP_IS_INT(mg_form_count_of(&f, "code"), 1, "count_of code");
    TAP_IS_INT(mg_form_count_of(&f, "nope"), 0, "count_of absent");
    TAP_IS_INT(mg_form_get(&f, "Code", &v), MG_ENOTFOUND, "names are case-sensitive");
    mg_form_fini(&f);
}

static void test_encode(void)
{
    struct mg_buf b;
    mg_buf_init(&b, 1024);
    TAP_IS_INT(mg_form_encode(&b, "AZaz09-._~", 10), MG_OK, "encode unreserved");
    TAP_IS_STR(b.data, "AZaz09-._~", "unreserved kept");
    mg_buf_reset(&b);
    TAP_IS_INT(mg_form_encode(&b, " +&=%/?#\xc3\xa9\x01\x7f", 12), MG_OK, "encode reserved");
    TAP_IS_STR(b.data, "%20%2B%26%3D%25%2F%3F%23%C3%A9%01%7F", "reserved encoded upper-case");
    mg_buf_reset(&b);

    TAP_IS_INT(mg_form_append(&b, "code", "a b"), MG_OK, "append first");
    TAP_IS_STR(b.data, "code=a%20b", "first pair has no '&'");
    TAP_IS_INT(mg_form_append(&b, "state", "x&y=z"), MG_OK, "append second");
    TAP_IS_STR(b.data, "code=a%20b&state=x%26y%3Dz", "second pair after '&'");
    TAP_IS_INT(mg_form_append(&b, "e", ""), MG_OK, "append empty value");
    TAP_IS_STR(b.data, "code=a%20b&state=x%26y%3Dz&e=", "empty value");

    /* Round trip through the parser, every byte value but NUL. */
    char all[255];
    for (int i = 0; i < 255; i++)
        all[i] = (char)(i + 1);
    struct mg_buf rt;
    mg_buf_init(&rt, 4096);
    mg_form_encode(&rt, "k", 1);
    mg_buf_append(&rt, "=", 1);
    TAP_IS_INT(mg_form_encode(&rt, all, 127), MG_OK, "encode ASCII");
    struct mg_form f;
    const char *v = NULL;
    TAP_IS_INT(mg_form_parse(&f, NULL, rt.data, rt.len), MG_OK, "encoded ASCII parses");
    TAP_IS_INT(mg_form_get(&f, "k", &v), MG_OK, "get round trip");
    TAP_OK(v && strlen(v) == 127 && memcmp(v, all, 127) == 0, "ASCII round trip exact");
    mg_form_fini(&f);
    mg_buf_reset(&rt);
    mg_form_append(&rt, "n\xc3\xa9 &=", "v\xf0\x9f\x98\x80+%");
    TAP_IS_INT(mg_form_parse(&f, NULL, rt.data, rt.len), MG_OK, "UTF-8 pair parses");
    TAP_IS_INT(mg_form_get(&f, "n\xc3\xa9 &=", &v), MG_OK, "UTF-8 name found");
    TAP_IS_STR(v, "v\xf0\x9f\x98\x80+%", "UTF-8 value round trip");
    mg_form_fini(&f);
    mg_buf_fini(&rt);

    /* At the cap nothing is appended. */
    struct mg_buf small;
    mg_buf_init(&small, 7);
    TAP_IS_INT(mg_form_append(&small, "a", "b"), MG_OK, "small append");
    TAP_IS_INT(mg_form_append(&small, "c", "d e"), MG_ELIMIT, "append over cap");
    TAP_IS_STR(small.data, "a=b", "buffer unchanged after ELIMIT");
    TAP_IS_INT(small.len, 3, "length unchanged after ELIMIT");
    TAP_IS_INT(mg_form_encode(&small, "          ", 10), MG_ELIMIT, "encode over cap");
    TAP_IS_STR(small.data, "a=b", "buffer unchanged after encode ELIMIT");
    TAP_IS_INT(mg_form_append(&small, "c", "d"), MG_OK, "append to exactly the cap");
    TAP_IS_STR(small.data, "a=b&c=d", "filled");
    mg_buf_fini(&small);
    mg_buf_fini(&b);
}

static void url_case(const char *url, const struct mg_form_param *p, size_t n, int want_rc,
                     const char *want)
{
    struct mg_buf b;
    mg_buf_init(&b, 4096);
    mg_buf_appends(&b, "Location: ");
    int rc = mg_form_url_append(&b, url, p, n);
    TAP_IS_INT(rc, want_rc, "url_append \"%s\" status", url);
    if (rc == MG_OK)
        TAP_IS_STR(b.data + 10, want, "url_append \"%s\"", url);
    else
        TAP_IS_STR(b.data, "Location: ", "url_append \"%s\" leaves buffer unchanged", url);
    mg_buf_fini(&b);
}

static void test_url(void)
{
    const struct mg_form_param p[] = {
        {"code", "mcpg_ac_x"}, {"state", "s t&u"}, {"iss", "https://gw.example"}};
    const char *tail = "code=mcpg_ac_x&state=s%20t%26u&iss=https%3A%2F%2Fgw.example";
    char want[512];

    snprintf(want, sizeof want, "https://c.example/cb?%s", tail);
    url_case("https://c.example/cb", p, 3, MG_OK, want);
    snprintf(want, sizeof want, "https://c.example/cb?%s", tail);
    url_case("https://c.example/cb?", p, 3, MG_OK, want);
    snprintf(want, sizeof want, "https://c.example/cb?x=1&y=%%2F&%s", tail);
    url_case("https://c.example/cb?x=1&y=%2F", p, 3, MG_OK, want);
    snprintf(want, sizeof want, "https://c.example/cb?x=1&%s", tail);
    url_case("https://c.example/cb?x=1&", p, 3, MG_OK, want);
    snprintf(want, sizeof want, "http://127.0.0.1:8123/callback?%s", tail);
    url_case("http://127.0.0.1:8123/callback", p, 3, MG_OK, want);
    url_case("com.example.app:/oauth?a", p, 1, MG_OK, "com.example.app:/oauth?a&code=mcpg_ac_x");
    /* Found by fuzz_form: only the first '?' starts the query. */
    url_case("https://c.example/cb?a?", p, 1, MG_OK, "https://c.example/cb?a?&code=mcpg_ac_x");
    url_case("https://c.example/cb??", p, 1, MG_OK, "https://c.example/cb??&code=mcpg_ac_x");
    url_case("https://c.example/cb?x=1", p, 0, MG_OK, "https://c.example/cb?x=1");
    url_case("https://c.example/cb", p, 0, MG_OK, "https://c.example/cb");

    url_case("", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/cb#frag", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/cb?x=1#", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/c b", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/cb\r\nSet-Cookie: x=1", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/cb\x7f", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/\xc3\xa9", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/cb?state=1", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/cb?x=1&code", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/cb?%63ode=1", p, 3, MG_EINVAL, NULL);
    url_case("https://c.example/cb?x=%zz", p, 3, MG_EINVAL, NULL);

    struct mg_buf b;
    mg_buf_init(&b, 30);
    TAP_IS_INT(mg_form_url_append(&b, "https://c.example/cb", p, 3), MG_ELIMIT, "url over cap");
    TAP_IS_INT(b.len, 0, "nothing appended over cap");
    mg_buf_fini(&b);
}

int main(void)
{
    test_whatwg();
    test_malformed();
    test_limits();
    test_state();
    test_get();
    test_encode();
    test_url();
    return tap_done();
}

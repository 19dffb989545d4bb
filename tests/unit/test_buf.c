/* Unit tests for bounded buffers (src/core/buf): the hard cap (appending up
 * to max succeeds, one byte more is MG_ELIMIT and appends nothing), growth
 * through append and appendf, consume, steal, and JSON string escaping
 * (quotes, backslash, every control byte, DEL, UTF-8 passed through).
 * */
#include "core/buf.h"
#include "tap.h"

#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_caps(void)
{
    struct mg_buf b;
    mg_buf_init(&b, 10);
    TAP_OK(b.data == NULL && b.len == 0 && b.max == 10, "init: empty, nothing allocated");
    TAP_IS_INT(mg_buf_append(&b, "0123456789", 10), MG_OK, "append exactly max");
    TAP_IS_INT(b.len, 10, "len is max");
    TAP_IS_STR(b.data, "0123456789", "content, NUL-terminated");
    TAP_OK(b.cap <= b.max + 1, "cap never exceeds max + 1 (cap %zu)", b.cap);
    TAP_IS_INT(mg_buf_append(&b, "x", 1), MG_ELIMIT, "one more byte: MG_ELIMIT");
    TAP_IS_INT(b.len, 10, "nothing appended");
    TAP_IS_STR(b.data, "0123456789", "content unchanged");
    TAP_IS_INT(mg_buf_append(&b, "", 0), MG_OK, "appending nothing at max is fine");
    TAP_IS_INT(mg_buf_appends(&b, "y"), MG_ELIMIT, "appends at max: MG_ELIMIT");
    TAP_IS_INT(mg_buf_appendf(&b, "%d", 1), MG_ELIMIT, "appendf at max: MG_ELIMIT");
    TAP_IS_STR(b.data, "0123456789", "still unchanged");
    mg_buf_fini(&b);
    TAP_OK(b.data == NULL && b.len == 0 && b.cap == 0, "fini empties");
    mg_buf_fini(&b);
    TAP_OK(b.data == NULL, "fini twice is harmless");

    mg_buf_init(&b, 10);
    TAP_IS_INT(mg_buf_append(&b, "0123456789A", 11), MG_ELIMIT, "max + 1 at once: MG_ELIMIT");
    TAP_OK(b.len == 0, "max + 1 at once: nothing appended");
    TAP_IS_INT(mg_buf_append(&b, "01234", 5), MG_OK, "half");
    TAP_IS_INT(mg_buf_append(&b, "567890", 6), MG_ELIMIT, "half + 6 > max: MG_ELIMIT");
    TAP_IS_STR(b.data, "01234", "half + 6: nothing appended");
    TAP_IS_INT(mg_buf_append(&b, "56789", 5), MG_OK, "half + half = max");
    TAP_IS_STR(b.data, "0123456789", "half + half content");
    TAP_IS_INT(mg_buf_append(&b, "x", SIZE_MAX), MG_ELIMIT, "SIZE_MAX bytes: MG_ELIMIT");
    mg_buf_fini(&b);

    mg_buf_init(&b, 0);
    TAP_IS_INT(mg_buf_append(&b, "", 0), MG_OK, "max 0: empty append");
    TAP_OK(b.data && b.data[0] == '\0', "max 0: data is an empty string");
    TAP_IS_INT(mg_buf_append(&b, "a", 1), MG_ELIMIT, "max 0: one byte is MG_ELIMIT");
    mg_buf_fini(&b);

    /* Growth in many small steps keeps every byte. */
    mg_buf_init(&b, 100000);
    bool ok = true;
    for (int i = 0; i < 10000; i++)
        ok = ok && mg_buf_append(&b, "0123456789", 10) == MG_OK;
    TAP_OK(ok && b.len == 100000, "grows to max in 10-byte steps");
    ok = true;
    for (size_t i = 0; i < b.len; i++)
        ok = ok && b.data[i] == (char)('0' + i % 10);
    TAP_OK(ok && b.data[b.len] == '\0', "and keeps every byte");
    TAP_OK(b.cap == b.max + 1, "cap capped at max + 1");
    TAP_IS_INT(mg_buf_append(&b, "x", 1), MG_ELIMIT, "then MG_ELIMIT");
    mg_buf_fini(&b);

    /* reset keeps the allocation and the cap. */
    mg_buf_init(&b, 8);
    mg_buf_appends(&b, "abcdefgh");
    char *before = b.data;
    mg_buf_reset(&b);
    TAP_OK(b.len == 0 && b.data == before, "reset keeps the allocation");
    TAP_IS_INT(mg_buf_appends(&b, "12345678"), MG_OK, "reset: max bytes fit again");
    TAP_IS_INT(mg_buf_appends(&b, "9"), MG_ELIMIT, "reset: cap still enforced");
    mg_buf_fini(&b);
}

static void test_appendf(void)
{
    struct mg_buf b;
    mg_buf_init(&b, 1 << 16);
    TAP_IS_INT(mg_buf_appendf(&b, "%s=%d;", "a", 1), MG_OK, "appendf small");
    TAP_IS_INT(mg_buf_appendf(&b, "%s=%u", "b", 22u), MG_OK, "appendf again");
    TAP_IS_STR(b.data, "a=1;b=22", "appendf content");

    /* Outputs around the 256-byte stack buffer, and far past it. */
    static const size_t sizes[] = {254, 255, 256, 257, 1000, 5000};
    for (size_t k = 0; k < MG_ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k];
        char *s = malloc(n + 1);
        memset(s, 'q', n);
        s[n] = '\0';
        mg_buf_reset(&b);
        mg_buf_appends(&b, "<");
        int rc = mg_buf_appendf(&b, "%s>", s);
        bool ok = rc == MG_OK && b.len == n + 2 && b.data[0] == '<' && b.data[n + 1] == '>' &&
                  b.data[n + 2] == '\0' && memcmp(b.data + 1, s, n) == 0;
        TAP_OK(ok, "appendf of %zu + 1 bytes after 1", n);
        free(s);
    }
    mg_buf_fini(&b);

    /* A large appendf over the cap appends nothing. */
    mg_buf_init(&b, 300);
    mg_buf_appends(&b, "head");
    char s[400];
    memset(s, 'z', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    TAP_IS_INT(mg_buf_appendf(&b, "%s", s), MG_ELIMIT, "appendf of 399 bytes into 300: MG_ELIMIT");
    TAP_IS_STR(b.data, "head", "appendf over the cap: nothing appended");
    s[296] = '\0';
    TAP_IS_INT(mg_buf_appendf(&b, "%s", s), MG_OK, "appendf filling to exactly max");
    TAP_IS_INT(b.len, 300, "appendf filling to exactly max: len");
    TAP_OK(b.data[300] == '\0', "appendf filling to exactly max: terminated");
    mg_buf_fini(&b);
}

static void test_consume_steal(void)
{
    struct mg_buf b;
    mg_buf_init(&b, 64);
    mg_buf_appends(&b, "0123456789");
    mg_buf_consume(&b, 0);
    TAP_IS_STR(b.data, "0123456789", "consume 0");
    mg_buf_consume(&b, 3);
    TAP_IS_STR(b.data, "3456789", "consume 3");
    TAP_IS_INT(b.len, 7, "consume 3: len");
    mg_buf_consume(&b, 7);
    TAP_OK(b.len == 0 && b.data[0] == '\0', "consume all");
    TAP_IS_INT(mg_buf_appends(&b, "abc"), MG_OK, "append after consume");
    TAP_IS_STR(b.data, "abc", "append after consume: content");
    mg_buf_fini(&b);

    /* In a child: a sanitizer build stops on undefined behaviour here. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        mg_buf_init(&b, 64);
        mg_buf_consume(&b, 0);
        _exit(b.len == 0 ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    TAP_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "consume 0 of a never-used buffer: no memmove on NULL (undefined, buf.c:78; "
           "fails under SANITIZE=1)");

    /* Consuming more than len is a broken invariant: the process stops. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(2);
        mg_buf_init(&b, 64);
        mg_buf_appends(&b, "ab");
        mg_buf_consume(&b, 3);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    TAP_OK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "consume past len aborts");

    mg_buf_init(&b, 64);
    mg_buf_appends(&b, "stolen");
    size_t len = 0;
    char *d = mg_buf_steal(&b, &len);
    TAP_IS_STR(d, "stolen", "steal returns the bytes");
    TAP_IS_INT(len, 6, "steal returns the length");
    TAP_OK(b.data == NULL && b.len == 0 && b.cap == 0 && b.max == 64,
           "steal leaves an empty buffer with its cap");
    free(d);
    TAP_IS_INT(mg_buf_appends(&b, "again"), MG_OK, "usable after steal");
    TAP_IS_STR(b.data, "again", "usable after steal: content");
    mg_buf_fini(&b);

    mg_buf_init(&b, 64);
    len = 99;
    d = mg_buf_steal(&b, &len);
    TAP_OK(d != NULL && d[0] == '\0' && len == 0, "steal of an empty buffer gives \"\"");
    free(d);
    d = mg_buf_steal(&b, NULL);
    TAP_OK(d != NULL && d[0] == '\0', "steal with NULL len");
    free(d);
    mg_buf_fini(&b);
}

static char *json_of(const char *s, size_t n, int *rc)
{
    struct mg_buf b;
    mg_buf_init(&b, 1 << 16);
    *rc = mg_buf_append_json_str(&b, s, n);
    return mg_buf_steal(&b, NULL);
}

#define JSON_IS(in, want, name)                                                                    \
    do {                                                                                           \
        int rc_;                                                                                   \
        char *j_ = json_of(in, sizeof(in) - 1, &rc_);                                              \
        TAP_OK(rc_ == 0, "json %s: ok", name);                                                     \
        TAP_IS_STR(j_, want, "json %s", name);                                                     \
        free(j_);                                                                                  \
    } while (0)

/* The literal parses back (jansson, strict) to exactly the input bytes. */
static bool json_roundtrip(const char *s, size_t n)
{
    int rc;
    char *j = json_of(s, n, &rc);
    json_t *v = json_loads(j, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    bool ok = rc == 0 && json_is_string(v) && json_string_length(v) == n &&
              memcmp(json_string_value(v), s, n) == 0;
    json_decref(v);
    free(j);
    return ok;
}

static void test_json(void)
{
    JSON_IS("", "\"\"", "empty");
    JSON_IS("plain text", "\"plain text\"", "plain");
    JSON_IS("a\"b", "\"a\\\"b\"", "quote");
    JSON_IS("a\\b", "\"a\\\\b\"", "backslash");
    JSON_IS("\\\"", "\"\\\\\\\"\"", "backslash quote");
    JSON_IS("/", "\"/\"", "slash is not escaped");
    JSON_IS("a\nb\tc\r", "\"a\\u000ab\\u0009c\\u000d\"", "newline, tab, CR");
    JSON_IS("\x01\x1f", "\"\\u0001\\u001f\"", "control bytes");
    JSON_IS("\x7f", "\"\\u007f\"", "DEL");
    JSON_IS("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80",
            "\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"", "UTF-8 passes through");
    {
        static const char nul[] = "a\0b";
        int rc;
        char *j = json_of(nul, 3, &rc);
        TAP_IS_STR(j, "\"a\\u0000b\"", "json NUL inside");
        free(j);
    }
    /* Every byte below 0x80 alone, and all of them together, round-trip. */
    bool ok = true;
    char all[128];
    for (int c = 0; c < 128; c++) {
        char ch = (char)c;
        all[c] = ch;
        ok = ok && json_roundtrip(&ch, 1);
    }
    TAP_OK(ok, "every ASCII byte round-trips through jansson");
    TAP_OK(json_roundtrip(all, sizeof all), "all ASCII bytes together round-trip");
    TAP_OK(json_roundtrip("\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", 9), "UTF-8 round-trips");

    /* The cap applies to the escaped form; a failure appends no closing quote. */
    struct mg_buf b;
    mg_buf_init(&b, 8);
    TAP_IS_INT(mg_buf_append_json_str(&b, "abcdef", 6), MG_OK, "json fitting exactly: ok");
    TAP_IS_STR(b.data, "\"abcdef\"", "json fitting exactly");
    mg_buf_reset(&b);
    TAP_IS_INT(mg_buf_append_json_str(&b, "abcdefg", 7), MG_ELIMIT, "json one over: MG_ELIMIT");
    mg_buf_reset(&b);
    TAP_IS_INT(mg_buf_append_json_str(&b, "\n", 1), MG_OK, "json \\u000a fits in 8");
    mg_buf_reset(&b);
    TAP_IS_INT(mg_buf_append_json_str(&b, "\n\n", 2), MG_ELIMIT, "json escapes count: MG_ELIMIT");
    mg_buf_fini(&b);

    /* The access log passes client bytes (the request path, which llhttp
     * lets carry bytes >= 0x80) through here: the literal must stay valid
     * JSON, so bytes that are not UTF-8 need escaping or replacing. */
    {
        int rc;
        static const char bad[] = "/a\xff\xfe\xc3";
        char *j = json_of(bad, sizeof bad - 1, &rc);
        json_t *v = json_loads(j, JSON_DECODE_ANY, NULL);
        TAP_OK(v != NULL, "invalid UTF-8 input still gives a valid JSON literal (buf.c:109)");
        json_decref(v);
        free(j);
    }
}

/* Decimal digits without printf: mg_u64_dec and mg_buf_append_u64. */
static void test_decimal(void)
{
    static const uint64_t vals[] = {0, 7, 9, 10, 99, 100, 4294967296ULL, UINT64_MAX};
    size_t wrong = 0;
    for (size_t i = 0; i < MG_ARRAY_LEN(vals); i++) {
        char want[32], buf[MG_U64_DEC];
        snprintf(want, sizeof want, "%llu", (unsigned long long)vals[i]);
        const char *d = mg_u64_dec(buf, vals[i]);
        size_t n = (size_t)(buf + sizeof buf - d);
        wrong += n != strlen(want) || memcmp(d, want, n) != 0;
        struct mg_buf b;
        mg_buf_init(&b, 64);
        mg_buf_appends(&b, "x");
        wrong += mg_buf_append_u64(&b, vals[i]) != 0 || strcmp(b.data + 1, want) != 0;
        mg_buf_fini(&b);
    }
    TAP_IS_INT(wrong, 0, "decimal digits of 0, 7, ..., UINT64_MAX as printf writes them");
}

int main(void)
{
    test_caps();
    test_decimal();
    test_appendf();
    test_consume_steal();
    test_json();
    return tap_done();
}

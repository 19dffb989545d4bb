/* Unit tests for src/authn/password: hash format and parameters, verify and
 * mismatch, a vector from the reference implementation's test suite,
 * password length bounds, refusal of tampered stored strings (wrong type or
 * version, parameters out of bounds, non-canonical numbers and base64) before
 * any argon2 work, the accepted bounds, rehash detection, and the dummy
 * verify's result and time. */
#include "authn/password.h"

#include <argon2.h>

#include "tap.h"

#include <time.h>

#define PREFIX "$argon2id$v=19$m=19456,t=2,p=1$"

/* phc-winner-argon2 test.c: argon2id, t=2, m=2^16, p=1, "password", "somesalt". */
#define REF_HASH                                                                                   \
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

static void test_hash_verify(void)
{
    char h[MG_PASSWORD_HASH_BUF], h2[MG_PASSWORD_HASH_BUF];
    TAP_IS_INT(mg_password_hash("correct horse battery staple", h, sizeof h), MG_OK, "hash");
    TAP_OK(strncmp(h, PREFIX, strlen(PREFIX)) == 0, "argon2id v1.3 with OWASP parameters: %s", h);
    /* 16-byte salt = 22 chars, 32-byte hash = 43 chars. */
    TAP_IS_INT(strlen(h), strlen(PREFIX) + 22 + 1 + 43, "encoded length");
    TAP_IS_INT(mg_password_verify(h, "correct horse battery staple"), MG_OK, "verify");
    TAP_IS_INT(mg_password_verify(h, "correct horse battery stapl"), MG_EDENIED, "prefix denied");
    TAP_IS_INT(mg_password_verify(h, "Correct horse battery staple"), MG_EDENIED, "case denied");
    TAP_IS_INT(mg_password_verify(h, "correct horse battery staple "), MG_EDENIED,
               "extra byte denied");
    TAP_OK(!mg_password_needs_rehash(h), "fresh hash needs no rehash");
    TAP_IS_INT(mg_password_hash("correct horse battery staple", h2, sizeof h2), MG_OK,
               "hash again");
    TAP_OK(strcmp(h, h2) != 0, "fresh salt each time");
    TAP_IS_INT(mg_password_verify(h2, "correct horse battery staple"), MG_OK, "second verifies");

    TAP_IS_INT(mg_password_verify(REF_HASH, "password"), MG_OK, "reference vector verifies");
    TAP_IS_INT(mg_password_verify(REF_HASH, "passwore"), MG_EDENIED, "reference vector mismatch");
    TAP_OK(mg_password_needs_rehash(REF_HASH), "other parameters need a rehash");

    TAP_IS_INT(mg_password_hash("\xc3\xa9t\xc3\xa9", h, sizeof h), MG_OK, "UTF-8 password");
    TAP_IS_INT(mg_password_verify(h, "\xc3\xa9t\xc3\xa9"), MG_OK, "UTF-8 verifies");
    TAP_IS_INT(mg_password_verify(h, "e\xcc\x81t\xc3\xa9"), MG_EDENIED, "bytes, not normalised");
}

static void test_lengths(void)
{
    char h[MG_PASSWORD_HASH_BUF];
    char *pw = mg_xmalloc(MG_PASSWORD_MAX_LEN + 2);
    memset(pw, 'p', MG_PASSWORD_MAX_LEN + 1);
    pw[MG_PASSWORD_MAX_LEN] = '\0';
    TAP_IS_INT(mg_password_hash(pw, h, sizeof h), MG_OK, "1024-byte password");
    TAP_IS_INT(mg_password_verify(h, pw), MG_OK, "1024-byte password verifies");
    pw[MG_PASSWORD_MAX_LEN] = 'p';
    pw[MG_PASSWORD_MAX_LEN + 1] = '\0';
    TAP_IS_INT(mg_password_verify(h, pw), MG_EDENIED, "1025-byte password denied");
    TAP_IS_INT(mg_password_hash(pw, h, sizeof h), MG_ELIMIT, "1025-byte password refused");
    TAP_IS_STR(h, "", "out empty on failure");
    free(pw);

    TAP_IS_INT(mg_password_hash("x", h, sizeof h), MG_OK, "1-byte password");
    TAP_IS_INT(mg_password_verify(h, "x"), MG_OK, "1-byte verifies");
    TAP_IS_INT(mg_password_verify(h, ""), MG_EDENIED, "empty password denied");
    TAP_IS_INT(mg_password_verify(h, NULL), MG_EDENIED, "NULL password denied");
    TAP_IS_INT(mg_password_hash("", h, sizeof h), MG_EINVAL, "empty password refused");
    TAP_IS_INT(mg_password_hash(NULL, h, sizeof h), MG_EINVAL, "NULL password refused");

    size_t need = strlen(PREFIX) + 22 + 1 + 43 + 1;
    TAP_IS_INT(mg_password_hash("x", h, need), MG_OK, "exact cap");
    TAP_IS_INT(mg_password_hash("x", h, need - 1), MG_ELIMIT, "cap - 1");
    TAP_IS_STR(h, "", "out empty when cap too small");
}

static void test_tampered(void)
{
    static const char *const bad[] = {
        "",
        "password",
        "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2d$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=16$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$ARGON2ID$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        /* memory over 1 GiB, and absurd */
        "$argon2id$v=19$m=1048577,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=4294967295,t=2,p=1$c29tZXNhbHQ$"
        "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=99999999999999999999999,t=2,p=1$c29tZXNhbHQ$"
        "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        /* passes */
        "$argon2id$v=19$m=19456,t=11,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456,t=4294967295,p=1$c29tZXNhbHQ$"
        "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        /* lanes */
        "$argon2id$v=19$m=19456,t=2,p=0$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456,t=2,p=17$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        /* memory below 8 blocks per lane */
        "$argon2id$v=19$m=7,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=15,t=2,p=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        /* non-canonical numbers and order */
        "$argon2id$v=19$m=019456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=+19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$t=2,m=19456,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456, t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456,t=2,p=1,keyid=x$c29tZXNhbHQ$"
        "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        /* salt and hash: short, long, padded, non-canonical, wrong alphabet, missing */
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXN$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHR$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPd",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPP",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRP-c",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ",
        "$argon2id$v=19$m=19456,t=2,p=1$$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc$",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n",
        " $argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
    };
    uint64_t t0 = mg_now_ms();
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        TAP_IS_INT(mg_password_verify(bad[i], "password"), MG_EINVAL, "refuses \"%s\"", bad[i]);
        TAP_OK(mg_password_needs_rehash(bad[i]), "needs rehash: \"%s\"", bad[i]);
    }
    /* Refused by the parser, before any argon2 work (19 MiB ~ tens of ms). */
    TAP_OK(mg_now_ms() - t0 < 200, "refusals do no hashing (%llu ms)",
           (unsigned long long)(mg_now_ms() - t0));
    TAP_IS_INT(mg_password_verify(NULL, "password"), MG_EINVAL, "NULL encoded");

    /* Over MG_PASSWORD_ENCODED_MAX: a 64-byte salt and hash fit, padding does not. */
    char big[MG_PASSWORD_ENCODED_MAX + 64];
    snprintf(big, sizeof big, "%s%0*d$%0*d", PREFIX, 200, 0, 43, 0);
    TAP_IS_INT(mg_password_verify(big, "password"), MG_EINVAL, "over-long encoded refused");
}

/* Hashes made by libargon2 itself at the edges of what is accepted. */
static void test_bounds_accepted(void)
{
    static const struct {
        uint32_t t, m, p, salt, hash;
    } edge[] = {
        {10, 8, 1, 16, 32},   /* most passes */
        {1, 8, 1, 16, 32},    /* fewest passes, least memory */
        {1, 128, 16, 16, 32}, /* most lanes */
        {1, 8, 1, 8, 16},     /* shortest salt and hash */
        {1, 8, 1, 64, 64},    /* longest salt and hash */
    };
    uint8_t salt[64];
    memset(salt, 0x5a, sizeof salt);
    for (size_t i = 0; i < MG_ARRAY_LEN(edge); i++) {
        char enc[MG_PASSWORD_ENCODED_MAX + 1];
        int a = argon2id_hash_encoded(edge[i].t, edge[i].m, edge[i].p, "pw", 2, salt, edge[i].salt,
                                      edge[i].hash, enc, sizeof enc);
        TAP_IS_INT(a, ARGON2_OK, "libargon2 hash t=%u m=%u p=%u", edge[i].t, edge[i].m, edge[i].p);
        TAP_IS_INT(mg_password_verify(enc, "pw"), MG_OK, "accepted: %s", enc);
        TAP_IS_INT(mg_password_verify(enc, "pX"), MG_EDENIED, "mismatch: %s", enc);
        TAP_OK(mg_password_needs_rehash(enc), "needs rehash: %s", enc);
    }
    /* A salt or hash one byte outside the bounds (libargon2 would not make
     * them). */
    TAP_IS_INT(
        mg_password_verify("$argon2id$v=19$m=8,t=1,p=1$WlpaWlpaWg$AQEBAQEBAQEBAQEBAQEBAQ", "pw"),
        MG_EINVAL, "7-byte salt refused");
    TAP_IS_INT(
        mg_password_verify("$argon2id$v=19$m=8,t=1,p=1$WlpaWlpaWlo$AQEBAQEBAQEBAQEBAQEB", "pw"),
        MG_EINVAL, "15-byte hash refused");
    TAP_IS_INT(mg_password_verify("$argon2id$v=19$m=8,t=1,p=1$WlpaWlpaWlo$"
                                  "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
                                  "AQEBAQEBAQEBAQEBAQEBAQE",
                                  "pw"),
               MG_EINVAL, "65-byte hash refused");
    TAP_IS_INT(
        mg_password_verify("$argon2id$v=19$m=8,t=1,p=1$WlpaWlpaWlo$AQEBAQEBAQEBAQEBAQEBAQ", "pw"),
        MG_EDENIED, "8-byte salt and 16-byte hash get to argon2");
}

/* CPU time of this thread (argon2 runs here, p = 1): what the work costs,
 * unlike wall time, which other load on the machine stretches at random. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t time_ns(int (*f)(const char *, const char *), const char *a, const char *b)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 3; i++) {
        uint64_t t = thread_cpu_ns();
        f(a, b);
        t = thread_cpu_ns() - t;
        best = MG_MIN(best, t);
    }
    return best;
}

static int dummy2(const char *unused, const char *pw)
{
    return mg_password_dummy_verify(pw);
}

static void test_dummy(void)
{
    char h[MG_PASSWORD_HASH_BUF];
    TAP_IS_INT(mg_password_dummy_verify("anything"), MG_EDENIED, "dummy denies");
    TAP_IS_INT(mg_password_dummy_verify(""), MG_EDENIED, "dummy denies empty");
    TAP_IS_INT(mg_password_dummy_verify(NULL), MG_EDENIED, "dummy denies NULL");
    TAP_IS_INT(mg_password_hash("timing", h, sizeof h), MG_OK, "hash for timing");
    uint64_t real = time_ns(mg_password_verify, h, "wrong");
    uint64_t dummy = time_ns(dummy2, NULL, "wrong");
    double ratio = (double)dummy / (double)real;
    TAP_OK(ratio > 0.5 && ratio < 2.0, "dummy takes as long as a verify (%.2f ms vs %.2f ms)",
           dummy / 1e6, real / 1e6);
}

int main(void)
{
    test_hash_verify();
    test_lengths();
    test_tampered();
    test_bounds_accepted();
    test_dummy();
    return tap_done();
}

/* Unit tests for src/authn/seal: known answers computed independently
 * (Python's hmac and cryptography AESGCM) for the key derivation, the MAC and
 * a sealed blob, so the wire form in seal.h is what the code does; round
 * trips at every size bound; refusal of every bit flip, every truncation,
 * another purpose, another key, expiry at the exact second, garbage and
 * over-long input; argument checks; MAC verification. */
#include "authn/seal.h"

#include "authn/token.h"

#include "tap.h"

static const uint8_t secret[MG_SEAL_KEY_LEN] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                                11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                                22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* python3: HKDF-SHA256(secret, salt=zeros, info), AESGCM(enc).encrypt(
 * bytes(range(100,112)), (1700000000).to_bytes(8,'big') + b'{"sub":"alice"}',
 * b'\x01session'), HMAC(mac, b"csrf\0cookie-value"). */
static const char enc_hex[] = "7134eca1aebaee20766e65a0622e8a88298af46911ba0b76432c0e4694392447";
static const char mac_hex[] = "d7a7a3b7b625998f927f7e0f1f80de44d123bc9cc6e3ba8a0e10e18bfacc6dae";
static const char kat_blob[] =
    "AWRlZmdoaWprbG1ub2TXXhgklRPgvgipw-rpuK2ebI0mCBKkKwscJHrzOeYfMrRQSLzjsA";
static const char kat_mac[] = "BF8EKwfOkHh5lt3J1yFKeIIXqhCFeR90RrrAWKkywUo";

#define T0 1700000000

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int open_s(const struct mg_seal_key *k, const char *purpose, int64_t now, const char *s,
                  size_t len)
{
    uint8_t out[MG_SEAL_MAX_DATA];
    size_t n = 0;
    return mg_seal_open(k, purpose, now, s, len, out, sizeof out, &n, NULL, NULL);
}

static void test_known_answers(const struct mg_seal_key *k)
{
    char h[65];
    hex(k->enc, 32, h);
    TAP_IS_STR(h, enc_hex, "HKDF cipher key");
    hex(k->mac, 32, h);
    TAP_IS_STR(h, mac_hex, "HKDF MAC key");

    uint8_t out[MG_SEAL_MAX_DATA];
    size_t n = 0;
    int64_t exp = 0;
    const char *why = "unset";
    TAP_IS_INT(mg_seal_open(k, "session", T0 - 1, kat_blob, strlen(kat_blob), out, sizeof out, &n,
                            &exp, &why),
               MG_OK, "independently sealed blob opens");
    TAP_OK(n == 15 && memcmp(out, "{\"sub\":\"alice\"}", 15) == 0, "its data");
    TAP_IS_INT(exp, T0, "its expiry");
    TAP_OK(why == NULL, "no reason on success");
    TAP_IS_INT(
        mg_seal_open(k, "session", T0, kat_blob, strlen(kat_blob), out, sizeof out, &n, &exp, &why),
        MG_EDENIED, "expired at exactly its expiry");
    TAP_IS_STR(why, "expired", "expired reason");
    TAP_IS_INT(mg_seal_open(k, "authreq", T0 - 1, kat_blob, strlen(kat_blob), out, sizeof out, &n,
                            NULL, &why),
               MG_EDENIED, "another purpose refused");
    TAP_IS_STR(why, "does not authenticate", "another purpose reason");

    char mac[MG_SEAL_MAC_BUF];
    TAP_IS_INT(mg_seal_mac(k, "csrf", "cookie-value", 12, mac), MG_OK, "mac");
    TAP_IS_STR(mac, kat_mac, "independently computed MAC");
}

static void test_round_trip(const struct mg_seal_key *k)
{
    static uint8_t data[MG_SEAL_MAX_DATA + 1];
    static char s[MG_SEAL_BUF + 8];
    uint8_t out[MG_SEAL_MAX_DATA];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    const size_t sizes[] = {0, 1, 2, 3, 100, MG_SEAL_MAX_DATA - 1, MG_SEAL_MAX_DATA};
    for (size_t i = 0; i < MG_ARRAY_LEN(sizes); i++) {
        size_t len = sizes[i], n = 99;
        int64_t exp = 0;
        TAP_IS_INT(mg_seal_seal(k, "session", T0 + 60, data, len, s, sizeof s), MG_OK,
                   "seal %zu bytes", len);
        TAP_IS_INT(strlen(s), MG_SEAL_LEN(len), "sealed length for %zu bytes", len);
        TAP_OK(mg_authn_b64url_alphabet(s, strlen(s)), "base64url for %zu bytes", len);
        TAP_IS_INT(mg_seal_open(k, "session", T0, s, strlen(s), out, sizeof out, &n, &exp, NULL),
                   MG_OK, "open %zu bytes", len);
        TAP_OK(n == len && (len == 0 || memcmp(out, data, len) == 0), "data of %zu bytes", len);
        TAP_IS_INT(exp, T0 + 60, "expiry of %zu bytes", len);
    }
    TAP_OK(MG_SEAL_MAX_LEN + strlen("_mcpgate_session=") < 4096, "largest blob fits a cookie");

    /* The exact buffer is enough; one byte less is not. */
    TAP_IS_INT(mg_seal_seal(k, "p", T0, data, 10, s, MG_SEAL_LEN(10) + 1), MG_OK, "exact cap");
    TAP_IS_INT(mg_seal_seal(k, "p", T0, data, 10, s, MG_SEAL_LEN(10)), MG_ELIMIT, "cap - 1");
    TAP_IS_STR(s, "", "out empty on failure");
    TAP_IS_INT(mg_seal_seal(k, "p", T0, data, MG_SEAL_MAX_DATA + 1, s, sizeof s), MG_ELIMIT,
               "data over MG_SEAL_MAX_DATA");

    /* Random nonces: the same input seals differently every time. */
    char a[MG_SEAL_BUF], b[MG_SEAL_BUF];
    mg_seal_seal(k, "session", T0, "x", 1, a, sizeof a);
    mg_seal_seal(k, "session", T0, "x", 1, b, sizeof b);
    TAP_OK(strcmp(a, b) != 0, "two seals of the same data differ");

    /* Far expiries survive the 8-byte encoding. */
    int64_t exp = 0;
    size_t n = 0;
    TAP_IS_INT(mg_seal_seal(k, "p", INT64_MAX, "x", 1, s, sizeof s), MG_OK, "seal INT64_MAX");
    TAP_IS_INT(mg_seal_open(k, "p", T0, s, strlen(s), out, sizeof out, &n, &exp, NULL), MG_OK,
               "open INT64_MAX");
    TAP_OK(exp == INT64_MAX, "INT64_MAX expiry kept");

    /* The data must fit the caller's buffer. */
    const char *why = NULL;
    mg_seal_seal(k, "p", T0 + 1, data, 20, s, sizeof s);
    TAP_IS_INT(mg_seal_open(k, "p", T0, s, strlen(s), out, 19, &n, NULL, &why), MG_ELIMIT,
               "open into a small buffer");
    TAP_IS_STR(why, "data does not fit", "small buffer reason");
    TAP_IS_INT(mg_seal_open(k, "p", T0, s, strlen(s), out, 20, &n, NULL, NULL), MG_OK,
               "open into an exact buffer");
}

static void test_refusals(const struct mg_seal_key *k)
{
    char s[MG_SEAL_BUF];
    uint8_t raw[MG_SEAL_OVERHEAD + 64];
    size_t raw_len = 0;
    const char *why = NULL;
    TAP_IS_INT(mg_seal_seal(k, "authreq", T0 + 600, "client=abc&state=xyz", 20, s, sizeof s), MG_OK,
               "seal authreq");
    size_t len = strlen(s);
    TAP_IS_INT(open_s(k, "authreq", T0, s, len), MG_OK, "opens as authreq");
    TAP_IS_INT(open_s(k, "session", T0, s, len), MG_EDENIED, "not as session");
    TAP_IS_INT(open_s(k, "authre", T0, s, len), MG_EDENIED, "not as a prefix of the purpose");
    TAP_IS_INT(open_s(k, "authreqx", T0, s, len), MG_EDENIED, "not as a longer purpose");
    TAP_IS_INT(open_s(k, "authreq", T0 + 599, s, len), MG_OK, "opens one second before expiry");
    TAP_IS_INT(open_s(k, "authreq", T0 + 600, s, len), MG_EDENIED, "expired at expiry");
    TAP_IS_INT(open_s(k, "authreq", T0 + 601, s, len), MG_EDENIED, "expired after expiry");

    uint8_t other[MG_SEAL_KEY_LEN];
    memcpy(other, secret, sizeof other);
    other[31] ^= 1;
    struct mg_seal_key k2;
    TAP_IS_INT(mg_seal_key_init(&k2, other), MG_OK, "second key");
    TAP_IS_INT(open_s(&k2, "authreq", T0, s, len), MG_EDENIED, "another key refused");
    mg_seal_key_fini(&k2);
    uint8_t zero[sizeof k2] = {0};
    TAP_OK(memcmp(&k2, zero, sizeof k2) == 0, "key_fini wipes");

    /* Every bit of the raw blob flipped: never opens. The version byte gives
     * EINVAL, everything else fails the tag. */
    TAP_IS_INT(mg_authn_b64url_decode(s, len, raw, sizeof raw, &raw_len), MG_OK, "decode blob");
    int opened = 0, wrong_status = 0;
    for (size_t i = 0; i < raw_len * 8; i++) {
        char t[MG_SEAL_BUF];
        raw[i / 8] ^= (uint8_t)(1u << (i % 8));
        mg_authn_b64url_encode(raw, raw_len, t, sizeof t);
        int rc = open_s(k, "authreq", T0, t, strlen(t));
        opened += rc == MG_OK;
        wrong_status += rc != (i < 8 ? MG_EINVAL : MG_EDENIED);
        raw[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    TAP_IS_INT(opened, 0, "no bit flip opens (%zu bits)", raw_len * 8);
    TAP_IS_INT(wrong_status, 0, "bit flips give EINVAL (version) or EDENIED");

    /* Every truncation, and every appended character. */
    int bad = 0;
    for (size_t l = 0; l < len; l++) {
        int rc = open_s(k, "authreq", T0, s, l);
        bad += rc != MG_EINVAL && rc != MG_EDENIED;
    }
    TAP_IS_INT(bad, 0, "every truncation refused with EINVAL or EDENIED");
    char longer[MG_SEAL_BUF + 2];
    snprintf(longer, sizeof longer, "%sA", s);
    TAP_OK(open_s(k, "authreq", T0, longer, len + 1) < 0, "one more character refused");
    snprintf(longer, sizeof longer, "%sAA", s);
    TAP_IS_INT(open_s(k, "authreq", T0, longer, len + 2), MG_EDENIED, "one more byte refused");

    /* Garbage. */
    static const char *const garbage[] = {
        "",         "A",    "AA",
        "!!!!",     "AQ==", "AQ",
        "Zm9vYmFy", "a b",  "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="};
    for (size_t i = 0; i < MG_ARRAY_LEN(garbage); i++)
        TAP_IS_INT(open_s(k, "authreq", T0, garbage[i], strlen(garbage[i])), MG_EINVAL,
                   "garbage \"%s\"", garbage[i]);
    /* The right length of zeros: well-formed, unknown version. */
    memset(raw, 0, sizeof raw);
    char t[MG_SEAL_BUF];
    mg_authn_b64url_encode(raw, MG_SEAL_OVERHEAD, t, sizeof t);
    TAP_IS_INT(open_s(k, "authreq", T0, t, strlen(t)), MG_EINVAL, "version 0 refused");
    raw[0] = MG_SEAL_VERSION;
    mg_authn_b64url_encode(raw, MG_SEAL_OVERHEAD, t, sizeof t);
    TAP_IS_INT(open_s(k, "authreq", T0, t, strlen(t)), MG_EDENIED, "forged zero blob refused");
    raw[0] = 2;
    mg_authn_b64url_encode(raw, MG_SEAL_OVERHEAD, t, sizeof t);
    uint8_t out[8];
    size_t n = 0;
    TAP_IS_INT(mg_seal_open(k, "authreq", T0, t, strlen(t), out, sizeof out, &n, NULL, &why),
               MG_EINVAL, "version 2 refused");
    TAP_IS_STR(why, "unknown version", "version reason");

    /* Over-long input is refused before decoding. */
    char *big = mg_xmalloc(MG_SEAL_MAX_LEN + 2);
    memset(big, 'A', MG_SEAL_MAX_LEN + 1);
    big[MG_SEAL_MAX_LEN + 1] = '\0';
    TAP_IS_INT(open_s(k, "authreq", T0, big, MG_SEAL_MAX_LEN + 1), MG_ELIMIT, "over-long refused");
    TAP_IS_INT(open_s(k, "authreq", T0, big, MG_SEAL_MAX_LEN), MG_EINVAL,
               "longest length gets past the bound");
    free(big);
}

static void test_arguments(const struct mg_seal_key *k)
{
    char s[MG_SEAL_BUF], p65[66];
    memset(p65, 'p', 65);
    p65[65] = '\0';
    TAP_IS_INT(mg_seal_seal(k, NULL, T0, "x", 1, s, sizeof s), MG_EINVAL, "NULL purpose");
    TAP_IS_INT(mg_seal_seal(k, "", T0, "x", 1, s, sizeof s), MG_EINVAL, "empty purpose");
    TAP_IS_INT(mg_seal_seal(k, p65, T0, "x", 1, s, sizeof s), MG_EINVAL, "65-byte purpose");
    TAP_IS_INT(mg_seal_seal(k, p65 + 1, T0, "x", 1, s, sizeof s), MG_OK, "64-byte purpose");
    TAP_IS_INT(open_s(k, p65 + 1, T0 - 1, s, strlen(s)), MG_OK, "64-byte purpose opens");
    TAP_IS_INT(open_s(k, p65, T0 - 1, s, strlen(s)), MG_EINVAL, "open with 65-byte purpose");
    TAP_IS_INT(open_s(k, "", T0 - 1, s, strlen(s)), MG_EINVAL, "open with empty purpose");
    TAP_IS_INT(mg_seal_seal(k, "p", 0, "x", 1, s, sizeof s), MG_EINVAL, "expiry 0");
    TAP_IS_INT(mg_seal_seal(k, "p", -5, "x", 1, s, sizeof s), MG_EINVAL, "negative expiry");
    char one[1] = {'z'};
    TAP_IS_INT(mg_seal_seal(k, "p", T0, "x", 1, one, 0), MG_ELIMIT, "cap 0");
    TAP_OK(one[0] == 'z', "cap 0 writes nothing");
}

static void test_mac(const struct mg_seal_key *k)
{
    char m[MG_SEAL_MAC_BUF], m2[MG_SEAL_MAC_BUF];
    TAP_IS_INT(mg_seal_mac(k, "csrf", "v", 1, m), MG_OK, "mac");
    TAP_IS_INT(strlen(m), MG_SEAL_MAC_LEN, "mac length");
    TAP_IS_INT(mg_seal_mac_verify(k, "csrf", "v", 1, m, strlen(m)), MG_OK, "mac verifies");
    TAP_IS_INT(mg_seal_mac_verify(k, "csrf", "w", 1, m, strlen(m)), MG_EDENIED, "other data");
    TAP_IS_INT(mg_seal_mac_verify(k, "csrf2", "v", 1, m, strlen(m)), MG_EDENIED, "other purpose");
    TAP_IS_INT(mg_seal_mac_verify(k, "csrf", "v", 1, m, strlen(m) - 1), MG_EDENIED, "short mac");
    TAP_IS_INT(mg_seal_mac_verify(k, "csrf", "v", 1, NULL, 0), MG_EDENIED, "NULL mac");
    TAP_IS_INT(mg_seal_mac_verify(k, "csrf", "v", 1, "", 0), MG_EDENIED, "empty mac");
    char longer[MG_SEAL_MAC_BUF + 1];
    snprintf(longer, sizeof longer, "%sA", m);
    TAP_IS_INT(mg_seal_mac_verify(k, "csrf", "v", 1, longer, strlen(longer)), MG_EDENIED,
               "longer mac");
    int accepted = 0;
    for (size_t i = 0; i < MG_SEAL_MAC_LEN; i++) {
        char c = m[i];
        m[i] = c == 'A' ? 'B' : 'A';
        accepted += mg_seal_mac_verify(k, "csrf", "v", 1, m, MG_SEAL_MAC_LEN) == MG_OK;
        m[i] = c;
    }
    TAP_IS_INT(accepted, 0, "no altered character verifies");
    /* The purpose/data boundary is unambiguous. */
    mg_seal_mac(k, "ab", "c", 1, m);
    mg_seal_mac(k, "a", "bc", 2, m2);
    TAP_OK(strcmp(m, m2) != 0, "(ab, c) and (a, bc) differ");
    TAP_IS_INT(mg_seal_mac(k, "csrf", "", 0, m), MG_OK, "mac of empty data");
    TAP_IS_INT(mg_seal_mac(k, "", "v", 1, m), MG_EINVAL, "mac with empty purpose");
    TAP_IS_STR(m, "", "mac out empty on failure");
    TAP_IS_INT(mg_seal_mac_verify(k, NULL, "v", 1, m, 0), MG_EINVAL, "verify with NULL purpose");
    /* Sealing and MAC keys differ. */
    TAP_OK(memcmp(k->enc, k->mac, 32) != 0, "cipher and MAC keys differ");
}

int main(void)
{
    struct mg_seal_key k;
    TAP_IS_INT(mg_seal_key_init(&k, secret), MG_OK, "key init");
    test_known_answers(&k);
    test_round_trip(&k);
    test_refusals(&k);
    test_arguments(&k);
    test_mac(&k);
    mg_seal_key_fini(&k);
    return tap_done();
}

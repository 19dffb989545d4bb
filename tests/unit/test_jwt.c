/* Unit tests for src/authn/jwt: keys are generated here (RSA-2048, P-256,
 * Ed25519), tokens signed by a small test-only signer, and the JWKS built
 * from the keys' public parameters. Covers each algorithm, tampering, alg
 * confusion, key selection, every claim check, and malformed input. */
#include "authn/jwt.h"

#include "authn/token.h"
#include "tap.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ISS "https://idp.example"
#define AUD "mcpgate"
#define NOW 1700000000

static EVP_PKEY *rsa_key, *ec_key, *ed_key, *rsa_key2;

static char *b64(const void *p, size_t n)
{
    size_t cap = mg_authn_b64url_len(n) + 1;
    char *s = mg_xmalloc(cap);
    MG_ASSERT(mg_authn_b64url_encode(p, n, s, cap) == MG_OK);
    return s;
}

static char *b64s(const char *s)
{
    return b64(s, strlen(s));
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *s = mg_xmalloc(n);
    snprintf(s, n, "%s.%s%s%s", a, b, c ? "." : "", c ? c : "");
    return s;
}

/* Test-only signer: JWS compact serialization with EVP_DigestSign. For ES256
 * the DER signature is converted to JOSE r||s. */
static char *sign_raw(EVP_PKEY *key, const char *header, const char *payload)
{
    char *h = b64s(header), *p = b64s(payload);
    char *input = join3(h, p, NULL); /* the JWS signing input */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const char *mdname = EVP_PKEY_is_a(key, "ED25519") ? NULL : "SHA256";
    size_t sig_len = 0;
    MG_ASSERT(EVP_DigestSignInit_ex(md, NULL, mdname, NULL, NULL, key, NULL) == 1);
    MG_ASSERT(EVP_DigestSign(md, NULL, &sig_len, (unsigned char *)input, strlen(input)) == 1);
    unsigned char *sig = mg_xmalloc(sig_len);
    MG_ASSERT(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)input, strlen(input)) == 1);
    EVP_MD_CTX_free(md);
    char *s64;
    if (EVP_PKEY_is_a(key, "EC")) {
        const unsigned char *q = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sig_len);
        const BIGNUM *r, *s;
        uint8_t raw[64];
        MG_ASSERT(es != NULL);
        ECDSA_SIG_get0(es, &r, &s);
        MG_ASSERT(BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32);
        ECDSA_SIG_free(es);
        s64 = b64(raw, 64);
    } else {
        s64 = b64(sig, sig_len);
    }
    char *tok = join3(h, p, s64);
    free(h);
    free(p);
    free(input);
    free(sig);
    free(s64);
    return tok;
}

static char *sign(EVP_PKEY *key, const char *alg, const char *kid, const char *payload)
{
    char header[256];
    if (kid)
        snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg,
                 kid);
    else
        snprintf(header, sizeof header, "{\"alg\":\"%s\"}", alg);
    return sign_raw(key, header, payload);
}

static char *bn_b64(EVP_PKEY *k, const char *name)
{
    BIGNUM *bn = NULL;
    MG_ASSERT(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
    uint8_t buf[1024];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64(buf, (size_t)n);
}

static json_t *rsa_jwk(EVP_PKEY *k, const char *kid)
{
    char *n = bn_b64(k, OSSL_PKEY_PARAM_RSA_N), *e = bn_b64(k, OSSL_PKEY_PARAM_RSA_E);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "kid", kid, "use", "sig", "n",
                          n, "e", e);
    free(n);
    free(e);
    return j;
}

static json_t *ec_jwk(EVP_PKEY *k, const char *kid)
{
    uint8_t pub[65];
    size_t n = 0;
    MG_ASSERT(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &n) ==
              1);
    MG_ASSERT(n == 65 && pub[0] == 4);
    char *x = b64(pub + 1, 32), *y = b64(pub + 33, 32);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid", kid, "crv", "P-256", "x",
                          x, "y", y);
    free(x);
    free(y);
    return j;
}

static json_t *ed_jwk(EVP_PKEY *k, const char *kid)
{
    uint8_t pub[32];
    size_t n = sizeof pub;
    MG_ASSERT(EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == 32);
    char *x = b64(pub, 32);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "kid", kid, "crv", "Ed25519",
                          "x", x, "alg", "EdDSA");
    free(x);
    return j;
}

static struct mg_jwks *parse_json(json_t *doc, int *rc)
{
    struct mg_jwks *set = NULL;
    char *text = json_dumps(doc, JSON_COMPACT);
    *rc = mg_jwks_parse(text, strlen(text), &set);
    free(text);
    json_decref(doc);
    return set;
}

static struct mg_jwks *parse_str(const char *text, int *rc)
{
    struct mg_jwks *set = NULL;
    *rc = mg_jwks_parse(text, strlen(text), &set);
    return set;
}

static const struct mg_jwt_expect expect = {ISS, AUD, NULL, NOW, 60};

static void check(const char *tok, const struct mg_jwks *set, const struct mg_jwt_expect *e,
                  int want_rc, const char *want_why, const char *name)
{
    json_t *claims = (json_t *)1;
    const char *why = "unset";
    int rc = mg_jwt_verify(tok, set, e, &claims, &why);
    TAP_IS_INT(rc, want_rc, "%s: status", name);
    TAP_IS_STR(why, want_why, "%s: reason", name);
    if (want_rc == MG_OK) {
        TAP_OK(claims != NULL && json_is_string(json_object_get(claims, "sub")),
               "%s: claims returned", name);
        json_decref(claims);
    } else {
        TAP_OK(claims == NULL, "%s: no claims", name);
    }
}

static char *claims_json(const char *extra)
{
    char *s = mg_xmalloc(512);
    snprintf(s, 512, "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"alice\",\"exp\":%d%s}", ISS, AUD,
             NOW + 300, extra ? extra : "");
    return s;
}

static void test_valid(const struct mg_jwks *set)
{
    char *c = claims_json(",\"iat\":1699999990,\"nbf\":1699999990");
    char *t;
    t = sign(rsa_key, "RS256", "rsa1", c);
    check(t, set, &expect, MG_OK, NULL, "RS256 valid");
    free(t);
    t = sign(ec_key, "ES256", "ec1", c);
    check(t, set, &expect, MG_OK, NULL, "ES256 valid");
    free(t);
    t = sign(ed_key, "EdDSA", "ed1", c);
    check(t, set, &expect, MG_OK, NULL, "EdDSA valid");
    free(t);
    /* No kid: every key of the alg's type is tried (rsa2 is listed second). */
    t = sign(rsa_key2, "RS256", NULL, c);
    check(t, set, &expect, MG_OK, NULL, "RS256 without kid, second RSA key");
    free(t);
    t = sign(ec_key, "ES256", NULL, c);
    check(t, set, &expect, MG_OK, NULL, "ES256 without kid");
    free(t);
    t = sign(ed_key, "EdDSA", NULL, c);
    check(t, set, &expect, MG_OK, NULL, "EdDSA without kid");
    free(t);
    /* claims_out and why may be NULL. */
    t = sign(ec_key, "ES256", "ec1", c);
    TAP_IS_INT(mg_jwt_verify(t, set, &expect, NULL, NULL), MG_OK, "NULL out-params");
    free(t);
    free(c);
}

static void test_tamper(const struct mg_jwks *set)
{
    char *c = claims_json(NULL);
    EVP_PKEY *keys[] = {rsa_key, ec_key, ed_key};
    const char *alg[] = {"RS256", "ES256", "EdDSA"}, *kid[] = {"rsa1", "ec1", "ed1"};
    for (size_t i = 0; i < 3; i++) {
        char *t = sign(keys[i], alg[i], kid[i], c);
        char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
        char name[64];
        /* Payload swapped for another subject, signature kept. */
        char *other = b64s("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"mallory\","
                           "\"exp\":1700000300}");
        char *h = mg_xstrndup(t, (size_t)(d1 - t));
        char *t2 = join3(h, other, d2 + 1);
        snprintf(name, sizeof name, "%s tampered payload", alg[i]);
        check(t2, set, &expect, MG_EDENIED, "bad signature", name);
        free(t2);
        free(other);
        /* Header changed (extra member), signature kept. */
        char hdr[128];
        snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\",\"x\":1}", alg[i], kid[i]);
        char *h2 = b64s(hdr), *p = mg_xstrndup(d1 + 1, (size_t)(d2 - d1 - 1));
        t2 = join3(h2, p, d2 + 1);
        snprintf(name, sizeof name, "%s tampered header", alg[i]);
        check(t2, set, &expect, MG_EDENIED, "bad signature", name);
        free(t2);
        free(h2);
        free(p);
        free(h);
        /* One signature character changed (first char: always canonical). */
        d2[1] = d2[1] == 'A' ? 'B' : 'A';
        snprintf(name, sizeof name, "%s tampered signature", alg[i]);
        check(t, set, &expect, MG_EDENIED, "bad signature", name);
        /* A well-formed signature of the wrong length (3 bytes). */
        memcpy(d2 + 1, "AAAA", 5);
        snprintf(name, sizeof name, "%s short signature", alg[i]);
        check(t, set, &expect, MG_EDENIED, "bad signature", name);
        free(t);
    }
    free(c);
}

static void test_alg_confusion(const struct mg_jwks *set)
{
    char *c = claims_json(NULL), *t;
    /* alg none, with and without a signature segment. */
    char *h = b64s("{\"alg\":\"none\"}"), *p = b64s(c);
    t = join3(h, p, "");
    check(t, set, &expect, MG_EINVAL, "not a three-part JWS", "alg none, empty signature");
    free(t);
    t = join3(h, p, "AAAA");
    check(t, set, &expect, MG_EDENIED, "unsupported alg", "alg none with a signature");
    free(t);
    free(h);
    h = b64s("{\"alg\":\"None\"}");
    t = join3(h, p, "AAAA");
    check(t, set, &expect, MG_EDENIED, "unsupported alg", "alg None");
    free(t);
    free(h);
    /* HS256 keyed with the RSA public modulus (the classic confusion). */
    h = b64s("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}");
    char *input = join3(h, p, NULL);
    char *n = bn_b64(rsa_key, OSSL_PKEY_PARAM_RSA_N);
    uint8_t mac[32];
    unsigned int mac_len = 0;
    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, n, strlen(n), (unsigned char *)input,
              strlen(input), mac, sizeof mac, NULL);
    mac_len = 32;
    char *m = b64(mac, mac_len);
    t = join3(h, p, m);
    check(t, set, &expect, MG_EDENIED, "unsupported alg", "HS256 with RSA modulus as secret");
    free(t);
    free(m);
    free(n);
    free(input);
    free(h);
    free(p);
    static const char *const others[] = {"RS384", "RS512", "PS256", "ES384",  "ES512",
                                         "HS384", "HS512", "rs256", "RS256 ", "Ed25519"};
    for (size_t i = 0; i < MG_ARRAY_LEN(others); i++) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\"}", others[i]);
        t = sign_raw(rsa_key, hdr, c);
        check(t, set, &expect, MG_EDENIED, "unsupported alg", others[i]);
        free(t);
    }
    t = sign_raw(rsa_key, "{\"kid\":\"rsa1\"}", c);
    check(t, set, &expect, MG_EDENIED, "missing alg", "missing alg");
    free(t);
    t = sign_raw(rsa_key, "{\"alg\":256}", c);
    check(t, set, &expect, MG_EDENIED, "missing alg", "numeric alg");
    free(t);
    /* Alg/key type mismatch through kid. */
    t = sign(rsa_key, "RS256", "ec1", c);
    check(t, set, &expect, MG_EDENIED, "key type does not match alg", "RS256 header, EC kid");
    free(t);
    t = sign(ec_key, "ES256", "rsa1", c);
    check(t, set, &expect, MG_EDENIED, "key type does not match alg", "ES256 header, RSA kid");
    free(t);
    t = sign(ed_key, "EdDSA", "ec1", c);
    check(t, set, &expect, MG_EDENIED, "key type does not match alg", "EdDSA header, EC kid");
    free(t);
    /* Signed by a key not in the set, with and without a kid. */
    t = sign(rsa_key, "RS256", "nope", c);
    check(t, set, &expect, MG_EDENIED, "no matching key", "unknown kid");
    free(t);
    EVP_PKEY *stranger = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    t = sign(stranger, "ES256", NULL, c);
    check(t, set, &expect, MG_EDENIED, "bad signature", "unknown EC key, no kid");
    free(t);
    t = sign(stranger, "ES256", "ec1", c);
    check(t, set, &expect, MG_EDENIED, "bad signature", "unknown EC key claiming ec1");
    free(t);
    EVP_PKEY_free(stranger);
    t = sign(ec_key, "ES256", "ec1", c);
    check(t, NULL, &expect, MG_EDENIED, "no matching key", "NULL jwks");
    free(t);
    /* crit is refused (RFC 7515 §4.1.11). */
    t = sign_raw(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"b64\"],\"b64\":false}",
                 c);
    check(t, set, &expect, MG_EDENIED, "unsupported crit header", "crit header");
    free(t);
    t = sign_raw(rsa_key, "{\"alg\":\"RS256\",\"kid\":7}", c);
    check(t, set, &expect, MG_EINVAL, "malformed kid", "numeric kid");
    free(t);
    free(c);
}

static void test_claims(const struct mg_jwks *set)
{
    static const struct {
        const char *payload;
        const char *why;
    } cases[] = {
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000000}",
         NULL}, /* exp == now but within 60 s leeway */
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1699999940}",
         "token expired"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1699999941}", NULL},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1699999941.5}", NULL},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\"}", "missing exp"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":\"1800000000\"}",
         "malformed exp"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1e300}", "malformed exp"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":9223372036854775807}",
         "malformed exp"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":true}", "malformed exp"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000,"
         "\"nbf\":1700000061}",
         "token not yet valid"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000,"
         "\"nbf\":1700000060}",
         NULL},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000,"
         "\"nbf\":null}",
         "malformed nbf"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000,"
         "\"iat\":1700003600}",
         "token issued in the future"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000,"
         "\"iat\":\"x\"}",
         "malformed iat"},
        {"{\"iss\":\"https://evil.example\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000}",
         "issuer mismatch"},
        {"{\"iss\":\"" ISS "/\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000}",
         "issuer mismatch"},
        {"{\"iss\":\"HTTPS://IDP.EXAMPLE\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000}",
         "issuer mismatch"},
        {"{\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000000}", "issuer mismatch"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"other\",\"sub\":\"a\",\"exp\":1800000000}",
         "audience mismatch"},
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"exp\":1800000000}", "audience mismatch"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"mcpgatex\",\"sub\":\"a\",\"exp\":1800000000}",
         "audience mismatch"},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"sub\":\"a\",\"exp\":1800000000}",
         NULL},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"other\",\"x\"],\"sub\":\"a\",\"exp\":1800000000}",
         "audience mismatch"},
        {"{\"iss\":\"" ISS "\",\"aud\":[],\"sub\":\"a\",\"exp\":1800000000}", "audience mismatch"},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\",1],\"sub\":\"a\",\"exp\":1800000000}",
         "malformed aud"},
        {"{\"iss\":\"" ISS "\",\"aud\":[[\"" AUD "\"]],\"sub\":\"a\",\"exp\":1800000000}",
         "malformed aud"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(cases); i++) {
        char *t = sign(ed_key, "EdDSA", "ed1", cases[i].payload);
        char name[48];
        snprintf(name, sizeof name, "claims case %zu (%s)", i, cases[i].why ? cases[i].why : "ok");
        check(t, set, &expect, cases[i].why ? MG_EDENIED : MG_OK, cases[i].why, name);
        free(t);
    }
    /* Nonce (OIDC Core §3.1.3.7 step 11). */
    struct mg_jwt_expect e = expect;
    e.nonce = "n-0S6_WzA2Mj";
    char *c = claims_json(",\"nonce\":\"n-0S6_WzA2Mj\"");
    char *t = sign(ec_key, "ES256", "ec1", c);
    check(t, set, &e, MG_OK, NULL, "nonce matches");
    e.nonce = "n-0S6_WzA2Mk";
    check(t, set, &e, MG_EDENIED, "nonce mismatch", "nonce mismatch");
    e.nonce = "n-0S6_WzA2M";
    check(t, set, &e, MG_EDENIED, "nonce mismatch", "nonce prefix");
    free(t);
    free(c);
    c = claims_json(NULL);
    t = sign(ec_key, "ES256", "ec1", c);
    e.nonce = "n-0S6_WzA2Mj";
    check(t, set, &e, MG_EDENIED, "nonce mismatch", "nonce missing from token");
    /* Leeway zero, and arguments. */
    e = expect;
    e.now = NOW + 300;
    check(t, set, &e, MG_OK, NULL, "valid at exp within 60 s leeway");
    e.now = NOW + 360;
    check(t, set, &e, MG_EDENIED, "token expired", "expired at exp + leeway");
    e.leeway = 0;
    e.now = NOW + 299;
    check(t, set, &e, MG_OK, NULL, "valid one second before exp");
    e.now = NOW + 300;
    check(t, set, &e, MG_EDENIED, "token expired", "expired exactly at exp, no leeway");
    e = expect;
    e.issuer = NULL;
    check(t, set, &e, MG_EINVAL, "bad arguments", "issuer required");
    e = expect;
    e.audience = NULL;
    check(t, set, &e, MG_EINVAL, "bad arguments", "audience required");
    e = expect;
    e.leeway = -1;
    check(t, set, &e, MG_EINVAL, "bad arguments", "negative leeway");
    check(NULL, set, &expect, MG_EINVAL, "bad arguments", "NULL token");
    free(t);
    free(c);
}

static void test_malformed(const struct mg_jwks *set)
{
    char *c = claims_json(NULL);
    char *good = sign(ec_key, "ES256", "ec1", c);
    char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
    char *h = mg_xstrndup(good, (size_t)(d1 - good));
    char *p = mg_xstrndup(d1 + 1, (size_t)(d2 - d1 - 1));
    char *s = mg_xstrdup(d2 + 1);
    char buf[1024];
    static const char *const shapes[] = {"", ".", "..", "...", "a.b", "a.b.c.d"};
    for (size_t i = 0; i < MG_ARRAY_LEN(shapes); i++)
        check(shapes[i], set, &expect, MG_EINVAL, "not a three-part JWS", shapes[i]);
    snprintf(buf, sizeof buf, "%s.%s", h, p);
    check(buf, set, &expect, MG_EINVAL, "not a three-part JWS", "two segments");
    snprintf(buf, sizeof buf, "%s.%s.%s.%s", h, p, s, s);
    check(buf, set, &expect, MG_EINVAL, "not a three-part JWS", "four segments");
    snprintf(buf, sizeof buf, "%s..%s", h, s);
    check(buf, set, &expect, MG_EINVAL, "not a three-part JWS", "empty payload");
    snprintf(buf, sizeof buf, ".%s.%s", p, s);
    check(buf, set, &expect, MG_EINVAL, "not a three-part JWS", "empty header");
    snprintf(buf, sizeof buf, "%s.%s.%s=", h, p, s);
    check(buf, set, &expect, MG_EINVAL, "malformed signature", "padded signature");
    snprintf(buf, sizeof buf, "%s=.%s.%s", h, p, s);
    check(buf, set, &expect, MG_EINVAL, "malformed header", "padded header");
    snprintf(buf, sizeof buf, "%s.%s+.%s", h, p, s);
    check(buf, set, &expect, MG_EINVAL, "malformed payload", "bad base64url in payload");
    snprintf(buf, sizeof buf, "!!!!.%s.%s", p, s);
    check(buf, set, &expect, MG_EINVAL, "malformed header", "bad base64url in header");
    snprintf(buf, sizeof buf, "%s.%s.%s", h, p, "A");
    check(buf, set, &expect, MG_EINVAL, "malformed signature", "1-char signature");
    snprintf(buf, sizeof buf, " %s.%s.%s", h, p, s);
    check(buf, set, &expect, MG_EINVAL, "malformed header", "leading space");
    snprintf(buf, sizeof buf, "%s.%s.%s\n", h, p, s);
    check(buf, set, &expect, MG_EINVAL, "malformed signature", "trailing newline");
    /* Non-object and invalid JSON, duplicate members (properly signed). */
    static const struct {
        const char *header, *payload, *why;
    } j[] = {
        {"[\"RS256\"]", NULL, "malformed header"},
        {"\"ES256\"", NULL, "malformed header"},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"", NULL, "malformed header"},
        {"{\"alg\":\"ES256\",\"alg\":\"none\",\"kid\":\"ec1\"}", NULL, "malformed header"},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"} {}", NULL, "malformed header"},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}", "[1,2]", "malformed payload"},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}", "42", "malformed payload"},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}", "", "not a three-part JWS"},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}",
         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"sub\":\"root\","
         "\"exp\":1800000000}",
         "malformed payload"},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}",
         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\\u0000b\",\"exp\":1800000000}",
         "malformed payload"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(j); i++) {
        char *t = sign_raw(ec_key, j[i].header, j[i].payload ? j[i].payload : c);
        char name[48];
        snprintf(name, sizeof name, "malformed JSON case %zu", i);
        check(t, set, &expect, MG_EINVAL, j[i].why, name);
        free(t);
    }
    /* Oversized: MG_JWT_MAX_LEN + 1 characters, and exactly the limit. */
    char *big = mg_xmalloc(MG_JWT_MAX_LEN + 2);
    memset(big, 'A', MG_JWT_MAX_LEN + 1);
    big[MG_JWT_MAX_LEN + 1] = '\0';
    memcpy(big, good, strlen(good));
    check(big, set, &expect, MG_ELIMIT, "token too long", "oversized token");
    big[MG_JWT_MAX_LEN] = '\0';
    check(big, set, &expect, MG_EDENIED, "bad signature",
          "token at the limit is parsed (signature too long)");
    free(big);
    /* Every prefix of a valid token is refused, and none crashes. */
    int accepted = 0;
    size_t len = strlen(good);
    for (size_t i = 0; i < len; i++) {
        char *pre = mg_xstrndup(good, i);
        accepted += mg_jwt_verify(pre, set, &expect, NULL, NULL) == MG_OK;
        free(pre);
    }
    TAP_IS_INT(accepted, 0, "no proper prefix of a valid token verifies");
    free(good);
    free(h);
    free(p);
    free(s);
    free(c);
}

static void test_jwks(void)
{
    int rc;
    struct mg_jwks *set;
    static const char *const bad[] = {
        "", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[]", "null", "{\"keys\":[],\"keys\":[]}"};
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        set = parse_str(bad[i], &rc);
        TAP_IS_INT(rc, MG_EINVAL, "jwks \"%s\" refused", bad[i]);
        TAP_OK(set == NULL, "no set for \"%s\"", bad[i]);
    }
    set = parse_str("{\"keys\":[]}", &rc);
    TAP_IS_INT(rc, MG_OK, "empty key list parses");
    TAP_IS_INT(mg_jwks_count(set), 0, "zero keys");
    mg_jwks_free(set);
    mg_jwks_free(NULL);
    TAP_IS_INT(mg_jwks_parse(NULL, 0, &set), MG_EINVAL, "NULL text");

    /* Skipped keys: use enc, unknown kty, unknown curve, key_ops sign only,
     * off-curve point, short RSA, bad base64url, non-object. */
    json_t *keys = json_array();
    json_t *k = rsa_jwk(rsa_key, "enc");
    json_object_set_new(k, "use", json_string("enc"));
    json_array_append_new(keys, k);
    json_array_append_new(keys, json_pack("{s:s, s:s}", "kty", "oct", "k", "c2VjcmV0"));
    k = ec_jwk(ec_key, "p384");
    json_object_set_new(k, "crv", json_string("P-384"));
    json_array_append_new(keys, k);
    k = ed_jwk(ed_key, "x448");
    json_object_set_new(k, "crv", json_string("X25519"));
    json_array_append_new(keys, k);
    k = ec_jwk(ec_key, "signonly");
    json_object_set_new(k, "key_ops", json_pack("[s]", "sign"));
    json_array_append_new(keys, k);
    k = ec_jwk(ec_key, "offcurve");
    json_object_set_new(k, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
    json_array_append_new(keys, k);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    json_array_append_new(keys, rsa_jwk(small, "rsa1024"));
    k = ed_jwk(ed_key, "badx");
    json_object_set_new(k, "x", json_string("!!!"));
    json_array_append_new(keys, k);
    k = ed_jwk(ed_key, "shortx");
    json_object_set_new(k, "x", json_string("AAAA"));
    json_array_append_new(keys, k);
    k = ec_jwk(ec_key, "kidnum");
    json_object_set_new(k, "kid", json_integer(3));
    json_array_append_new(keys, k);
    json_array_append_new(keys, json_string("not a key"));
    json_array_append_new(keys, json_pack("{s:s}", "kty", "RSA"));
    k = ec_jwk(ec_key, "verifyok");
    json_object_set_new(k, "key_ops", json_pack("[s]", "verify"));
    json_array_append_new(keys, k);
    set = parse_json(json_pack("{s:o}", "keys", keys), &rc);
    TAP_IS_INT(rc, MG_OK, "mixed JWKS parses");
    TAP_IS_INT(mg_jwks_count(set), 1, "only the one usable key kept");
    char *c = claims_json(NULL);
    char *t = sign(small, "RS256", "rsa1024", c);
    check(t, set, &expect, MG_EDENIED, "no matching key", "RSA-1024 key skipped");
    free(t);
    t = sign(rsa_key, "RS256", "enc", c);
    check(t, set, &expect, MG_EDENIED, "no matching key", "use=enc key skipped");
    free(t);
    t = sign(ec_key, "ES256", "verifyok", c);
    check(t, set, &expect, MG_OK, NULL, "key_ops verify key used");
    free(t);
    mg_jwks_free(set);
    EVP_PKEY_free(small);

    /* A JWK pinned to another alg is not used for this one. */
    k = ed_jwk(ed_key, "ed1");
    json_object_set_new(k, "alg", json_string("ES256"));
    set = parse_json(json_pack("{s:[o]}", "keys", k), &rc);
    TAP_IS_INT(mg_jwks_count(set), 1, "pinned key parsed");
    t = sign(ed_key, "EdDSA", "ed1", c);
    check(t, set, &expect, MG_EDENIED, "key type does not match alg", "JWK alg pin mismatch");
    free(t);
    mg_jwks_free(set);

    /* Limits. */
    keys = json_array();
    for (int i = 0; i <= MG_JWKS_MAX_KEYS; i++)
        json_array_append_new(keys, ed_jwk(ed_key, "same"));
    set = parse_json(json_pack("{s:o}", "keys", keys), &rc);
    TAP_IS_INT(rc, MG_ELIMIT, "too many keys");
    TAP_OK(set == NULL, "no set past the key limit");
    char *huge = mg_xmalloc(MG_JWKS_MAX_LEN + 2);
    memset(huge, ' ', MG_JWKS_MAX_LEN + 1);
    huge[MG_JWKS_MAX_LEN + 1] = '\0';
    memcpy(huge, "{\"keys\":[]}", 11);
    set = parse_str(huge, &rc);
    TAP_IS_INT(rc, MG_ELIMIT, "oversized JWKS");
    free(huge);
    free(c);
}

int main(void)
{
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_key2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    MG_ASSERT(rsa_key && rsa_key2 && ec_key && ed_key);

    int rc;
    json_t *doc =
        json_pack("{s:[o,o,o,o]}", "keys", rsa_jwk(rsa_key, "rsa1"), rsa_jwk(rsa_key2, "rsa2"),
                  ec_jwk(ec_key, "ec1"), ed_jwk(ed_key, "ed1"));
    struct mg_jwks *set = parse_json(doc, &rc);
    TAP_IS_INT(rc, MG_OK, "JWKS of generated keys parses");
    TAP_IS_INT(mg_jwks_count(set), 4, "four keys");

    test_valid(set);
    test_tamper(set);
    test_alg_confusion(set);
    test_claims(set);
    test_malformed(set);
    test_jwks();

    mg_jwks_free(set);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_key2);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ed_key);
    return tap_done();
}

/* Test-only JWT issuing for the tests of modules that verify tokens fetched
 * from elsewhere (jwks_cache, oidc): P-256 keys generated with OpenSSL, ES256
 * compact JWS signing, and the keys' public JWK form. */
#ifndef MG_TESTS_JWTSIGN_H
#define MG_TESTS_JWTSIGN_H

#include "authn/token.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

static inline char *ts_b64(const void *p, size_t n)
{
    size_t cap = mg_authn_b64url_len(n) + 1;
    char *s = mg_xmalloc(cap);
    MG_ASSERT(mg_authn_b64url_encode(p, n, s, cap) == MG_OK);
    return s;
}

static inline EVP_PKEY *ts_ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    MG_ASSERT(k != NULL);
    return k;
}

/* An ES256 JWS over payload (JSON text) with the given kid (NULL: none). */
static inline char *ts_sign_es256(EVP_PKEY *key, const char *kid, const char *payload)
{
    char header[256];
    if (kid)
        snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kid);
    else
        snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"typ\":\"JWT\"}");
    char *h = ts_b64(header, strlen(header)), *p = ts_b64(payload, strlen(payload));
    size_t in_len = strlen(h) + 1 + strlen(p);
    char *input = mg_xmalloc(in_len + 1);
    snprintf(input, in_len + 1, "%s.%s", h, p);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t sig_len = 0;
    MG_ASSERT(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) == 1);
    MG_ASSERT(EVP_DigestSign(md, NULL, &sig_len, (unsigned char *)input, in_len) == 1);
    unsigned char *sig = mg_xmalloc(sig_len);
    MG_ASSERT(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)input, in_len) == 1);
    EVP_MD_CTX_free(md);
    /* JOSE wants r||s (RFC 7518 §3.4), OpenSSL gives DER. */
    const unsigned char *q = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sig_len);
    const BIGNUM *r, *s;
    uint8_t raw[64];
    MG_ASSERT(es != NULL);
    ECDSA_SIG_get0(es, &r, &s);
    MG_ASSERT(BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32);
    ECDSA_SIG_free(es);
    char *s64 = ts_b64(raw, 64);
    size_t tl = in_len + 1 + strlen(s64);
    char *tok = mg_xmalloc(tl + 1);
    snprintf(tok, tl + 1, "%s.%s", input, s64);
    free(h);
    free(p);
    free(input);
    free(sig);
    free(s64);
    return tok;
}

/* The public JWK of a P-256 key. */
static inline json_t *ts_ec_jwk(EVP_PKEY *k, const char *kid)
{
    uint8_t pub[65];
    size_t n = 0;
    MG_ASSERT(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &n) ==
              1);
    MG_ASSERT(n == 65 && pub[0] == 4);
    char *x = ts_b64(pub + 1, 32), *y = ts_b64(pub + 33, 32);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid", kid, "crv", "P-256",
                          "x", x, "y", y, "use", "sig");
    free(x);
    free(y);
    return j;
}

/* {"keys":[...]} of up to n keys, as text (caller frees). */
static inline char *ts_jwks_text(EVP_PKEY *const *keys, const char *const *kids, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, ts_ec_jwk(keys[i], kids[i]));
    json_t *doc = json_pack("{s:o}", "keys", arr);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

#endif

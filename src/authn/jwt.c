/* JWS compact verification and JWKS parsing with OpenSSL 3 EVP only. Owns
 * struct mg_jwks (a list of EVP_PKEY public keys with kid and type). The
 * header's "alg" selects the algorithm from a fixed table and never the key's
 * own claims alone, and a key is used only for the algorithm family of its
 * type, which closes the classic RS/HS and alg-confusion holes (RFC 8725
 * §2.1, §3.1). jku/x5u/jwk headers are ignored: keys come only from the
 * configured JWKS. */
#include "authn/jwt.h"

#include "authn/token.h"

#include <math.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

enum key_type { KT_RSA, KT_EC_P256, KT_ED25519 };

struct jwk {
    char *kid; /* NULL if the JWK has none */
    char *alg; /* NULL if the JWK does not pin one */
    enum key_type type;
    EVP_PKEY *pkey;
};

struct mg_jwks {
    struct jwk *keys;
    size_t n_keys;
};

static const struct {
    const char *name;
    enum key_type type;
    const char *md; /* NULL for EdDSA (PureEdDSA, RFC 8032) */
    size_t sig_len; /* 0: the RSA modulus size */
} algs[] = {
    {"RS256", KT_RSA, "SHA256", 0},
    {"ES256", KT_EC_P256, "SHA256", 64},
    {"EdDSA", KT_ED25519, NULL, 64},
};

/* ---- JWKS ---- */

static void jwk_fini(struct jwk *k)
{
    free(k->kid);
    free(k->alg);
    EVP_PKEY_free(k->pkey);
}

void mg_jwks_free(struct mg_jwks *jwks)
{
    if (jwks == NULL)
        return;
    for (size_t i = 0; i < jwks->n_keys; i++)
        jwk_fini(&jwks->keys[i]);
    free(jwks->keys);
    free(jwks);
}

size_t mg_jwks_count(const struct mg_jwks *jwks)
{
    return jwks ? jwks->n_keys : 0;
}

bool mg_jwks_has_kid(const struct mg_jwks *jwks, const char *kid)
{
    for (size_t i = 0; jwks != NULL && kid != NULL && i < jwks->n_keys; i++)
        if (jwks->keys[i].kid != NULL && strcmp(jwks->keys[i].kid, kid) == 0)
            return true;
    return false;
}

/* Decodes a base64url member into a fresh buffer; NULL if absent or bad. */
static uint8_t *member_b64(json_t *obj, const char *name, size_t max, size_t *n)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v))
        return NULL;
    size_t len = json_string_length(v);
    if (len == 0 || len > (max * 4 + 2) / 3)
        return NULL;
    uint8_t *buf = mg_xmalloc(max);
    if (mg_authn_b64url_decode(json_string_value(v), len, buf, max, n) != MG_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

static bool member_is(json_t *obj, const char *name, const char *want)
{
    json_t *v = json_object_get(obj, name);
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0 &&
           json_string_length(v) == strlen(want);
}

static bool public_check(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* RFC 7518 §6.3.1: n and e, unsigned big-endian. */
static EVP_PKEY *rsa_from_jwk(json_t *k)
{
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    size_t n_len = 0, e_len = 0;
    uint8_t *nb = member_b64(k, "n", 1024, &n_len); /* up to 8192 bits */
    uint8_t *eb = member_b64(k, "e", 8, &e_len);
    if (nb == NULL || eb == NULL || n_len == 0 || e_len == 0)
        goto out;
    n = BN_bin2bn(nb, (int)n_len, NULL);
    e = BN_bin2bn(eb, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (n == NULL || e == NULL || bld == NULL || BN_is_zero(e) || !BN_is_odd(e) ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
        goto out;
    pkey = pkey_fromdata("RSA", bld);
    if (pkey != NULL && EVP_PKEY_get_bits(pkey) < MG_JWT_RSA_MIN_BITS) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    return pkey;
}

/* RFC 7518 §6.2.1: crv "P-256", x and y exactly 32 bytes each. */
static EVP_PKEY *ec_from_jwk(json_t *k)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    uint8_t pub[65];
    size_t x_len = 0, y_len = 0;
    uint8_t *x = NULL, *y = NULL;
    if (!member_is(k, "crv", "P-256"))
        return NULL;
    x = member_b64(k, "x", 32, &x_len);
    y = member_b64(k, "y", 32, &y_len);
    if (x == NULL || y == NULL || x_len != 32 || y_len != 32)
        goto out;
    pub[0] = 0x04; /* SEC 1 uncompressed point */
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub) != 1)
        goto out;
    pkey = pkey_fromdata("EC", bld);
    /* An off-curve point would enable invalid-curve attacks: refuse it. */
    if (pkey != NULL && !public_check(pkey)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

/* RFC 8037 §2: kty "OKP", crv "Ed25519", x the 32-byte public key. */
static EVP_PKEY *ed25519_from_jwk(json_t *k)
{
    size_t x_len = 0;
    uint8_t *x = NULL;
    EVP_PKEY *pkey = NULL;
    if (!member_is(k, "crv", "Ed25519"))
        return NULL;
    x = member_b64(k, "x", 32, &x_len);
    if (x != NULL && x_len == 32)
        pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, 32);
    free(x);
    return pkey;
}

static bool key_ops_allow_verify(json_t *k)
{
    json_t *ops = json_object_get(k, "key_ops"), *op;
    size_t i;
    if (ops == NULL)
        return true;
    if (!json_is_array(ops))
        return false;
    json_array_foreach(ops, i, op)
    {
        if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
            return true;
    }
    return false;
}

static void jwks_add(struct mg_jwks *set, json_t *k)
{
    json_t *kid = json_object_get(k, "kid"), *alg = json_object_get(k, "alg");
    json_t *use = json_object_get(k, "use");
    struct jwk key = {0};
    if (!json_is_object(k) || (use != NULL && !member_is(k, "use", "sig")) ||
        !key_ops_allow_verify(k) || (kid != NULL && !json_is_string(kid)) ||
        (alg != NULL && !json_is_string(alg)))
        return;
    if (member_is(k, "kty", "RSA")) {
        key.type = KT_RSA;
        key.pkey = rsa_from_jwk(k);
    } else if (member_is(k, "kty", "EC")) {
        key.type = KT_EC_P256;
        key.pkey = ec_from_jwk(k);
    } else if (member_is(k, "kty", "OKP")) {
        key.type = KT_ED25519;
        key.pkey = ed25519_from_jwk(k);
    }
    if (key.pkey == NULL)
        return;
    /* Strings with embedded NULs cannot be compared as C strings: drop them. */
    if ((kid && strlen(json_string_value(kid)) != json_string_length(kid)) ||
        (alg && strlen(json_string_value(alg)) != json_string_length(alg))) {
        EVP_PKEY_free(key.pkey);
        return;
    }
    key.kid = kid ? mg_xstrdup(json_string_value(kid)) : NULL;
    key.alg = alg ? mg_xstrdup(json_string_value(alg)) : NULL;
    set->keys[set->n_keys++] = key;
}

int mg_jwks_parse(const char *json_text, size_t len, struct mg_jwks **out)
{
    json_t *root = NULL, *keys, *k;
    size_t i;
    int rc = MG_EINVAL;
    *out = NULL;
    if (json_text == NULL)
        return MG_EINVAL;
    if (len > MG_JWKS_MAX_LEN)
        return MG_ELIMIT;
    root = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, NULL);
    keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(keys))
        goto out;
    if (json_array_size(keys) > MG_JWKS_MAX_KEYS) {
        rc = MG_ELIMIT;
        goto out;
    }
    struct mg_jwks *set = mg_xcalloc(1, sizeof *set);
    set->keys = mg_xcalloc(json_array_size(keys) + 1, sizeof *set->keys);
    json_array_foreach(keys, i, k) jwks_add(set, k);
    *out = set;
    rc = MG_OK;
out:
    json_decref(root);
    return rc;
}

/* ---- JWS ---- */

/* JOSE ES256 signatures are r||s, 32 bytes each (RFC 7518 §3.4); EVP wants
 * DER. Returns the DER length in *der (caller OPENSSL_free's it), or 0. */
static int es256_raw_to_der(const uint8_t *raw, unsigned char **der)
{
    int len = 0;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    *der = NULL;
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    len = i2d_ECDSA_SIG(sig, der);
    if (len <= 0) {
        len = 0;
        *der = NULL;
    }
out:
    ECDSA_SIG_free(sig);
    return len;
}

static bool verify_sig(size_t alg, EVP_PKEY *pkey, const char *input, size_t input_len,
                       const uint8_t *sig, size_t sig_len)
{
    bool ok = false;
    unsigned char *der = NULL;
    EVP_MD_CTX *md = NULL;
    size_t want = algs[alg].sig_len ? algs[alg].sig_len : (size_t)EVP_PKEY_get_size(pkey);
    if (sig_len != want)
        return false;
    if (algs[alg].type == KT_EC_P256) {
        int der_len = es256_raw_to_der(sig, &der);
        if (der_len == 0)
            return false;
        sig = der;
        sig_len = (size_t)der_len;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, algs[alg].md, NULL, NULL, pkey, NULL) != 1)
        goto out;
    ok = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len) == 1;
out:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}

/* Decodes one base64url JSON segment into an object (duplicates refused). */
static json_t *segment_json(const char *s, size_t len)
{
    size_t n = 0;
    uint8_t *buf = mg_xmalloc(len + 1);
    json_t *j = NULL;
    if (mg_authn_b64url_decode(s, len, buf, len + 1, &n) == MG_OK)
        j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* A NumericDate (RFC 7519 §2): integer or finite real, clamped to a sane
 * range so arithmetic with leeway cannot overflow. */
static bool numeric_date(json_t *v, int64_t *out)
{
    const double lim = 1e15; /* ~31 million years */
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return false;
    if (!isfinite(d) || d < -lim || d > lim)
        return false;
    *out = (int64_t)floor(d);
    return true;
}

static bool str_equal(json_t *v, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(v) && json_string_length(v) == n &&
           CRYPTO_memcmp(json_string_value(v), want, n) == 0;
}

static const char *check_claims(json_t *c, const struct mg_jwt_expect *exp)
{
    int64_t t;
    json_t *v;
    if (!str_equal(json_object_get(c, "iss"), exp->issuer))
        return "issuer mismatch";
    v = json_object_get(c, "aud");
    if (json_is_array(v)) {
        json_t *a;
        size_t i;
        bool found = false;
        json_array_foreach(v, i, a)
        {
            if (!json_is_string(a))
                return "malformed aud";
            found = found || str_equal(a, exp->audience);
        }
        if (!found)
            return "audience mismatch";
    } else if (!str_equal(v, exp->audience)) {
        return "audience mismatch";
    }
    v = json_object_get(c, "exp");
    if (v == NULL)
        return "missing exp";
    if (!numeric_date(v, &t))
        return "malformed exp";
    if (exp->now >= t + exp->leeway)
        return "token expired";
    v = json_object_get(c, "nbf");
    if (v != NULL && !numeric_date(v, &t))
        return "malformed nbf";
    if (v != NULL && t > exp->now + exp->leeway)
        return "token not yet valid";
    v = json_object_get(c, "iat");
    if (v != NULL && !numeric_date(v, &t))
        return "malformed iat";
    if (v != NULL && t > exp->now + exp->leeway)
        return "token issued in the future";
    if (exp->nonce != NULL && !str_equal(json_object_get(c, "nonce"), exp->nonce))
        return "nonce mismatch";
    return NULL;
}

int mg_jwt_verify(const char *token, const struct mg_jwks *jwks, const struct mg_jwt_expect *exp,
                  json_t **claims_out, const char **why)
{
    json_t *header = NULL, *claims = NULL;
    uint8_t *sig = NULL;
    const char *reason = NULL;
    int rc = MG_EINVAL;
    size_t len, alg = MG_ARRAY_LEN(algs), sig_len = 0;
    const char *d1, *d2, *kid = NULL;
    bool verified = false, key_found = false;

    if (claims_out)
        *claims_out = NULL;
    if (token == NULL || exp == NULL || exp->issuer == NULL || exp->audience == NULL ||
        exp->leeway < 0 || exp->leeway > 86400) {
        reason = "bad arguments";
        goto out;
    }
    len = strnlen(token, MG_JWT_MAX_LEN + 1);
    if (len > MG_JWT_MAX_LEN) {
        rc = MG_ELIMIT;
        reason = "token too long";
        goto out;
    }
    /* Exactly three non-empty segments (RFC 7515 §7.1; an empty signature
     * is alg "none"). */
    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) ||
        d1 == token || d2 == d1 + 1 || d2 + 1 == token + len) {
        reason = "not a three-part JWS";
        goto out;
    }
    header = segment_json(token, (size_t)(d1 - token));
    if (header == NULL) {
        reason = "malformed header";
        goto out;
    }
    size_t s_len = len - (size_t)(d2 + 1 - token);
    sig = mg_xmalloc(s_len + 1);
    if (mg_authn_b64url_decode(d2 + 1, s_len, sig, s_len + 1, &sig_len) != MG_OK) {
        reason = "malformed signature";
        goto out;
    }
    /* The payload must be valid base64url JSON even before the signature is
     * checked, so a malformed token is MG_EINVAL whatever the key. */
    claims = segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (claims == NULL) {
        reason = "malformed payload";
        goto out;
    }
    rc = MG_EDENIED;
    json_t *jalg = json_object_get(header, "alg"), *jkid = json_object_get(header, "kid");
    if (!json_is_string(jalg)) {
        reason = "missing alg";
        goto out;
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(algs); i++)
        if (str_equal(jalg, algs[i].name))
            alg = i;
    if (alg == MG_ARRAY_LEN(algs)) {
        reason = "unsupported alg";
        goto out;
    }
    /* RFC 7515 §4.1.11: we implement no extensions, so any "crit" fails. */
    if (json_object_get(header, "crit") != NULL) {
        reason = "unsupported crit header";
        goto out;
    }
    if (jkid != NULL) {
        if (!json_is_string(jkid) || strlen(json_string_value(jkid)) != json_string_length(jkid)) {
            rc = MG_EINVAL;
            reason = "malformed kid";
            goto out;
        }
        kid = json_string_value(jkid);
    }
    for (size_t i = 0; jwks != NULL && i < jwks->n_keys && !verified; i++) {
        const struct jwk *k = &jwks->keys[i];
        if (kid != NULL && (k->kid == NULL || strcmp(k->kid, kid) != 0))
            continue;
        if (k->type != algs[alg].type || (k->alg != NULL && strcmp(k->alg, algs[alg].name) != 0)) {
            if (kid != NULL && !key_found)
                reason = "key type does not match alg";
            continue;
        }
        key_found = true;
        verified = verify_sig(alg, k->pkey, token, (size_t)(d2 - token), sig, sig_len);
    }
    if (!verified) {
        if (key_found)
            reason = "bad signature";
        else if (reason == NULL)
            reason = "no matching key";
        goto out;
    }
    reason = check_claims(claims, exp);
    if (reason != NULL)
        goto out;
    rc = MG_OK;
    if (claims_out) {
        *claims_out = claims;
        claims = NULL;
    }
out:
    json_decref(header);
    json_decref(claims);
    free(sig);
    if (why)
        *why = reason;
    return rc;
}

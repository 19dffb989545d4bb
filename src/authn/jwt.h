/* JWS compact verification (RFC 7515) of JWTs (RFC 7519) signed by someone
 * else: OpenID Connect ID tokens and externally issued JWT access tokens.
 * Public-key algorithms only (RS256, ES256, EdDSA/Ed25519, RFC 7518 and
 * RFC 8037); "none" and HMAC are refused. Keys come from a JWKS (RFC 7517)
 * parsed here into EVP_PKEYs. Pure: the caller supplies the time and the
 * JWKS text; nothing is fetched. */
#ifndef MG_AUTHN_JWT_H
#define MG_AUTHN_JWT_H

#include "core/common.h"

#include <jansson.h>

#define MG_JWT_MAX_LEN      16384 /* whole compact token */
#define MG_JWKS_MAX_LEN     65536 /* whole JWKS document */
#define MG_JWKS_MAX_KEYS    32
#define MG_JWT_RSA_MIN_BITS 2048

struct mg_jwks;

/* Parses a JWKS document ({"keys": [...]}) of len bytes. Keys with a "use"
 * other than "sig", "key_ops" without "verify", an unknown kty or curve, or
 * invalid material (bad base64url, point not on the curve, RSA below 2048
 * bits) are skipped, so one bad key does not take down a rotating set.
 * MG_EINVAL if the document itself is malformed (not JSON, duplicate keys,
 * no "keys" array), MG_ELIMIT if it exceeds MG_JWKS_MAX_LEN or
 * MG_JWKS_MAX_KEYS. On success *out is owned by the caller
 * (mg_jwks_free); it may hold zero keys. */
int mg_jwks_parse(const char *json_text, size_t len, struct mg_jwks **out);
void mg_jwks_free(struct mg_jwks *jwks);
/* Number of usable keys. */
size_t mg_jwks_count(const struct mg_jwks *jwks);
/* True if the set holds a usable key with this "kid" (a JWT naming a kid the
 * set lacks calls for a refetch: the issuer rotated its keys). */
bool mg_jwks_has_kid(const struct mg_jwks *jwks, const char *kid);

struct mg_jwt_expect {
    const char *issuer;   /* required: "iss" must equal it exactly */
    const char *audience; /* required: "aud" string equal, or array containing it */
    const char *nonce;    /* optional: if set, "nonce" must equal it (OIDC ID tokens) */
    int64_t now;          /* seconds since the epoch, from the caller */
    int64_t leeway;       /* seconds of clock skew allowed on exp, nbf and iat */
};

/* Verifies the NUL-terminated compact JWS token against jwks and exp.
 * Key selection: by "kid" if the header has one (the key's type must match
 * "alg"), otherwise every key of the alg's type is tried. Then the claims:
 * "exp" required, "nbf" and "iat" not in the future, "iss", "aud" and the
 * optional "nonce". Returns 0 and, if claims_out is not NULL, the payload
 * object (caller json_decref's it). Otherwise *claims_out is NULL, *why (if
 * not NULL) a static reason, and the status MG_ELIMIT (too long), MG_EINVAL
 * (malformed, or exp lacks issuer/audience) or MG_EDENIED (unsupported alg,
 * no key, bad signature, claim check failed). */
int mg_jwt_verify(const char *token, const struct mg_jwks *jwks, const struct mg_jwt_expect *exp,
                  json_t **claims_out, const char **why);

#endif

/* PKCE verification for the authorization-code grant (RFC 7636, OAuth 2.1
 * §4.1): only S256 is accepted; "plain" and missing PKCE are refused, as the
 * MCP authorization spec requires. Pure. */
#ifndef MG_AUTHN_PKCE_H
#define MG_AUTHN_PKCE_H

#include "core/common.h"

#define MG_PKCE_CHALLENGE_LEN    43 /* base64url(SHA-256), no padding */
#define MG_PKCE_VERIFIER_MIN_LEN 43 /* RFC 7636 §4.1 */
#define MG_PKCE_VERIFIER_MAX_LEN 128

/* True if challenge is exactly 43 base64url characters that decode
 * canonically to 32 bytes (for the authorize endpoint). */
bool mg_pkce_challenge_valid(const char *challenge);

/* True if method is exactly "S256". */
bool mg_pkce_method_valid(const char *method);

/* Returns 0 only if method is "S256", challenge is valid, verifier is 43..128
 * unreserved characters (RFC 7636 §4.1) and BASE64URL(SHA256(verifier)) equals
 * challenge (§4.6), compared in constant time. Otherwise MG_EDENIED, and *why
 * (if why is not NULL) receives a static reason. MG_EIO if OpenSSL fails. */
int mg_pkce_verify(const char *method, const char *challenge, const char *verifier,
                   const char **why);

/* Computes the S256 challenge for a verifier (tests, and our own OIDC client).
 * out must hold MG_PKCE_CHALLENGE_LEN + 1 bytes. */
int mg_pkce_challenge_s256(const char *verifier, char out[MG_PKCE_CHALLENGE_LEN + 1]);

#endif

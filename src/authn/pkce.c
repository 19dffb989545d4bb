/* RFC 7636 PKCE, S256 only. The verifier alphabet and length come from §4.1,
 * the transformation from §4.2, the comparison from §4.6; the comparison is
 * constant time so the challenge cannot be learnt byte by byte. */
#include "authn/pkce.h"

#include "authn/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

bool mg_pkce_challenge_valid(const char *challenge)
{
    uint8_t h[32];
    size_t n = 0;
    if (challenge == NULL || strnlen(challenge, MG_PKCE_CHALLENGE_LEN + 1) != MG_PKCE_CHALLENGE_LEN)
        return false;
    return mg_authn_b64url_decode(challenge, MG_PKCE_CHALLENGE_LEN, h, sizeof h, &n) == MG_OK &&
           n == sizeof h;
}

bool mg_pkce_method_valid(const char *method)
{
    return method != NULL && strcmp(method, "S256") == 0;
}

/* RFC 7636 §4.1: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~". */
static bool verifier_valid(const char *v)
{
    size_t len = strnlen(v, MG_PKCE_VERIFIER_MAX_LEN + 1);
    if (len < MG_PKCE_VERIFIER_MIN_LEN || len > MG_PKCE_VERIFIER_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok)
            return false;
    }
    return true;
}

int mg_pkce_challenge_s256(const char *verifier, char out[MG_PKCE_CHALLENGE_LEN + 1])
{
    uint8_t h[32];
    unsigned int n = 0;
    if (EVP_Digest(verifier, strlen(verifier), h, &n, EVP_sha256(), NULL) != 1 || n != sizeof h)
        return MG_EIO;
    int rc = mg_authn_b64url_encode(h, sizeof h, out, MG_PKCE_CHALLENGE_LEN + 1);
    OPENSSL_cleanse(h, sizeof h);
    return rc;
}

int mg_pkce_verify(const char *method, const char *challenge, const char *verifier,
                   const char **why)
{
    char computed[MG_PKCE_CHALLENGE_LEN + 1];
    const char *reason = NULL;
    int rc = MG_EDENIED;

    if (method == NULL || method[0] == '\0')
        reason = "code_challenge_method missing";
    else if (strcmp(method, "plain") == 0)
        reason = "code_challenge_method plain is not allowed";
    else if (!mg_pkce_method_valid(method))
        reason = "unsupported code_challenge_method";
    else if (challenge == NULL || challenge[0] == '\0')
        reason = "code_challenge missing";
    else if (!mg_pkce_challenge_valid(challenge))
        reason = "malformed code_challenge";
    else if (verifier == NULL || verifier[0] == '\0')
        reason = "code_verifier missing";
    else if (!verifier_valid(verifier))
        reason = "malformed code_verifier";
    if (reason != NULL)
        goto out;

    rc = mg_pkce_challenge_s256(verifier, computed);
    if (rc != MG_OK) {
        reason = "digest failed";
        goto out;
    }
    if (CRYPTO_memcmp(computed, challenge, MG_PKCE_CHALLENGE_LEN) != 0) {
        rc = MG_EDENIED;
        reason = "code_verifier does not match code_challenge";
    }
out:
    OPENSSL_cleanse(computed, sizeof computed);
    if (why)
        *why = reason;
    return rc;
}

/* libFuzzer target for JWS/JWKS parsing (src/authn/jwt). The first byte picks
 * the mode: 'K' feeds the rest to mg_jwks_parse and then verifies a fixed
 * valid token against whatever set came out; anything else feeds the rest as
 * a token to mg_jwt_verify against a fixed JWKS (one Ed25519 and one P-256
 * key, whose seeds are in fuzz/corpus/jwt). Checks the contract: success
 * exactly when claims come back, with the expected issuer; otherwise a reason
 * and no claims. */
#include "authn/jwt.h"

#include <openssl/crypto.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_jwks[] = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\","
                                 "\"x\":\"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg\"},"
                                 "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\","
                                 "\"x\":\"-evkZBR8wQLZIyTQmdknwaUOQtV6CKEW_-wKKYGdjGU\","
                                 "\"y\":\"cLr30SiIkCpqDB1nrdEDEjyFmrab-OlDHJOEkw1Lfu4\"}]}";

/* Signed with the fixed Ed25519 key (fuzz/corpus/jwt/token_eddsa). */
static const char fixed_token[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwiYXVkIjoibWNwZ2F0"
    "ZSIsInN1YiI6ImFsaWNlIiwiZXhwIjoxNzAwMDAwMzAwLCJpYXQiOjE2OTk5OTk5OTAsIm5iZiI6MTY5OTk5OTk5MCwi"
    "bm9uY2UiOiJuMSJ9.nSElAhCvp2_zLVRZ_DgzxTYNRMDFmFrVFO19wVhqn6DHigN1DXhSs5RDZ7dUJcZwBKNpmzXFKKd"
    "mKikS-DA4CQ";

static const struct mg_jwt_expect expect = {"https://idp.example", "mcpgate", "n1", 1700000000, 60};

static void verify_one(const char *token, const struct mg_jwks *set)
{
    json_t *claims = NULL;
    const char *why = NULL;
    int rc = mg_jwt_verify(token, set, &expect, &claims, &why);
    if (rc == MG_OK) {
        MG_ASSERT(claims != NULL && json_is_object(claims) && why == NULL);
        json_t *iss = json_object_get(claims, "iss");
        MG_ASSERT(json_is_string(iss) && strcmp(json_string_value(iss), expect.issuer) == 0);
        json_decref(claims);
    } else {
        MG_ASSERT(rc == MG_EINVAL || rc == MG_EDENIED || rc == MG_ELIMIT);
        MG_ASSERT(claims == NULL && why != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mg_jwks *jwks;
    if (jwks == NULL)
        MG_ASSERT(mg_jwks_parse(fixed_jwks, sizeof fixed_jwks - 1, &jwks) == MG_OK &&
                  mg_jwks_count(jwks) == 2);
    if (size == 0)
        return 0;
    if (data[0] == 'K') {
        struct mg_jwks *set = NULL;
        int rc = mg_jwks_parse((const char *)data + 1, size - 1, &set);
        MG_ASSERT((rc == MG_OK) == (set != NULL));
        if (set != NULL) {
            MG_ASSERT(mg_jwks_count(set) <= MG_JWKS_MAX_KEYS);
            verify_one(fixed_token, set);
        }
        mg_jwks_free(set);
        return 0;
    }
    char *token = mg_xstrndup((const char *)data + 1, size - 1);
    verify_one(token, jwks);
    free(token);
    return 0;
}

/* AES-256-GCM sealed blobs and HMAC-SHA256 tokens; see seal.h for the wire
 * form. GCM gives confidentiality and integrity in one pass; binding the
 * purpose as associated data (not as a field of the plaintext) means a blob
 * for another purpose fails authentication before anything is decrypted into
 * the caller's hands. Plaintext is only ever copied out after the tag has
 * been checked, and every intermediate copy of a key or plaintext is wiped. */
#include "authn/seal.h"

#include "authn/token.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* HKDF "info" labels: one key per algorithm and format version. */
static const char info_enc[] = "mcpgate seal v1 aes-256-gcm";
static const char info_mac[] = "mcpgate seal v1 hmac-sha256";

static bool purpose_valid(const char *purpose)
{
    if (purpose == NULL)
        return false;
    size_t n = strnlen(purpose, MG_SEAL_PURPOSE_MAX + 1);
    return n >= 1 && n <= MG_SEAL_PURPOSE_MAX;
}

static void put_be64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(u & 0xff);
        u >>= 8;
    }
}

static int64_t get_be64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static int hkdf(const uint8_t *secret, const char *info, uint8_t out[32])
{
    char digest[] = "SHA256";
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    int rc = MG_EIO;

    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf == NULL)
        goto out;
    ctx = EVP_KDF_CTX_new(kdf);
    if (ctx == NULL)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, MG_SEAL_KEY_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(ctx, out, 32, params) == 1)
        rc = MG_OK;
out:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

int mg_seal_key_init(struct mg_seal_key *k, const uint8_t *secret)
{
    int rc = hkdf(secret, info_enc, k->enc);
    if (rc == MG_OK)
        rc = hkdf(secret, info_mac, k->mac);
    if (rc != MG_OK)
        mg_seal_key_fini(k);
    return rc;
}

void mg_seal_key_fini(struct mg_seal_key *k)
{
    OPENSSL_cleanse(k, sizeof *k);
}

/* Associated data: the version byte, then the purpose. */
static int set_aad(EVP_CIPHER_CTX *ctx, const char *purpose, bool enc)
{
    uint8_t ver = MG_SEAL_VERSION;
    int n = 0;
    if (enc)
        return EVP_EncryptUpdate(ctx, NULL, &n, &ver, 1) == 1 &&
               EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)purpose, (int)strlen(purpose)) ==
                   1;
    return EVP_DecryptUpdate(ctx, NULL, &n, &ver, 1) == 1 &&
           EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)purpose, (int)strlen(purpose)) == 1;
}

int mg_seal_seal(const struct mg_seal_key *k, const char *purpose, int64_t expires,
                 const void *data, size_t len, char *out, size_t cap)
{
    /* version | nonce | E(expires | data) | tag, then base64url. */
    uint8_t raw[MG_SEAL_OVERHEAD + MG_SEAL_MAX_DATA];
    uint8_t plain[8 + MG_SEAL_MAX_DATA];
    EVP_CIPHER_CTX *ctx = NULL;
    int n = 0, rc = MG_EINVAL;
    size_t raw_len = MG_SEAL_OVERHEAD + len;

    if (cap > 0)
        out[0] = '\0';
    if (!purpose_valid(purpose) || expires <= 0)
        goto out;
    rc = MG_ELIMIT;
    if (len > MG_SEAL_MAX_DATA || cap < MG_SEAL_LEN(len) + 1)
        goto out;

    put_be64(plain, expires);
    if (len > 0)
        memcpy(plain + 8, data, len);
    raw[0] = MG_SEAL_VERSION;
    uint8_t *nonce = raw + 1, *ct = raw + 1 + MG_SEAL_NONCE_LEN;
    uint8_t *tag = ct + 8 + len;
    rc = MG_EIO;
    if (RAND_bytes(nonce, MG_SEAL_NONCE_LEN) != 1)
        goto out;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->enc, nonce) != 1 ||
        !set_aad(ctx, purpose, true) ||
        EVP_EncryptUpdate(ctx, ct, &n, plain, (int)(8 + len)) != 1 || (size_t)n != 8 + len ||
        EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 || n != 0 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MG_SEAL_TAG_LEN, tag) != 1)
        goto out;
    MG_ASSERT(mg_authn_b64url_len(raw_len) == MG_SEAL_LEN(len));
    rc = mg_authn_b64url_encode(raw, raw_len, out, cap);
out:
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(plain, sizeof plain);
    if (rc != MG_OK && cap > 0)
        out[0] = '\0';
    return rc;
}

int mg_seal_open(const struct mg_seal_key *k, const char *purpose, int64_t now, const char *sealed,
                 size_t len, uint8_t *out, size_t cap, size_t *out_len, int64_t *expires,
                 const char **why)
{
    uint8_t raw[MG_SEAL_OVERHEAD + MG_SEAL_MAX_DATA];
    uint8_t plain[8 + MG_SEAL_MAX_DATA];
    EVP_CIPHER_CTX *ctx = NULL;
    const char *reason = NULL;
    size_t raw_len = 0, plain_len = 0;
    int n = 0, rc = MG_EINVAL;

    if (!purpose_valid(purpose)) {
        reason = "bad purpose";
        goto out;
    }
    if (len > MG_SEAL_MAX_LEN) {
        rc = MG_ELIMIT;
        reason = "too long";
        goto out;
    }
    if (mg_authn_b64url_decode(sealed, len, raw, sizeof raw, &raw_len) != MG_OK) {
        reason = "not base64url";
        goto out;
    }
    if (raw_len < MG_SEAL_OVERHEAD) {
        reason = "too short";
        goto out;
    }
    if (raw[0] != MG_SEAL_VERSION) {
        reason = "unknown version";
        goto out;
    }
    plain_len = raw_len - MG_SEAL_OVERHEAD + 8;
    if (plain_len - 8 > cap) {
        rc = MG_ELIMIT;
        reason = "data does not fit";
        goto out;
    }

    const uint8_t *nonce = raw + 1, *ct = raw + 1 + MG_SEAL_NONCE_LEN;
    uint8_t *tag = raw + raw_len - MG_SEAL_TAG_LEN;
    rc = MG_EIO;
    reason = "cipher failed";
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->enc, nonce) != 1 ||
        !set_aad(ctx, purpose, false) ||
        EVP_DecryptUpdate(ctx, plain, &n, ct, (int)plain_len) != 1 || (size_t)n != plain_len ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MG_SEAL_TAG_LEN, tag) != 1)
        goto out;
    /* The tag check: altered bytes, another key or another purpose. */
    if (EVP_DecryptFinal_ex(ctx, plain + n, &n) != 1) {
        rc = MG_EDENIED;
        reason = "does not authenticate";
        goto out;
    }
    int64_t exp = get_be64(plain);
    if (exp <= now) {
        rc = MG_EDENIED;
        reason = "expired";
        goto out;
    }
    if (plain_len > 8)
        memcpy(out, plain + 8, plain_len - 8);
    *out_len = plain_len - 8;
    if (expires)
        *expires = exp;
    rc = MG_OK;
    reason = NULL;
out:
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(plain, sizeof plain);
    if (why)
        *why = reason;
    return rc;
}

static int mac_raw(const struct mg_seal_key *k, const char *purpose, const void *data, size_t len,
                   uint8_t out[32])
{
    char digest[] = "SHA256";
    const uint8_t zero = 0;
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    size_t n = 0;
    int rc = MG_EIO;

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        goto out;
    ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    /* The 0 byte ends the purpose (a C string), so purpose and data cannot
     * trade bytes: ("ab", "c") and ("a", "bc") give different inputs. */
    if (EVP_MAC_init(ctx, k->mac, sizeof k->mac, params) != 1 ||
        EVP_MAC_update(ctx, (const uint8_t *)purpose, strlen(purpose)) != 1 ||
        EVP_MAC_update(ctx, &zero, 1) != 1 || EVP_MAC_update(ctx, data, len) != 1 ||
        EVP_MAC_final(ctx, out, &n, 32) != 1 || n != 32)
        goto out;
    rc = MG_OK;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

int mg_seal_mac(const struct mg_seal_key *k, const char *purpose, const void *data, size_t len,
                char out[MG_SEAL_MAC_BUF])
{
    uint8_t h[32];
    int rc = MG_EINVAL;
    out[0] = '\0';
    if (!purpose_valid(purpose))
        goto out;
    rc = mac_raw(k, purpose, data, len, h);
    if (rc == MG_OK)
        rc = mg_authn_b64url_encode(h, sizeof h, out, MG_SEAL_MAC_BUF);
out:
    OPENSSL_cleanse(h, sizeof h);
    if (rc != MG_OK)
        out[0] = '\0';
    return rc;
}

int mg_seal_mac_verify(const struct mg_seal_key *k, const char *purpose, const void *data,
                       size_t len, const char *mac, size_t mac_len)
{
    char want[MG_SEAL_MAC_BUF];
    int rc = mg_seal_mac(k, purpose, data, len, want);
    if (rc != MG_OK)
        goto out;
    /* The length is public (always 43); the bytes are compared in constant
     * time so a forger learns nothing from how long a refusal took. */
    if (mac == NULL || mac_len != MG_SEAL_MAC_LEN || CRYPTO_memcmp(want, mac, MG_SEAL_MAC_LEN) != 0)
        rc = MG_EDENIED;
out:
    OPENSSL_cleanse(want, sizeof want);
    return rc;
}

/* Opaque bearer tokens and the strict base64url codec. A token is
 * "mcpg_<kind>_<base64url(32 random bytes)>": the prefix lets secret scanners
 * and people recognise it, the 256 random bits make guessing hopeless, and
 * only SHA-256(token) is ever stored, so a leaked database yields no usable
 * token. */
/* SHA256_Init and friends are deprecated in OpenSSL 3 but kept: see mg_sha256. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "authn/token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static const char *const kind_names[] = {
    [MG_TOKEN_ACCESS] = "at",
    [MG_TOKEN_REFRESH] = "rt",
    [MG_TOKEN_CODE] = "ac",
    [MG_TOKEN_SERVICE] = "sa",
};

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Each byte's value in the base64url alphabet, -1 if not in it: one load
 * per character (tokens are decoded on every request). */
static const int8_t b64url_dec[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static int b64url_value(unsigned char c)
{
    return b64url_dec[c];
}

size_t mg_authn_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

int mg_authn_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t need = mg_authn_b64url_len(n);
    if (need >= cap)
        return MG_ELIMIT;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
        out[o++] = b64url_chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
    }
    MG_ASSERT(o == need);
    out[o] = '\0';
    return MG_OK;
}

bool mg_authn_b64url_alphabet(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (b64url_value((unsigned char)in[i]) < 0)
            return false;
    return true;
}

int mg_authn_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (len % 4 == 1)
        return MG_EINVAL;
    size_t need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (need > cap)
        return MG_ELIMIT;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return MG_EINVAL;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* RFC 4648 §3.5: the left-over bits must be zero (canonical encoding). */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return MG_EINVAL;
    MG_ASSERT(o == need);
    *out_len = o;
    return MG_OK;
}

const char *mg_token_kind_name(enum mg_token_kind kind)
{
    if ((unsigned)kind >= MG_ARRAY_LEN(kind_names))
        return NULL;
    return kind_names[kind];
}

int mg_token_new(enum mg_token_kind kind, char *out, size_t cap)
{
    uint8_t rnd[MG_TOKEN_RANDOM_BYTES];
    const char *name = mg_token_kind_name(kind);
    if (name == NULL)
        return MG_EINVAL;
    if (cap < MG_TOKEN_BUF)
        return MG_ELIMIT;
    out[0] = '\0';
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return MG_EIO;
    memcpy(out, "mcpg_", 5);
    memcpy(out + 5, name, 2);
    out[7] = '_';
    int rc = mg_authn_b64url_encode(rnd, sizeof rnd, out + 8, cap - 8);
    OPENSSL_cleanse(rnd, sizeof rnd);
    MG_ASSERT(rc == MG_OK && strlen(out) == MG_TOKEN_LEN);
    return MG_OK;
}

int mg_token_kind_of(const char *token, enum mg_token_kind *kind)
{
    if (token == NULL || strnlen(token, MG_TOKEN_LEN + 1) != MG_TOKEN_LEN)
        return MG_EINVAL;
    if (memcmp(token, "mcpg_", 5) != 0 || token[7] != '_')
        return MG_EINVAL;
    /* Canonical base64url of exactly 32 bytes: 43 characters of the
     * alphabet whose last one leaves its 2 spare bits zero (RFC 4648 §3.5),
     * so each random value has one spelling. Checked without decoding. */
    _Static_assert(MG_TOKEN_LEN - 8 == 43 && MG_TOKEN_RANDOM_BYTES == 32,
                   "43 characters carry 32 bytes and 2 spare bits");
    for (size_t i = 8; i < MG_TOKEN_LEN; i++)
        if (b64url_value((unsigned char)token[i]) < 0)
            return MG_EINVAL;
    if ((b64url_value((unsigned char)token[MG_TOKEN_LEN - 1]) & 3) != 0)
        return MG_EINVAL;
    for (size_t k = 0; k < MG_ARRAY_LEN(kind_names); k++) {
        if (memcmp(token + 5, kind_names[k], 2) == 0) {
            if (kind)
                *kind = (enum mg_token_kind)k;
            return MG_OK;
        }
    }
    return MG_EINVAL;
}

/* SHA-256 through OpenSSL's low-level interface, the same assembly (SHA-NI
 * where the CPU has it) without the EVP layer: OpenSSL 3.0's
 * EVP_DigestInit_ex asks the ENGINE table (a global lock) and reallocates
 * state on every digest, and two digests run per proxied request (the
 * bearer token's and the audit record's), so the EVP path was a measurable
 * share of a request (bench/RESULTS.md). The context lives on the stack
 * and is wiped: its input may be a token. */
int mg_sha256(const void *data, size_t len, uint8_t out[MG_TOKEN_HASH_LEN])
{
    SHA256_CTX c;
    int ok =
        SHA256_Init(&c) == 1 && SHA256_Update(&c, data, len) == 1 && SHA256_Final(out, &c) == 1;
    OPENSSL_cleanse(&c, sizeof c);
    return ok ? MG_OK : MG_EIO;
}

int mg_token_hash(const char *token, uint8_t out[MG_TOKEN_HASH_LEN])
{
    if (token == NULL)
        return MG_EINVAL;
    return mg_sha256(token, strlen(token), out);
}

int mg_token_hash_hex(const char *token, char out[MG_TOKEN_HASH_HEX_BUF])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[MG_TOKEN_HASH_LEN];
    int rc = mg_token_hash(token, h);
    if (rc != MG_OK) {
        out[0] = '\0';
        return rc;
    }
    for (size_t i = 0; i < MG_TOKEN_HASH_LEN; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[2 * MG_TOKEN_HASH_LEN] = '\0';
    OPENSSL_cleanse(h, sizeof h);
    return MG_OK;
}

bool mg_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

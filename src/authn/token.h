/* Opaque bearer tokens the gateway issues (access, refresh, authorization
 * code, service account): a recognisable prefix plus 256 CSPRNG bits, stored
 * only as SHA-256 hashes. Also owns the strict base64url codec (RFC 4648 §5,
 * no padding) shared by the PKCE and JWT modules. Pure: no I/O, no globals. */
#ifndef MG_AUTHN_TOKEN_H
#define MG_AUTHN_TOKEN_H

#include "core/common.h"

enum mg_token_kind {
    MG_TOKEN_ACCESS = 0, /* "at" */
    MG_TOKEN_REFRESH,    /* "rt" */
    MG_TOKEN_CODE,       /* "ac": authorization code */
    MG_TOKEN_SERVICE,    /* "sa": service account */
};

/* "mcpg_" + 2-letter kind + "_" + 43 base64url chars (32 random bytes). */
#define MG_TOKEN_RANDOM_BYTES 32
#define MG_TOKEN_LEN          51
#define MG_TOKEN_BUF          (MG_TOKEN_LEN + 1)
#define MG_TOKEN_HASH_LEN     32
#define MG_TOKEN_HASH_HEX_BUF (2 * MG_TOKEN_HASH_LEN + 1)

/* Writes a new NUL-terminated token of the given kind into out (cap must be at
 * least MG_TOKEN_BUF, else MG_ELIMIT). MG_EINVAL for an unknown kind, MG_EIO
 * if the CSPRNG fails (out is then an empty string). */
int mg_token_new(enum mg_token_kind kind, char *out, size_t cap);

/* Parses the kind of a NUL-terminated token. MG_EINVAL for anything that is
 * not exactly the shape mg_token_new produces (prefix, kind, length,
 * alphabet, canonical base64url). */
int mg_token_kind_of(const char *token, enum mg_token_kind *kind);

/* The 2-letter prefix of a kind ("at", ...), or NULL for an unknown kind. */
const char *mg_token_kind_name(enum mg_token_kind kind);

/* SHA-256 of len bytes, with the digest looked up once per process (not
 * on every call, as EVP_sha256() does). MG_EIO if OpenSSL fails. */
int mg_sha256(const void *data, size_t len, uint8_t out[MG_TOKEN_HASH_LEN]);
/* SHA-256 of the whole token string (not NUL). Tokens are stored only as
 * this hash. MG_EIO if OpenSSL fails. */
int mg_token_hash(const char *token, uint8_t out[MG_TOKEN_HASH_LEN]);
/* The same as 64 lowercase hex characters plus NUL. */
int mg_token_hash_hex(const char *token, char out[MG_TOKEN_HASH_HEX_BUF]);

/* Constant-time equality of n bytes (CRYPTO_memcmp). */
bool mg_ct_equal(const void *a, const void *b, size_t n);

/* base64url without padding (RFC 4648 §5, RFC 7515 §2). Encode writes
 * ceil(4n/3) chars plus NUL; MG_ELIMIT if cap is too small. */
size_t mg_authn_b64url_len(size_t n);
int mg_authn_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/* Decodes exactly len chars. Strict: no padding, no whitespace, length mod 4
 * never 1, and unused trailing bits must be zero (one encoding per value, so
 * a signature cannot be varied). MG_EINVAL on any violation, MG_ELIMIT if
 * cap is too small. *out_len receives the byte count. */
int mg_authn_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);
/* True if every one of the len chars is in the base64url alphabet. */
bool mg_authn_b64url_alphabet(const char *in, size_t len);

#endif

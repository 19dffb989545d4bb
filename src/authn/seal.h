/* Sealed blobs: state the gateway hands to a browser and must get back
 * unread and unaltered — the session cookie, the pending authorization
 * request carried in "req" and in the OpenID "state" — plus HMACs for CSRF
 * tokens. A blob is AES-256-GCM over an expiry and the caller's bytes, with a
 * purpose string bound as associated data so that a blob sealed for one use
 * ("session") never opens as another ("authreq"). Pure apart from the CSPRNG
 * (RAND_bytes) for nonces; functions are reentrant, and a key may be shared
 * by threads once initialised.
 *
 * Wire form, base64url without padding (RFC 4648 §5):
 *   version (1 byte, 0x01) | nonce (12 random bytes) | ciphertext | tag (16)
 * where the plaintext is expires (8 bytes, big-endian Unix seconds) | data
 * and the associated data is version | purpose. With random 96-bit nonces a
 * key should seal fewer than 2^32 blobs (NIST SP 800-38D §8.3); rotate the
 * key long before that. */
#ifndef MG_AUTHN_SEAL_H
#define MG_AUTHN_SEAL_H

#include "core/common.h"

#define MG_SEAL_KEY_LEN     32 /* the shared secret, e.g. from mg_store_secret_get_or_create */
#define MG_SEAL_VERSION     1
#define MG_SEAL_NONCE_LEN   12
#define MG_SEAL_TAG_LEN     16
#define MG_SEAL_OVERHEAD    (1 + MG_SEAL_NONCE_LEN + 8 + MG_SEAL_TAG_LEN)
#define MG_SEAL_PURPOSE_MAX 64
/* A sealed blob of this much data still fits a 4096-byte cookie with its
 * name (RFC 6265 §6.1 asks browsers for at least that much). */
#define MG_SEAL_MAX_DATA 3000
/* Length of the text that seals n bytes (no NUL). */
#define MG_SEAL_LEN(n)  (((MG_SEAL_OVERHEAD + (n)) * 4 + 2) / 3)
#define MG_SEAL_MAX_LEN MG_SEAL_LEN(MG_SEAL_MAX_DATA)
#define MG_SEAL_BUF     (MG_SEAL_MAX_LEN + 1)
#define MG_SEAL_MAC_LEN 43 /* base64url of an HMAC-SHA256 */
#define MG_SEAL_MAC_BUF (MG_SEAL_MAC_LEN + 1)

/* Keys derived from the shared secret (HKDF-SHA256, RFC 5869), one per
 * algorithm, so the cipher and the MAC never share a key. Embedded; wipe with
 * mg_seal_key_fini. */
struct mg_seal_key {
    uint8_t enc[32]; /* AES-256-GCM */
    uint8_t mac[32]; /* HMAC-SHA256 */
};

/* Derives k from secret (MG_SEAL_KEY_LEN bytes, read only; the caller wipes
 * its copy). MG_EIO if OpenSSL fails (k is then wiped). */
int mg_seal_key_init(struct mg_seal_key *k, const uint8_t *secret);
/* Wipes k (OPENSSL_cleanse). */
void mg_seal_key_fini(struct mg_seal_key *k);

/* Seals len bytes of data (read only) for purpose (a NUL-terminated string of
 * 1..MG_SEAL_PURPOSE_MAX bytes) until expires (Unix seconds, > 0). Writes
 * MG_SEAL_LEN(len) base64url characters and a NUL to out; a cap of
 * MG_SEAL_BUF always suffices. MG_EINVAL for a bad purpose or expiry,
 * MG_ELIMIT if len > MG_SEAL_MAX_DATA or out is too small, MG_EIO if OpenSSL
 * or the CSPRNG fails. On failure out is an empty string (when cap > 0). */
int mg_seal_seal(const struct mg_seal_key *k, const char *purpose, int64_t expires,
                 const void *data, size_t len, char *out, size_t cap);

/* Opens len characters of sealed (read only; need not be NUL-terminated) for
 * purpose at time now (Unix seconds). On 0 the data is in out[0..*out_len)
 * (cap MG_SEAL_MAX_DATA always suffices; the caller wipes it when secret)
 * and *expires (if not NULL) holds the sealed expiry, which is > now.
 * Failures write nothing to out and give *why (if not NULL) a static reason:
 *   MG_ELIMIT   longer than MG_SEAL_MAX_LEN, or the data does not fit cap;
 *   MG_EINVAL   not a sealed blob: bad base64url, too short, unknown version,
 *               or a bad purpose argument;
 *   MG_EDENIED  does not authenticate (altered, truncated, another key or
 *               another purpose) or has expired (expires <= now);
 *   MG_EIO      OpenSSL failed. */
int mg_seal_open(const struct mg_seal_key *k, const char *purpose, int64_t now, const char *sealed,
                 size_t len, uint8_t *out, size_t cap, size_t *out_len, int64_t *expires,
                 const char **why);

/* HMAC-SHA256 under k's MAC key of purpose, a 0 byte, and len bytes of data
 * (read only): the CSRF token a form carries for the browser's CSRF cookie.
 * Writes MG_SEAL_MAC_LEN base64url characters and a NUL to out. MG_EINVAL for
 * a bad purpose, MG_EIO if OpenSSL fails (out is then ""). */
int mg_seal_mac(const struct mg_seal_key *k, const char *purpose, const void *data, size_t len,
                char out[MG_SEAL_MAC_BUF]);
/* 0 if mac (mac_len characters, need not be NUL-terminated) is mg_seal_mac of
 * purpose and data, compared in constant time; MG_EDENIED otherwise (any
 * length or garbage included), MG_EINVAL for a bad purpose, MG_EIO if
 * OpenSSL fails. */
int mg_seal_mac_verify(const struct mg_seal_key *k, const char *purpose, const void *data,
                       size_t len, const char *mac, size_t mac_len);

#endif

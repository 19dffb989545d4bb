/* Passwords of built-in accounts: argon2id (RFC 9106) through libargon2,
 * stored as PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash").
 * Parameters follow OWASP's password storage cheat sheet (19 MiB, 2 passes,
 * 1 lane). Stored strings are read back as untrusted: anything that is not
 * argon2id v1.3 within sane bounds is refused before libargon2 sees it, so a
 * tampered database cannot make a sign-in allocate a terabyte.
 *
 * Every function here is synchronous and deliberately slow (tens of
 * milliseconds, ~19 MiB of memory): the daemon calls them on the libuv
 * threadpool (uv_queue_work), never on a loop thread. They are reentrant and
 * use no globals. Passwords are bytes as given (the form parser has already
 * checked they are UTF-8); no normalisation is applied. */
#ifndef MG_AUTHN_PASSWORD_H
#define MG_AUTHN_PASSWORD_H

#include "core/common.h"

#define MG_PASSWORD_MIN_LEN 1
#define MG_PASSWORD_MAX_LEN 1024

/* What mg_password_hash uses. */
#define MG_PASSWORD_T_COST   2
#define MG_PASSWORD_M_COST   19456 /* KiB */
#define MG_PASSWORD_P        1
#define MG_PASSWORD_SALT_LEN 16
#define MG_PASSWORD_HASH_LEN 32

/* Bounds on what mg_password_verify accepts from storage. */
#define MG_PASSWORD_MAX_M_COST  1048576 /* KiB: 1 GiB */
#define MG_PASSWORD_MAX_T_COST  10
#define MG_PASSWORD_MAX_P       16
#define MG_PASSWORD_ENCODED_MAX 256 /* characters of a stored string */

/* A buffer this size holds any string mg_password_hash writes. */
#define MG_PASSWORD_HASH_BUF 128

/* Hashes the NUL-terminated password (1..1024 bytes, read only) with a fresh
 * 16-byte salt from RAND_bytes and writes the PHC string and a NUL to out
 * (cap >= MG_PASSWORD_HASH_BUF always suffices). MG_EINVAL for an empty or
 * NULL password, MG_ELIMIT for one over 1024 bytes or a small cap, MG_ENOMEM
 * if argon2 cannot allocate, MG_EIO if the CSPRNG or argon2 fails. On failure
 * out is "" (when cap > 0). */
int mg_password_hash(const char *password, char *out, size_t cap);

/* Checks the NUL-terminated password against the stored PHC string encoded
 * (both read only), comparing in constant time. 0 on a match; MG_EDENIED on a
 * mismatch, and at once (the rule is public) for a password outside 1..1024
 * bytes; MG_EINVAL if encoded is not "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH"
 * with M <= 1 GiB (and >= 8P), 1 <= T <= 10, 1 <= P <= 16, an 8..64-byte
 * salt, a 16..64-byte hash and at most MG_PASSWORD_ENCODED_MAX characters;
 * MG_ENOMEM if argon2 cannot allocate, MG_EIO for other argon2 failures. */
int mg_password_verify(const char *encoded, const char *password);

/* For a sign-in with an unknown account: does the work of a verify against a
 * fixed hash with the current parameters and returns MG_EDENIED, whatever the
 * password, so the response time does not tell which accounts exist.
 * Passwords outside 1..1024 bytes return at once, as in mg_password_verify. */
int mg_password_dummy_verify(const char *password);

/* True if encoded should be replaced by a fresh mg_password_hash after a
 * successful verify: its parameters differ from the current ones, or it is
 * not a string mg_password_verify accepts. */
bool mg_password_needs_rehash(const char *encoded);

#endif

/* argon2id password hashing; see password.h. libargon2 parses PHC strings
 * itself, but it takes their cost parameters at face value; the parser here
 * runs first and refuses anything outside the bounds, and anything but the
 * exact shape libargon2 writes, so one stored string has one meaning. */
#include "authn/password.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* The hash of 32 random bytes nobody kept, with the current parameters: what
 * mg_password_dummy_verify spends its time on. */
static const char dummy_hash[] = "$argon2id$v=19$m=19456,t=2,p=1$B7rLM377/4VEoh5hRq7+fw$"
                                 "XEkKfIyFCFDAIDEbAikrcEVTyatR8wpEIBXdMaSCECc";

struct params {
    uint32_t m, t, p;
    size_t salt_len, hash_len; /* decoded bytes */
};

/* Parses a canonical decimal (no sign, no leading zero) up to max, followed
 * by the byte end. Advances *s past end. */
static bool parse_num(const char **s, char end, uint32_t max, uint32_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9') {
        v = v * 10 + (uint64_t)(p[n] - '0');
        if (v > max)
            return false;
        n++;
    }
    if (n == 0 || (n > 1 && p[0] == '0') || p[n] != end)
        return false;
    *out = (uint32_t)v;
    *s = p + n + 1;
    return true;
}

static bool is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Standard base64 without padding (PHC): n characters decode to 3n/4 bytes
 * rounded down; n mod 4 == 1 is impossible. Advances *s past end. */
static bool parse_b64(const char **s, char end, size_t min, size_t max, size_t *out_len)
{
    const char *p = *s;
    size_t n = 0;
    while (is_b64(p[n]))
        n++;
    if (p[n] != end || n % 4 == 1)
        return false;
    /* Canonical: the unused low bits of the last character are zero. */
    if (n % 4 != 0) {
        char c = p[n - 1];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                                       : 63;
        if (v & (n % 4 == 2 ? 0xf : 0x3))
            return false;
    }
    size_t bytes = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (bytes < min || bytes > max)
        return false;
    *out_len = bytes;
    *s = p + n + (end != '\0');
    return true;
}

static int parse(const char *encoded, struct params *pr)
{
    static const char prefix[] = "$argon2id$v=19$m=";
    if (encoded == NULL || strnlen(encoded, MG_PASSWORD_ENCODED_MAX + 1) > MG_PASSWORD_ENCODED_MAX)
        return MG_EINVAL;
    if (strncmp(encoded, prefix, sizeof prefix - 1) != 0)
        return MG_EINVAL;
    const char *s = encoded + sizeof prefix - 1;
    if (!parse_num(&s, ',', MG_PASSWORD_MAX_M_COST, &pr->m) || strncmp(s, "t=", 2) != 0)
        return MG_EINVAL;
    s += 2;
    if (!parse_num(&s, ',', MG_PASSWORD_MAX_T_COST, &pr->t) || strncmp(s, "p=", 2) != 0)
        return MG_EINVAL;
    s += 2;
    if (!parse_num(&s, '$', MG_PASSWORD_MAX_P, &pr->p))
        return MG_EINVAL;
    if (pr->t < 1 || pr->p < 1 || pr->m < ARGON2_MIN_MEMORY * pr->p)
        return MG_EINVAL;
    if (!parse_b64(&s, '$', 8, 64, &pr->salt_len) || !parse_b64(&s, '\0', 16, 64, &pr->hash_len))
        return MG_EINVAL;
    return MG_OK;
}

static bool password_len_ok(const char *password, size_t *len)
{
    if (password == NULL)
        return false;
    *len = strnlen(password, MG_PASSWORD_MAX_LEN + 1);
    return *len >= MG_PASSWORD_MIN_LEN && *len <= MG_PASSWORD_MAX_LEN;
}

static int from_argon2(int a)
{
    switch (a) {
    case ARGON2_OK: return MG_OK;
    case ARGON2_VERIFY_MISMATCH: return MG_EDENIED;
    case ARGON2_MEMORY_ALLOCATION_ERROR: return MG_ENOMEM;
    case ARGON2_DECODING_FAIL:
    case ARGON2_DECODING_LENGTH_FAIL:
    case ARGON2_INCORRECT_TYPE: return MG_EINVAL;
    default: return MG_EIO;
    }
}

int mg_password_hash(const char *password, char *out, size_t cap)
{
    uint8_t salt[MG_PASSWORD_SALT_LEN];
    size_t len = 0;
    size_t need = argon2_encodedlen(MG_PASSWORD_T_COST, MG_PASSWORD_M_COST, MG_PASSWORD_P,
                                    MG_PASSWORD_SALT_LEN, MG_PASSWORD_HASH_LEN, Argon2_id);
    int rc = MG_EINVAL;

    MG_ASSERT(need <= MG_PASSWORD_HASH_BUF);
    if (cap > 0)
        out[0] = '\0';
    if (password == NULL || password[0] == '\0')
        goto out;
    rc = MG_ELIMIT;
    if (!password_len_ok(password, &len) || cap < need)
        goto out;
    rc = MG_EIO;
    if (RAND_bytes(salt, sizeof salt) != 1)
        goto out;
    rc = from_argon2(argon2id_hash_encoded(MG_PASSWORD_T_COST, MG_PASSWORD_M_COST, MG_PASSWORD_P,
                                           password, len, salt, sizeof salt, MG_PASSWORD_HASH_LEN,
                                           out, cap));
    if (rc == MG_EDENIED || rc == MG_EINVAL)
        rc = MG_EIO; /* neither can come from hashing */
out:
    OPENSSL_cleanse(salt, sizeof salt);
    if (rc != MG_OK && cap > 0)
        out[0] = '\0';
    return rc;
}

int mg_password_verify(const char *encoded, const char *password)
{
    struct params pr;
    size_t len = 0;
    int rc = parse(encoded, &pr);
    if (rc != MG_OK)
        return rc;
    if (!password_len_ok(password, &len))
        return MG_EDENIED;
    return from_argon2(argon2id_verify(encoded, password, len));
}

int mg_password_dummy_verify(const char *password)
{
    size_t len = 0;
    if (password_len_ok(password, &len))
        (void)argon2id_verify(dummy_hash, password, len);
    return MG_EDENIED;
}

bool mg_password_needs_rehash(const char *encoded)
{
    struct params pr;
    if (parse(encoded, &pr) != MG_OK)
        return true;
    return pr.m != MG_PASSWORD_M_COST || pr.t != MG_PASSWORD_T_COST || pr.p != MG_PASSWORD_P ||
           pr.salt_len != MG_PASSWORD_SALT_LEN || pr.hash_len != MG_PASSWORD_HASH_LEN;
}

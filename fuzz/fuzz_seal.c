/* libFuzzer target for sealed blobs (src/authn/seal). A fixed key (bytes
 * 0..31) and a fixed clock (1700000000). First byte 'S': the rest is data,
 * sealed for "fuzz" and opened again (same bytes and expiry back; refused as
 * another purpose, with another key and once expired). First byte 'M': the
 * rest is a CSRF MAC to verify against fixed data. Otherwise the rest is
 * opened as a "session" blob: only the statuses in seal.h may come back,
 * nothing is written on failure, and a success (possible only for a blob the
 * key sealed, such as the seed fuzz/corpus/seal/valid_session) must give
 * data within the bound and an expiry after now. */
#include "authn/seal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000

static void setup(struct mg_seal_key *k, struct mg_seal_key *other)
{
    uint8_t secret[MG_SEAL_KEY_LEN];
    for (size_t i = 0; i < sizeof secret; i++)
        secret[i] = (uint8_t)i;
    MG_ASSERT(mg_seal_key_init(k, secret) == MG_OK);
    secret[0] ^= 0x80;
    MG_ASSERT(mg_seal_key_init(other, secret) == MG_OK);
}

static void seal_mode(const struct mg_seal_key *k, const struct mg_seal_key *other,
                      const uint8_t *in, size_t len)
{
    static char s[MG_SEAL_BUF];
    static uint8_t out[MG_SEAL_MAX_DATA];
    size_t n = 0;
    int64_t exp = 0;
    int rc = mg_seal_seal(k, "fuzz", NOW + 60, in, len, s, sizeof s);
    if (len > MG_SEAL_MAX_DATA) {
        MG_ASSERT(rc == MG_ELIMIT && s[0] == '\0');
        return;
    }
    MG_ASSERT(rc == MG_OK && strlen(s) == MG_SEAL_LEN(len));
    MG_ASSERT(mg_seal_open(k, "fuzz", NOW, s, strlen(s), out, sizeof out, &n, &exp, NULL) == MG_OK);
    MG_ASSERT(n == len && (len == 0 || memcmp(out, in, len) == 0) && exp == NOW + 60);
    MG_ASSERT(mg_seal_open(k, "fuzZ", NOW, s, strlen(s), out, sizeof out, &n, NULL, NULL) ==
              MG_EDENIED);
    MG_ASSERT(mg_seal_open(other, "fuzz", NOW, s, strlen(s), out, sizeof out, &n, NULL, NULL) ==
              MG_EDENIED);
    MG_ASSERT(mg_seal_open(k, "fuzz", NOW + 60, s, strlen(s), out, sizeof out, &n, NULL, NULL) ==
              MG_EDENIED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mg_seal_key k, other;
    static bool ready;
    static uint8_t out[MG_SEAL_MAX_DATA];
    if (!ready) {
        setup(&k, &other);
        ready = true;
    }
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] == 'S') {
        seal_mode(&k, &other, data + 1, len);
        return 0;
    }
    if (data[0] == 'M') {
        int rc = mg_seal_mac_verify(&k, "csrf", "fixed", 5, in, len);
        char want[MG_SEAL_MAC_BUF];
        MG_ASSERT(mg_seal_mac(&k, "csrf", "fixed", 5, want) == MG_OK);
        bool same = len == MG_SEAL_MAC_LEN && memcmp(in, want, len) == 0;
        MG_ASSERT(same ? rc == MG_OK : rc == MG_EDENIED);
        return 0;
    }
    size_t n = 12345;
    int64_t exp = -1;
    const char *why = NULL;
    int rc = mg_seal_open(&k, "session", NOW, in, len, out, sizeof out, &n, &exp, &why);
    if (rc == MG_OK) {
        MG_ASSERT(n <= MG_SEAL_MAX_DATA && exp > NOW && why == NULL);
    } else {
        MG_ASSERT(rc == MG_EINVAL || rc == MG_EDENIED || rc == MG_ELIMIT);
        MG_ASSERT(n == 12345 && exp == -1 && why != NULL);
        MG_ASSERT(rc != MG_ELIMIT || len > MG_SEAL_MAX_LEN);
    }
    return 0;
}

/* Identity values and the token cache: JSON round trips, bounds, and the
 * cache's trust rules (generation, store freshness, expiry, negatives). */
#include "authn/identity.h"
#include "authn/tokcache.h"
#include "tap.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_json(void)
{
    struct mg_identity *id = mg_identity_new();
    free(id->subject);
    id->subject = mg_xstrdup("user:ann@example.com");
    free(id->email);
    id->email = mg_xstrdup("ann@example.com");
    free(id->name);
    id->name = mg_xstrdup("Ann \"<x>\"");
    free(id->idp);
    id->idp = mg_xstrdup("builtin");
    id->method = MG_AUTH_OAUTH;
    json_t *g = json_pack("[s,s,i,s]", "eng", "admins", 7, "");
    TAP_IS_INT(mg_identity_set_groups_json(id, g), 0, "groups from JSON");
    json_decref(g);
    TAP_IS_INT(id->n_groups, 2, "non-strings and empty strings skipped");
    TAP_OK(mg_identity_in_group(id, "admins") && !mg_identity_in_group(id, "admin"),
           "group membership is exact");
    json_object_set_new(id->claims, "dept", json_string("R&D"));

    struct mg_buf b;
    mg_buf_init(&b, 65536);
    TAP_IS_INT(mg_identity_to_json(id, &b), 0, "to JSON");
    struct mg_identity *back = NULL;
    TAP_IS_INT(mg_identity_from_json(b.data, b.len, &back), 0, "from JSON");
    TAP_IS_STR(back->subject, "user:ann@example.com", "subject survives");
    TAP_IS_STR(back->email, "ann@example.com", "email survives");
    TAP_IS_STR(back->name, "Ann \"<x>\"", "name survives");
    TAP_IS_STR(back->idp, "builtin", "idp survives");
    TAP_IS_INT(back->method, MG_AUTH_OAUTH, "method survives");
    TAP_IS_INT(back->n_groups, 2, "groups survive");
    TAP_IS_STR(json_string_value(json_object_get(back->claims, "dept")), "R&D", "claims survive");
    TAP_IS_STR(back->client_id, "", "client id is not part of the stored form");
    mg_identity_unref(back);
    mg_buf_fini(&b);
    mg_identity_unref(id);

    static const char *const bad[] = {
        "",
        "[]",
        "{\"sub\": 1}",
        "{\"sub\": \"a\", \"sub\": \"b\"}",
        "{\"groups\": {}}",
        "{\"claims\": []}",
        "{\"email\": \"a\\u0000b\"}",
        "not json",
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        struct mg_identity *x = NULL;
        TAP_IS_INT(mg_identity_from_json(bad[i], strlen(bad[i]), &x), MG_EINVAL,
                   "refused: %s", bad[i]);
        TAP_OK(x == NULL, "nothing returned for a refused document");
    }
    char *big = mg_xmalloc(70000);
    memset(big, ' ', 69999);
    big[0] = '{';
    big[69998] = '}';
    big[69999] = '\0';
    struct mg_identity *x = NULL;
    TAP_IS_INT(mg_identity_from_json(big, strlen(big), &x), MG_ELIMIT, "over 64 KiB: MG_ELIMIT");
    free(big);

    json_t *many = json_array();
    for (int i = 0; i < 300; i++)
        json_array_append_new(many, json_sprintf("g%d", i));
    x = mg_identity_new();
    mg_identity_set_groups_json(x, many);
    TAP_IS_INT(x->n_groups, MG_IDENTITY_MAX_GROUPS, "groups capped at %d", MG_IDENTITY_MAX_GROUPS);
    json_decref(many);
    mg_identity_unref(x);
    TAP_IS_STR(mg_auth_method_name(MG_AUTH_SERVICE), "service_account", "method names");
    TAP_IS_STR(mg_auth_method_name((enum mg_auth_method)99), "none", "unknown method name");
}

static void test_cache(void)
{
    char dir[] = "/tmp/mg-test-tokcache-XXXXXX";
    bool made = mkdtemp(dir) != NULL;
    TAP_OK(made, "temp dir");
    char dsn[128];
    snprintf(dsn, sizeof dsn, "sqlite:%s/s.db", dir);
    struct mg_store *st = NULL;
    TAP_IS_INT(mg_store_open(dsn, &st, NULL), 0, "store opens");
    TAP_IS_INT(mg_store_migrate(st, 1), 0, "store migrates");

    struct mg_tokcache *c = NULL;
    char *err = NULL;
    TAP_IS_INT(mg_tokcache_new(dsn, 2000, &c, &err), 0, "cache starts");
    for (int i = 0; i < 100 && !mg_tokcache_store_fresh(c); i++)
        sleep_ms(10);
    TAP_OK(mg_tokcache_store_fresh(c), "the watcher heard from the store");

    uint8_t h1[32], h2[32];
    memset(h1, 0xa1, sizeof h1);
    memset(h2, 0xb2, sizeof h2);
    int64_t now = (int64_t)time(NULL);
    struct mg_identity *id = mg_identity_new(), *got = NULL;
    uint64_t gen = mg_tokcache_generation(c);
    mg_tokcache_put(c, h1, id, now + 60, gen);
    mg_identity_unref(id);
    TAP_IS_INT(mg_tokcache_get(c, h1, now, &got), 1, "hit");
    TAP_OK(got == id, "the same identity, referenced");
    mg_identity_unref(got);
    TAP_IS_INT(mg_tokcache_get(c, h2, now, &got), 0, "another hash misses");
    TAP_IS_INT(mg_tokcache_get(c, h1, now + 60, &got), 0, "expired entries miss");

    mg_tokcache_put(c, h2, NULL, now + 1, gen);
    TAP_IS_INT(mg_tokcache_get(c, h2, now, &got), 1, "negative answers are cached");
    TAP_OK(got == NULL, "as NULL");

    id = mg_identity_new();
    mg_tokcache_put(c, h1, id, now + 60, gen - 1);
    mg_identity_unref(id);
    TAP_IS_INT(mg_tokcache_get(c, h1, now, &got), 0,
               "an entry loaded before a revocation never counts");

    id = mg_identity_new();
    mg_tokcache_put(c, h1, id, now + 60, mg_tokcache_generation(c));
    mg_identity_unref(id);
    mg_tokcache_invalidate(c);
    TAP_IS_INT(mg_tokcache_get(c, h1, now, &got), 0, "invalidate drops everything at once");

    /* A revocation through another handle (the CLI, another instance). */
    id = mg_identity_new();
    gen = mg_tokcache_generation(c);
    mg_tokcache_put(c, h1, id, now + 60, gen);
    mg_identity_unref(id);
    struct mg_store_token t = {.kind = MG_STORE_TOKEN_ACCESS, .subject = "s", .expires_at = now + 60,
                               .created_at = now};
    memset(t.hash, 0x11, sizeof t.hash);
    TAP_IS_INT(mg_store_token_insert(st, &t), 0, "a token stored");
    size_t n = 0;
    TAP_IS_INT(mg_store_token_revoke(st, t.hash, now, &n), 0, "revoked elsewhere");
    int waited = 0;
    while (mg_tokcache_generation(c) == gen && waited < 1000) {
        sleep_ms(10);
        waited += 10;
    }
    TAP_OK(waited < 1000, "the watcher saw the revocation within 1 s (%d ms)", waited);
    TAP_IS_INT(mg_tokcache_get(c, h1, now, &got), 0, "and cached entries stopped counting");

    mg_tokcache_free(c);
    mg_store_free(st);
    /* A cache whose store is gone: nothing counts once it is stale. */
    TAP_IS_INT(mg_tokcache_new("sqlite:/nonexistent-dir-mcpgate/x.db", 200, &c, &err), MG_EIO,
               "a store that cannot open fails at start");
    free(err);
    char path[160];
    snprintf(path, sizeof path, "%s/s.db", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/s.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/s.db-shm", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_json();
    test_cache();
    return tap_done();
}

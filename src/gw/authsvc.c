/* Process-wide identity services; see authsvc.h. */
#include "gw/authsvc.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <time.h>
#include <uv.h>

/* Cached tokens stop counting when the store has been silent this long. */
#define STALE_MS 2000

struct key_job {
    uint8_t *out;
};

static int load_key(struct mg_store *st, void *arg)
{
    struct key_job *k = arg;
    uint8_t cand[MG_AUTHSVC_KEY_LEN];
    size_t n = 0;
    if (RAND_bytes(cand, sizeof cand) != 1)
        return MG_EIO;
    int rc = mg_store_secret_get_or_create(st, "seal-key-v1", cand, sizeof cand, k->out,
                                           MG_AUTHSVC_KEY_LEN, &n);
    OPENSSL_cleanse(cand, sizeof cand);
    if (rc == 0 && n != MG_AUTHSVC_KEY_LEN)
        rc = MG_EINVAL;
    return rc;
}

int mg_authsvc_new(const struct mg_conf *conf, struct mg_authsvc **out, struct mg_buf *err)
{
    *out = NULL;
    struct mg_authsvc *a = mg_xcalloc(1, sizeof *a);
    char *e = NULL;
    /* One handle per threadpool thread: jobs never wait for a handle. */
    size_t n = 4;
    const char *tp = getenv("UV_THREADPOOL_SIZE");
    if (tp && *tp) {
        long v = strtol(tp, NULL, 10);
        if (v > 0 && v <= 1024)
            n = (size_t)v;
    }
    int rc = mg_store_pool_new(conf->store_dsn, n, 4096, (int64_t)time(NULL), &a->pool, &e);
    if (rc < 0) {
        mg_buf_appendf(err, "store %s: %s", conf->store_dsn, e ? e : mg_strstatus(rc));
        goto fail;
    }
    struct key_job kj = {a->seal_key};
    rc = mg_store_pool_run(a->pool, load_key, &kj);
    if (rc < 0) {
        mg_buf_appendf(err, "store: cannot load the sealing key: %s", mg_strstatus(rc));
        goto fail;
    }
    rc = mg_tokcache_new(conf->store_dsn, STALE_MS, &a->cache, &e);
    if (rc < 0) {
        mg_buf_appendf(err, "token cache: %s", e ? e : mg_strstatus(rc));
        goto fail;
    }
    *out = a;
    return 0;
fail:
    free(e);
    mg_authsvc_free(a);
    return rc;
}

void mg_authsvc_free(struct mg_authsvc *a)
{
    if (a == NULL)
        return;
    mg_tokcache_free(a->cache);
    mg_store_pool_free(a->pool);
    OPENSSL_cleanse(a->seal_key, sizeof a->seal_key);
    free(a);
}

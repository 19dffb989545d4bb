/* Unit tests for src/authn/jwks_cache (and net/fetch_cache beneath it),
 * against a JWKS served by a test server on a thread: fetch once then serve
 * from memory; key rotation (an unknown kid refetches once and verifies); the
 * per-URL refetch rate limit against forged kids; expiry; a failed refetch
 * keeping the old set; a set held by a reader surviving its replacement; an
 * unreachable issuer failing fast and not being retried inside the limit;
 * concurrent requests on one loop and on two worker threads sharing one
 * fetch; cancellation; bounded entries. */
#include "authn/jwks_cache.h"
#include "net/stream.h"
#include "jwtsign.h"
#include "tap.h"
#include "testsrv.h"

#include <time.h>

#define ISS "https://issuer.example"
#define AUD "mcpgate"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *jwks_text; /* what /jwks serves */
static int jwks_status = 200;
static int delay_ms;
static atomic_int n_fetches;

static int handler(void *ud, const struct tsrv_req *r, struct mg_buf *out)
{
    MG_UNUSED(ud);
    if (strncmp(r->path, "/jwks", 5) != 0) {
        tsrv_reply(out, 404, "text/plain", "no", 2);
        return TSRV_REPLY;
    }
    atomic_fetch_add(&n_fetches, 1);
    pthread_mutex_lock(&mu);
    int d = delay_ms, st = jwks_status;
    char *text = mg_xstrdup(jwks_text);
    pthread_mutex_unlock(&mu);
    if (d)
        usleep((useconds_t)d * 1000);
    tsrv_reply(out, st, "application/jwk-set+json", text, strlen(text));
    free(text);
    return TSRV_REPLY;
}

static void serve_keys(EVP_PKEY *const *keys, const char *const *kids, size_t n)
{
    char *t = ts_jwks_text(keys, kids, n);
    pthread_mutex_lock(&mu);
    free(jwks_text);
    jwks_text = t;
    pthread_mutex_unlock(&mu);
}

static void set_status(int st)
{
    pthread_mutex_lock(&mu);
    jwks_status = st;
    pthread_mutex_unlock(&mu);
}

static uv_loop_t loop;
static struct mg_client_pool pool;
static struct mg_jwks_cache *cache;
static const struct mg_fetch_opts fopts = {.allow_http = true, .timeout_ms = 3000};

struct got {
    int calls, status;
    struct mg_jwks_cache_keys *keys;
    json_t *claims;
    char why[400];
};

static void on_keys(void *ud, int status, struct mg_jwks_cache_keys *keys, const char *error)
{
    struct got *g = ud;
    g->calls++;
    g->status = status;
    g->keys = keys;
    snprintf(g->why, sizeof g->why, "%s", error);
}

static void on_verified(void *ud, int status, json_t *claims, const char *why)
{
    struct got *g = ud;
    g->calls++;
    g->status = status;
    g->claims = claims;
    snprintf(g->why, sizeof g->why, "%s", why ? why : "");
}

static void run_until(const int *calls, int n)
{
    uint64_t t0 = mg_now_ms();
    while (*calls < n && mg_now_ms() - t0 < 10000)
        uv_run(&loop, UV_RUN_ONCE);
}

static struct got get(const char *url, bool refetch)
{
    struct got g = {0};
    MG_ASSERT(mg_jwks_cache_get(cache, &pool, url, &fopts, refetch, on_keys, &g, NULL) == 0);
    run_until(&g.calls, 1);
    return g;
}

static struct got verify(const char *url, const char *token)
{
    struct got g = {0};
    struct mg_jwt_expect e = {.issuer = ISS, .audience = AUD, .leeway = 60};
    MG_ASSERT(mg_jwks_cache_verify(cache, &pool, url, &fopts, token, &e, on_verified, &g, NULL) ==
              0);
    run_until(&g.calls, 1);
    json_decref(g.claims);
    return g;
}

static char *token(EVP_PKEY *k, const char *kid)
{
    char payload[256];
    snprintf(payload, sizeof payload, "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"u1\",\"exp\":%lld}",
             ISS, AUD, (long long)time(NULL) + 300);
    return ts_sign_es256(k, kid, payload);
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* ---- a second worker thread ---- */

struct worker {
    pthread_t th;
    const char *url;
    struct got g;
    size_t n_keys;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uv_loop_t l;
    struct mg_client_pool p;
    uv_loop_init(&l);
    mg_client_pool_init(&p, &l, 65536);
    MG_ASSERT(mg_jwks_cache_get(cache, &p, w->url, &fopts, false, on_keys, &w->g, NULL) == 0);
    while (w->g.calls == 0)
        uv_run(&l, UV_RUN_ONCE);
    w->n_keys = w->g.keys ? mg_jwks_count(mg_jwks_cache_keys_set(w->g.keys)) : 0;
    mg_jwks_cache_keys_unref(w->g.keys);
    mg_client_pool_close(&p);
    mg_stream_loop_fini();
    uv_run(&l, UV_RUN_DEFAULT);
    MG_ASSERT(uv_loop_close(&l) == 0);
    mg_http_parser_thread_fini();
    return NULL;
}

int main(void)
{
    struct tsrv srv;
    char url[256], url2[256], url3[256], dead[256];
    EVP_PKEY *k1 = ts_ec_key(), *k2 = ts_ec_key(), *k3 = ts_ec_key();
    EVP_PKEY *set1[] = {k1}, *set12[] = {k1, k2};
    const char *kids1[] = {"k1"}, *kids12[] = {"k1", "k2"};
    serve_keys(set1, kids1, 1);
    MG_ASSERT(tsrv_start(&srv, "127.0.0.1", NULL, handler, NULL, true) == 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/jwks", srv.port);
    snprintf(url2, sizeof url2, "http://127.0.0.1:%u/jwks?two", srv.port);
    snprintf(url3, sizeof url3, "http://127.0.0.1:%u/jwks?three", srv.port);
    snprintf(dead, sizeof dead, "http://127.0.0.1:%u/jwks", tsrv_closed_port());
    uv_loop_init(&loop);
    mg_client_pool_init(&pool, &loop, 65536);
    struct mg_jwks_cache_opts copts = {.ttl_ms = 1500, .min_refetch_ms = 400, .max_entries = 3};
    cache = mg_jwks_cache_new(&copts);
    struct mg_jwks_cache_keys *held = NULL;

    /* First use fetches, the next ones are served from memory. */
    TAP_IS_INT(mg_jwks_cache_peek(cache, url, &held), MG_ENOTFOUND, "nothing cached at first");
    char *t1 = token(k1, "k1");
    json_t *claims = NULL;
    const char *why = NULL;
    struct mg_jwt_expect exp = {.issuer = ISS, .audience = AUD, .leeway = 60};
    TAP_IS_INT(mg_jwks_cache_verify_cached(cache, url, t1, &exp, &claims, &why), MG_EAGAIN,
               "verify_cached without keys: MG_EAGAIN (%s)", why);
    struct got g = get(url, false);
    TAP_IS_INT(g.status, 0, "get fetches the set (%s)", g.why);
    TAP_OK(g.keys && mg_jwks_count(mg_jwks_cache_keys_set(g.keys)) == 1, "one key");
    mg_jwks_cache_keys_unref(g.keys);
    TAP_IS_INT(atomic_load(&n_fetches), 1, "one fetch");
    g = get(url, false);
    TAP_OK(g.status == 0 && g.keys, "second get");
    mg_jwks_cache_keys_unref(g.keys);
    TAP_IS_INT(atomic_load(&n_fetches), 1, "answered from the cache");
    TAP_IS_INT(mg_jwks_cache_peek(cache, url, &held), 0, "peek finds it");
    TAP_IS_INT(mg_jwks_cache_verify_cached(cache, url, t1, &exp, &claims, &why), 0,
               "verify_cached with a known kid");
    TAP_OK(json_is_object(claims) &&
               strcmp(json_string_value(json_object_get(claims, "sub")), "u1") == 0,
           "claims returned");
    json_decref(claims);
    g = verify(url, t1);
    TAP_IS_INT(g.status, 0, "async verify (%s)", g.why);
    TAP_IS_INT(atomic_load(&n_fetches), 1, "still one fetch");

    /* Rotation: the issuer now also publishes k2 and signs with it. */
    serve_keys(set12, kids12, 2);
    sleep_ms(450); /* past the refetch limit since the first fetch */
    char *t2 = token(k2, "k2");
    TAP_IS_INT(mg_jwks_cache_verify_cached(cache, url, t2, &exp, &claims, &why), MG_EAGAIN,
               "unknown kid: verify_cached asks for the async path (%s)", why);
    g = verify(url, t2);
    TAP_IS_INT(g.status, 0, "new kid verifies after one refetch (%s)", g.why);
    TAP_IS_INT(atomic_load(&n_fetches), 2, "exactly one refetch");
    TAP_IS_INT(mg_jwks_cache_verify_cached(cache, url, t2, &exp, &claims, &why), 0,
               "the new set is cached");
    json_decref(claims);
    /* The set held from before the rotation is still a valid object. */
    TAP_IS_INT(mg_jwks_count(mg_jwks_cache_keys_set(held)), 1, "a held set survives replacement");
    mg_jwks_cache_keys_unref(held);

    /* Forged kids do not hammer the issuer. */
    char *t3 = token(k3, "k3");
    g = verify(url, t3);
    TAP_IS_INT(g.status, MG_EDENIED, "unknown kid right after a refetch: denied");
    TAP_OK(strstr(g.why, "no matching key") != NULL, "reason: %s", g.why);
    TAP_IS_INT(atomic_load(&n_fetches), 2, "no refetch inside the rate limit");
    for (int i = 0; i < 20; i++)
        verify(url, t3);
    TAP_IS_INT(atomic_load(&n_fetches), 2, "twenty more forged kids: still none");
    sleep_ms(450);
    g = verify(url, t3);
    TAP_IS_INT(g.status, MG_EDENIED, "after the limit: one refetch, still denied");
    TAP_IS_INT(atomic_load(&n_fetches), 3, "that refetch happened");
    g = get(url, true);
    TAP_IS_INT(atomic_load(&n_fetches), 3, "an explicit refetch is rate-limited too");
    mg_jwks_cache_keys_unref(g.keys);

    /* A failed refetch keeps the old set. */
    set_status(500);
    sleep_ms(1600); /* past the TTL */
    TAP_IS_INT(mg_jwks_cache_peek(cache, url, &held), MG_ENOTFOUND, "expired: peek says fetch");
    g = get(url, false);
    TAP_IS_INT(atomic_load(&n_fetches), 4, "expired set refetched");
    TAP_IS_INT(g.status, 0, "the refetch failed, the old set is served");
    TAP_OK(g.keys && mg_jwks_count(mg_jwks_cache_keys_set(g.keys)) == 2, "with both keys");
    mg_jwks_cache_keys_unref(g.keys);
    TAP_IS_INT(mg_jwks_cache_peek(cache, url, &held), 0, "and peek serves it meanwhile");
    mg_jwks_cache_keys_unref(held);
    g = verify(url, t2);
    TAP_IS_INT(g.status, 0, "tokens still verify while the issuer is failing");
    set_status(200);

    /* An issuer that cannot be reached fails fast, and is not retried at once. */
    uint64_t t0 = mg_now_ms();
    g = get(dead, false);
    TAP_IS_INT(g.status, MG_EIO, "closed port: MG_EIO");
    TAP_OK(strstr(g.why, "cannot fetch the JWKS") && strstr(g.why, "cannot connect"), "reason: %s",
           g.why);
    TAP_OK(mg_now_ms() - t0 < 2000, "within the timeout");
    g = get(dead, false);
    TAP_IS_INT(g.status, MG_EIO, "again inside the limit: the same error, no new attempt");
    g = verify(dead, t1);
    TAP_IS_INT(g.status, MG_EIO, "verify reports the fetch failure");
    TAP_OK(strstr(g.why, "cannot connect") != NULL, "reason: %s", g.why);

    /* Requests on one loop share one fetch. */
    pthread_mutex_lock(&mu);
    delay_ms = 300;
    pthread_mutex_unlock(&mu);
    int before = atomic_load(&n_fetches);
    struct got a = {0}, b = {0}, c = {0};
    MG_ASSERT(mg_jwks_cache_get(cache, &pool, url2, &fopts, false, on_keys, &a, NULL) == 0);
    MG_ASSERT(mg_jwks_cache_get(cache, &pool, url2, &fopts, false, on_keys, &b, NULL) == 0);
    struct mg_jwks_cache_req *cr = NULL;
    MG_ASSERT(mg_jwks_cache_get(cache, &pool, url2, &fopts, false, on_keys, &c, &cr) == 0);
    mg_jwks_cache_cancel(cr);
    run_until(&a.calls, 1);
    run_until(&b.calls, 1);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    TAP_OK(a.status == 0 && b.status == 0 && a.keys && b.keys, "both waiters got the set");
    TAP_IS_INT(c.calls, 0, "the cancelled one was never called");
    TAP_IS_INT(atomic_load(&n_fetches) - before, 1, "three requests, one fetch");
    mg_jwks_cache_keys_unref(a.keys);
    mg_jwks_cache_keys_unref(b.keys);

    /* Two worker threads share one fetch too. */
    before = atomic_load(&n_fetches);
    struct worker w = {.url = url3};
    struct got m = {0};
    MG_ASSERT(pthread_create(&w.th, NULL, worker_main, &w) == 0);
    sleep_ms(50); /* the worker starts the fetch; this thread joins it */
    MG_ASSERT(mg_jwks_cache_get(cache, &pool, url3, &fopts, false, on_keys, &m, NULL) == 0);
    run_until(&m.calls, 1);
    pthread_join(w.th, NULL);
    TAP_OK(w.g.status == 0 && w.n_keys == 2, "the other worker got the set on its own loop");
    TAP_OK(m.status == 0 && m.keys, "this one too");
    TAP_IS_INT(atomic_load(&n_fetches) - before, 1, "one fetch for both threads");
    mg_jwks_cache_keys_unref(m.keys);

    /* A cancelled request does not stop the fetch that fills the cache. */
    pthread_mutex_lock(&mu);
    delay_ms = 100;
    pthread_mutex_unlock(&mu);
    sleep_ms(1600); /* url2 expires */
    struct got d = {0};
    MG_ASSERT(mg_jwks_cache_get(cache, &pool, url2, &fopts, true, on_keys, &d, &cr) == 0);
    mg_jwks_cache_cancel(cr);
    t0 = mg_now_ms();
    while (mg_now_ms() - t0 < 600)
        uv_run(&loop, UV_RUN_NOWAIT);
    TAP_IS_INT(d.calls, 0, "cancelled: no callback");
    TAP_IS_INT(mg_jwks_cache_peek(cache, url2, &held), 0, "but the set was fetched");
    mg_jwks_cache_keys_unref(held);

    /* Entries are bounded: a fourth URL evicts the least recently used. */
    char url4[256];
    snprintf(url4, sizeof url4, "http://127.0.0.1:%u/jwks?four", srv.port);
    g = get(url4, false);
    TAP_IS_INT(g.status, 0, "a fourth URL with max_entries 3");
    mg_jwks_cache_keys_unref(g.keys);

    /* Not a key set. */
    pthread_mutex_lock(&mu);
    free(jwks_text);
    jwks_text =
        mg_xstrdup("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}");
    delay_ms = 0;
    pthread_mutex_unlock(&mu);
    char url5[256];
    snprintf(url5, sizeof url5, "http://127.0.0.1:%u/jwks?five", srv.port);
    g = get(url5, false);
    TAP_IS_INT(g.status, MG_EPROTO, "a set without one usable key is an error");
    TAP_OK(strstr(g.why, "no usable") != NULL, "reason: %s", g.why);
    struct mg_jwt_expect bad_exp = {.issuer = ISS};
    TAP_IS_INT(mg_jwks_cache_verify(cache, &pool, url, &fopts, t1, &bad_exp, on_verified, &g, NULL),
               MG_EINVAL, "no audience: refused at once");

    free(t1);
    free(t2);
    free(t3);
    mg_client_pool_close(&pool);
    mg_stream_loop_fini();
    uv_run(&loop, UV_RUN_DEFAULT);
    TAP_IS_INT(uv_loop_close(&loop), 0, "the loop closes with nothing left open");
    mg_jwks_cache_free(cache);
    tsrv_stop(&srv);
    free(jwks_text);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
    return tap_done();
}

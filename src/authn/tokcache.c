/* Token cache and revocation watcher. See tokcache.h for the rules. */
#include "authn/tokcache.h"

#include "core/log.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define N_STRIPES        256
#define WATCH_TIMEOUT_MS 250

struct slot {
    uint8_t hash[32];
    bool used;
    struct mg_identity *id; /* NULL: known not to exist */
    int64_t expires_at;
    uint64_t gen;
};

struct mg_tokcache {
    struct slot *slots;
    pthread_mutex_t stripes[N_STRIPES];
    _Atomic uint64_t gen;
    _Atomic int64_t last_ok_ms; /* monotonic ms of the watcher's last good answer */
    int64_t stale_ms;
    struct mg_store *st; /* the watcher's own handle */
    pthread_t thread;
    _Atomic bool stop;
    bool started;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watch(void *arg)
{
    struct mg_tokcache *c = arg;
    uint64_t known = 0, seq = 0;
    bool have = false, failing = false;
    while (!atomic_load(&c->stop)) {
        int rc = have ? mg_store_revocation_wait(c->st, known, WATCH_TIMEOUT_MS, &seq)
                      : mg_store_revocation_seq(c->st, &seq);
        if (rc < 0) {
            if (!failing)
                mg_log_warn("token cache: the store does not answer (%s); cached tokens are "
                            "not trusted until it does",
                            mg_store_last_error(c->st));
            failing = true;
            /* Back off a little; each call has its own timeouts. */
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (failing)
            mg_log_info("token cache: the store answers again");
        failing = false;
        if (!have || seq != known) {
            /* Anything revoked while we were not looking is covered too:
             * a new generation invalidates every entry. */
            atomic_fetch_add(&c->gen, 1);
            known = seq;
            have = true;
        }
        atomic_store(&c->last_ok_ms, mono_ms());
    }
    return NULL;
}

int mg_tokcache_new(const char *dsn, int64_t stale_ms, struct mg_tokcache **out, char **err)
{
    *out = NULL;
    struct mg_tokcache *c = mg_xcalloc(1, sizeof *c);
    c->slots = mg_xcalloc(MG_TOKCACHE_SLOTS, sizeof *c->slots);
    for (size_t i = 0; i < N_STRIPES; i++)
        pthread_mutex_init(&c->stripes[i], NULL);
    atomic_init(&c->gen, 1);
    atomic_init(&c->last_ok_ms, 0);
    atomic_init(&c->stop, false);
    c->stale_ms = stale_ms;
    int rc = mg_store_open(dsn, &c->st, err);
    if (rc == 0 && pthread_create(&c->thread, NULL, watch, c) != 0) {
        rc = MG_EIO;
        if (err)
            *err = mg_xstrdup("cannot start the revocation watcher thread");
    }
    if (rc < 0) {
        mg_tokcache_free(c);
        return rc;
    }
    c->started = true;
    *out = c;
    return 0;
}

void mg_tokcache_free(struct mg_tokcache *c)
{
    if (c == NULL)
        return;
    if (c->started) {
        atomic_store(&c->stop, true);
        pthread_join(c->thread, NULL);
    }
    mg_store_free(c->st);
    for (size_t i = 0; i < MG_TOKCACHE_SLOTS; i++)
        if (c->slots[i].used)
            mg_identity_unref(c->slots[i].id);
    for (size_t i = 0; i < N_STRIPES; i++)
        pthread_mutex_destroy(&c->stripes[i]);
    free(c->slots);
    free(c);
}

uint64_t mg_tokcache_generation(struct mg_tokcache *c)
{
    return atomic_load(&c->gen);
}

bool mg_tokcache_store_fresh(struct mg_tokcache *c)
{
    int64_t last = atomic_load(&c->last_ok_ms);
    return last != 0 && mono_ms() - last <= c->stale_ms;
}

void mg_tokcache_invalidate(struct mg_tokcache *c)
{
    atomic_fetch_add(&c->gen, 1);
}

static size_t slot_of(const uint8_t hash[32])
{
    /* The hash is SHA-256 of a random token: its bytes are uniform. */
    return ((size_t)hash[0] | (size_t)hash[1] << 8) & (MG_TOKCACHE_SLOTS - 1);
}

int mg_tokcache_get(struct mg_tokcache *c, const uint8_t hash[32], int64_t now,
                    struct mg_identity **id)
{
    *id = NULL;
    if (!mg_tokcache_store_fresh(c))
        return 0;
    uint64_t gen = atomic_load(&c->gen);
    size_t i = slot_of(hash);
    pthread_mutex_t *mu = &c->stripes[i % N_STRIPES];
    int hit = 0;
    pthread_mutex_lock(mu);
    struct slot *s = &c->slots[i];
    if (s->used && s->gen == gen && now < s->expires_at && memcmp(s->hash, hash, 32) == 0) {
        if (s->id)
            mg_identity_ref(s->id);
        *id = s->id;
        hit = 1;
    }
    pthread_mutex_unlock(mu);
    return hit;
}

void mg_tokcache_put(struct mg_tokcache *c, const uint8_t hash[32], struct mg_identity *id,
                     int64_t expires_at, uint64_t gen)
{
    size_t i = slot_of(hash);
    pthread_mutex_t *mu = &c->stripes[i % N_STRIPES];
    struct mg_identity *old = NULL;
    if (id)
        mg_identity_ref(id);
    pthread_mutex_lock(mu);
    struct slot *s = &c->slots[i];
    if (s->used)
        old = s->id;
    memcpy(s->hash, hash, 32);
    s->used = true;
    s->id = id;
    s->expires_at = expires_at;
    s->gen = gen;
    pthread_mutex_unlock(mu);
    mg_identity_unref(old);
}

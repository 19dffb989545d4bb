/* The shared fetched-document cache; see fetch_cache.h.
 *
 * One mutex guards the entries and their waiter lists. A waiter's result is
 * written under the mutex before its uv_async is signalled, and the waiter is
 * freed only by its own thread, in the async callback or (when it was never
 * signalled) in mg_fetch_cache_cancel. So the fetching thread may signal
 * waiters after dropping the lock: none of them can be gone yet. */
#include "net/fetch_cache.h"

#include <pthread.h>
#include <stdatomic.h>

#define ERR_MAX 320

struct mg_fetch_cache_val {
    atomic_int refs;
    void *data;
    void (*free)(void *data);
};

struct entry {
    struct mg_fetch_cache *c;
    struct mg_list lru; /* in c->lru, most recently used last */
    char *url;
    struct mg_fetch_cache_val *val; /* NULL until a fetch succeeded */
    uint64_t expires_ms, last_start_ms;
    bool attempted, fetching;
    int err_status; /* the last failure, when there is no value */
    char err[ERR_MAX];
    struct mg_list waiters;
    size_t n_waiters;
};

struct mg_fetch_cache {
    pthread_mutex_t mu;
    const struct mg_fetch_cache_ops *ops;
    void *ctx;
    struct mg_fetch_cache_opts o;
    struct mg_list lru;
    size_t n_entries;
};

struct mg_fetch_cache_req {
    uv_async_t async;
    struct mg_fetch_cache *c;
    struct entry *e;     /* the entry whose fetch it waits for, while listed */
    struct mg_list link; /* in entry->waiters while listed */
    bool listed;         /* under the lock */
    bool cancelled;      /* owner thread only */
    int status;
    struct mg_fetch_cache_val *val;
    char err[ERR_MAX];
    mg_fetch_cache_cb cb;
    void *ud;
};

/* ---- values -------------------------------------------------------------------------------- */

void *mg_fetch_cache_val_data(const struct mg_fetch_cache_val *v)
{
    return v->data;
}

void mg_fetch_cache_val_ref(struct mg_fetch_cache_val *v)
{
    atomic_fetch_add(&v->refs, 1);
}

void mg_fetch_cache_val_unref(struct mg_fetch_cache_val *v)
{
    if (v == NULL || atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    v->free(v->data);
    free(v);
}

/* ---- cache --------------------------------------------------------------------------------- */

struct mg_fetch_cache *mg_fetch_cache_new(const struct mg_fetch_cache_ops *ops, void *ctx,
                                          const struct mg_fetch_cache_opts *opts)
{
    struct mg_fetch_cache *c = mg_xcalloc(1, sizeof *c);
    MG_ASSERT(pthread_mutex_init(&c->mu, NULL) == 0);
    c->ops = ops;
    c->ctx = ctx;
    if (opts)
        c->o = *opts;
    if (c->o.max_entries == 0)
        c->o.max_entries = 64;
    if (c->o.ttl_ms == 0)
        c->o.ttl_ms = 3600 * 1000;
    if (c->o.min_refresh_ms == 0)
        c->o.min_refresh_ms = 10 * 1000;
    if (c->o.max_waiters == 0)
        c->o.max_waiters = 4096;
    mg_list_init(&c->lru);
    return c;
}

static void entry_free(struct entry *e)
{
    MG_ASSERT(!e->fetching && e->n_waiters == 0);
    mg_list_remove(&e->lru);
    e->c->n_entries--;
    mg_fetch_cache_val_unref(e->val);
    free(e->url);
    free(e);
}

void mg_fetch_cache_free(struct mg_fetch_cache *c)
{
    if (c == NULL)
        return;
    while (!mg_list_empty(&c->lru))
        entry_free(mg_list_entry(c->lru.next, struct entry, lru));
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Under the lock. NULL with MG_ELIMIT when full of busy entries. */
static struct entry *entry_get(struct mg_fetch_cache *c, const char *url)
{
    struct mg_list *pos, *tmp;
    mg_list_each(pos, tmp, &c->lru)
    {
        struct entry *e = mg_list_entry(pos, struct entry, lru);
        if (strcmp(e->url, url) == 0) {
            mg_list_remove(&e->lru);
            mg_list_push(&c->lru, &e->lru);
            return e;
        }
    }
    if (c->n_entries >= c->o.max_entries) {
        mg_list_each(pos, tmp, &c->lru)
        {
            struct entry *e = mg_list_entry(pos, struct entry, lru);
            if (!e->fetching && e->n_waiters == 0) {
                entry_free(e);
                break;
            }
        }
        if (c->n_entries >= c->o.max_entries)
            return NULL;
    }
    struct entry *e = mg_xcalloc(1, sizeof *e);
    e->c = c;
    e->url = mg_xstrdup(url);
    mg_list_init(&e->waiters);
    mg_list_push(&c->lru, &e->lru);
    c->n_entries++;
    return e;
}

static struct entry *entry_find(struct mg_fetch_cache *c, const char *url)
{
    struct mg_list *pos, *tmp;
    mg_list_each(pos, tmp, &c->lru)
    {
        struct entry *e = mg_list_entry(pos, struct entry, lru);
        if (strcmp(e->url, url) == 0)
            return e;
    }
    return NULL;
}

static bool is_fresh(const struct entry *e, uint64_t now)
{
    return e->val != NULL && now < e->expires_ms;
}

static bool is_recent(const struct entry *e, uint64_t now)
{
    return e->attempted && now - e->last_start_ms < e->c->o.min_refresh_ms;
}

/* Under the lock: what the entry has to offer right now. */
static void set_result(struct mg_fetch_cache_req *r, struct entry *e)
{
    if (e->val) {
        mg_fetch_cache_val_ref(e->val);
        r->val = e->val;
        r->status = 0;
        r->err[0] = '\0';
    } else {
        r->val = NULL;
        r->status = e->err_status < 0 ? e->err_status : MG_EIO;
        snprintf(r->err, sizeof r->err, "%s", e->err[0] ? e->err : "fetch failed");
    }
}

int mg_fetch_cache_peek(struct mg_fetch_cache *c, const char *url, struct mg_fetch_cache_val **out)
{
    int rc = MG_ENOTFOUND;
    uint64_t now = mg_now_ms();
    *out = NULL;
    pthread_mutex_lock(&c->mu);
    struct entry *e = entry_find(c, url);
    if (e && e->val && (is_fresh(e, now) || e->fetching || is_recent(e, now))) {
        mg_fetch_cache_val_ref(e->val);
        *out = e->val;
        rc = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- fetching ------------------------------------------------------------------------------ */

static void on_req_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_wake(uv_async_t *a)
{
    struct mg_fetch_cache_req *r = a->data;
    if (!r->cancelled)
        r->cb(r->ud, r->status, r->val, r->status == 0 ? "" : r->err);
    else
        mg_fetch_cache_val_unref(r->val);
    uv_close((uv_handle_t *)&r->async, on_req_closed);
}

/* The fetch for e ended (value or error recorded): wake every waiter. */
static void wake_waiters(struct mg_fetch_cache *c, struct entry *e)
{
    struct mg_list woken;
    mg_list_init(&woken);
    pthread_mutex_lock(&c->mu);
    while (!mg_list_empty(&e->waiters)) {
        struct mg_fetch_cache_req *r =
            mg_list_entry(e->waiters.next, struct mg_fetch_cache_req, link);
        mg_list_remove(&r->link);
        r->listed = false;
        set_result(r, e);
        mg_list_push(&woken, &r->link);
    }
    e->n_waiters = 0;
    pthread_mutex_unlock(&c->mu);
    /* A woken request is freed by its own thread after its async fires, so
     * read the next link before signalling. */
    struct mg_list *pos = woken.next;
    while (pos != &woken) {
        struct mg_list *next = pos->next;
        struct mg_fetch_cache_req *r = mg_list_entry(pos, struct mg_fetch_cache_req, link);
        uv_async_send(&r->async);
        pos = next;
    }
}

static void fetch_ended(struct entry *e, int status, void *value, const char *why)
{
    struct mg_fetch_cache *c = e->c;
    struct mg_fetch_cache_val *old = NULL;
    pthread_mutex_lock(&c->mu);
    e->fetching = false;
    if (status == 0) {
        struct mg_fetch_cache_val *v = mg_xcalloc(1, sizeof *v);
        atomic_init(&v->refs, 1);
        v->data = value;
        v->free = c->ops->free;
        old = e->val;
        e->val = v;
        e->expires_ms = mg_now_ms() + c->o.ttl_ms;
        e->err_status = 0;
        e->err[0] = '\0';
    } else {
        /* A failed refresh keeps serving the old value. */
        e->err_status = status;
        snprintf(e->err, sizeof e->err, "%s", why && *why ? why : mg_strstatus(status));
    }
    pthread_mutex_unlock(&c->mu);
    mg_fetch_cache_val_unref(old); /* readers holding it keep it alive */
    wake_waiters(c, e);
}

static void on_fetched(void *ud, const struct mg_fetch_result *res)
{
    struct entry *e = ud;
    struct mg_fetch_cache *c = e->c;
    void *value = NULL;
    struct mg_buf err;
    mg_buf_init(&err, ERR_MAX - 1);
    int rc = c->ops->parse(c->ctx, res, &value, &err);
    if (rc < 0 && err.len == 0)
        mg_buf_appends(&err, res->status < 0 ? res->error : mg_strstatus(rc));
    mg_buf_append(&err, "", 1);
    fetch_ended(e, rc < 0 ? rc : 0, value, err.data);
    mg_buf_fini(&err);
}

int mg_fetch_cache_load(struct mg_fetch_cache *c, struct mg_client_pool *pool, const char *url,
                        const struct mg_fetch_opts *fopts, unsigned flags, mg_fetch_cache_cb cb,
                        void *ud, struct mg_fetch_cache_req **out)
{
    struct mg_fetch_cache_req *r = NULL;
    struct entry *e = NULL;
    int rc = 0;
    bool start = false, wake_now = false;
    if (out)
        *out = NULL;
    if (c == NULL || pool == NULL || url == NULL || cb == NULL)
        return MG_EINVAL;
    r = mg_xcalloc(1, sizeof *r);
    r->c = c;
    r->cb = cb;
    r->ud = ud;
    mg_list_init(&r->link);
    MG_ASSERT(uv_async_init(pool->loop, &r->async, on_wake) == 0);
    r->async.data = r;

    uint64_t now = mg_now_ms();
    pthread_mutex_lock(&c->mu);
    e = entry_get(c, url);
    if (e == NULL) {
        rc = MG_ELIMIT;
        goto unlock;
    }
    bool join;
    if (flags & MG_FETCH_CACHE_REFRESH) {
        /* Refresh now, unless one is under way (wait for it) or one started
         * less than min_refresh_ms ago (rate limit: answer what we have). */
        join = e->fetching || !is_recent(e, now);
    } else if (is_fresh(e, now)) {
        join = false;
    } else if (e->fetching) {
        join = e->val == NULL; /* stale: served while the refresh runs */
    } else {
        join = !is_recent(e, now);
    }
    if (!join) {
        set_result(r, e);
        wake_now = true;
        goto unlock;
    }
    if (e->n_waiters >= c->o.max_waiters) {
        rc = MG_ELIMIT;
        goto unlock;
    }
    mg_list_push(&e->waiters, &r->link);
    r->listed = true;
    r->e = e;
    e->n_waiters++;
    if (!e->fetching) {
        e->fetching = true;
        e->attempted = true;
        e->last_start_ms = now;
        start = true;
    }
unlock:
    pthread_mutex_unlock(&c->mu);
    if (rc < 0) {
        uv_close((uv_handle_t *)&r->async, on_req_closed);
        return rc;
    }
    if (out)
        *out = r;
    if (wake_now)
        uv_async_send(&r->async);
    if (start) {
        /* The fetch belongs to the entry (never evicted while fetching), not
         * to this request: it goes on if the request is cancelled. */
        const char *why = NULL;
        int frc = mg_fetch(pool, url, fopts, on_fetched, e, NULL, &why);
        if (frc < 0) {
            char msg[ERR_MAX];
            snprintf(msg, sizeof msg, "%s: %s", url, why ? why : mg_strstatus(frc));
            fetch_ended(e, frc, NULL, msg);
        }
    }
    return 0;
}

void mg_fetch_cache_cancel(struct mg_fetch_cache_req *r)
{
    if (r == NULL)
        return;
    struct mg_fetch_cache *c = r->c;
    pthread_mutex_lock(&c->mu);
    bool listed = r->listed;
    if (listed) {
        mg_list_remove(&r->link);
        r->e->n_waiters--;
        r->listed = false;
    }
    pthread_mutex_unlock(&c->mu);
    if (listed) /* never signalled, and now never will be */
        uv_close((uv_handle_t *)&r->async, on_req_closed);
    else /* signalled or about to be: on_wake discards the result */
        r->cancelled = true;
}

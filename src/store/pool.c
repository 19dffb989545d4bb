/* The store pool (pool.h): a fixed set of store handles shared by libuv's
 * threadpool, so loop threads never wait on disk or the network. It owns the
 * handles, a free list guarded by a mutex and a condition variable (a job
 * takes a handle for its whole run), and the count of jobs in flight, which
 * is what bounds the queue: a gateway under load answers 503 at once instead
 * of letting waiting requests pile up behind a slow database. */
#include "store/pool.h"

#include <stdatomic.h>

/* How long a job waits for a free handle before failing. Handles are held
 * only while a statement runs, and statements are bounded (busy timeout,
 * statement_timeout), so reaching this means the database is stuck. */
#define HANDLE_WAIT_NS (30ull * 1000 * 1000 * 1000)

struct mg_store_pool {
    uv_mutex_t mu;
    uv_cond_t cv;
    struct mg_store **handles; /* all n, owned */
    struct mg_store **free;    /* stack of the n_free idle ones */
    size_t n;
    size_t n_free;
    size_t max_queued;
    atomic_size_t in_flight; /* submitted jobs whose done has not run yet */
};

struct job {
    uv_work_t req;
    struct mg_store_pool *pool;
    mg_store_work_fn work;
    mg_store_done_fn done;
    void *arg;
    int status;
};

static void set_err(char **err, const char *what, const char *why)
{
    size_t n = strlen(what) + strlen(why) + 3;
    if (!err)
        return;
    *err = mg_xmalloc(n);
    snprintf(*err, n, "%s: %s", what, why);
}

int mg_store_pool_new(const char *dsn, size_t n, size_t max_queued, int64_t now,
                      struct mg_store_pool **out, char **err)
{
    struct mg_store_pool *p = NULL;
    char *why = NULL;
    int rc;

    *out = NULL;
    if (err)
        *err = NULL;
    if (n == 0 || max_queued == 0) {
        set_err(err, "store pool", "needs at least one handle and one queue slot");
        return MG_EINVAL;
    }
    p = mg_xcalloc(1, sizeof(*p));
    p->handles = mg_xcalloc(n, sizeof(*p->handles));
    p->free = mg_xcalloc(n, sizeof(*p->free));
    p->max_queued = max_queued;
    atomic_init(&p->in_flight, 0);
    MG_ASSERT(uv_mutex_init(&p->mu) == 0);
    MG_ASSERT(uv_cond_init(&p->cv) == 0);
    for (size_t i = 0; i < n; i++) {
        rc = mg_store_open(dsn, &p->handles[i], &why);
        if (rc)
            goto out;
        p->n++;
        p->free[p->n_free++] = p->handles[i];
        /* The first handle brings the schema up to date before any other
         * handle (or job) touches the database. */
        if (i == 0) {
            rc = mg_store_migrate(p->handles[0], now);
            if (rc) {
                why = mg_xstrdup(mg_store_last_error(p->handles[0]));
                goto out;
            }
        }
    }
    *out = p;
    rc = 0;
out:
    if (rc) {
        set_err(err, "store pool", why ? why : mg_strstatus(rc));
        mg_store_pool_free(p);
    }
    free(why);
    return rc;
}

void mg_store_pool_free(struct mg_store_pool *p)
{
    if (!p)
        return;
    MG_ASSERT(atomic_load(&p->in_flight) == 0);
    MG_ASSERT(p->n_free == p->n);
    for (size_t i = 0; i < p->n; i++)
        mg_store_free(p->handles[i]);
    uv_cond_destroy(&p->cv);
    uv_mutex_destroy(&p->mu);
    free(p->handles);
    free(p->free);
    free(p);
}

/* Takes an idle handle, waiting a bounded time for one. */
static int acquire(struct mg_store_pool *p, struct mg_store **st)
{
    uint64_t deadline = uv_hrtime() + HANDLE_WAIT_NS;
    int rc = 0;

    uv_mutex_lock(&p->mu);
    while (p->n_free == 0) {
        uint64_t now = uv_hrtime();
        if (now >= deadline) {
            rc = MG_ETIMEDOUT;
            break;
        }
        /* A timeout or a spurious wake-up just goes round again. */
        uv_cond_timedwait(&p->cv, &p->mu, deadline - now);
    }
    if (rc == 0)
        *st = p->free[--p->n_free];
    uv_mutex_unlock(&p->mu);
    return rc;
}

static void release(struct mg_store_pool *p, struct mg_store *st)
{
    uv_mutex_lock(&p->mu);
    MG_ASSERT(p->n_free < p->n);
    p->free[p->n_free++] = st;
    uv_cond_signal(&p->cv);
    uv_mutex_unlock(&p->mu);
}

int mg_store_pool_run(struct mg_store_pool *p, mg_store_work_fn work, void *arg)
{
    struct mg_store *st = NULL;
    int rc = acquire(p, &st);
    if (rc)
        return rc;
    rc = work(st, arg);
    release(p, st);
    return rc;
}

static void work_cb(uv_work_t *req)
{
    struct job *j = req->data;
    j->status = mg_store_pool_run(j->pool, j->work, j->arg);
}

static void after_cb(uv_work_t *req, int status)
{
    struct job *j = req->data;
    mg_store_done_fn done = j->done;
    void *arg = j->arg;
    int result = status == UV_ECANCELED ? MG_ECANCELED : j->status;

    /* The slot is free before done runs, so done may submit again. */
    atomic_fetch_sub(&j->pool->in_flight, 1);
    free(j);
    done(arg, result);
}

int mg_store_pool_submit(struct mg_store_pool *p, uv_loop_t *loop, mg_store_work_fn work,
                         mg_store_done_fn done, void *arg)
{
    struct job *j = NULL;

    MG_ASSERT(work != NULL && done != NULL);
    /* Reserve a slot first, give it back if that passed the bound: several
     * loops may submit at once and no job ever runs beyond the bound. */
    if (atomic_fetch_add(&p->in_flight, 1) >= p->max_queued) {
        atomic_fetch_sub(&p->in_flight, 1);
        return MG_ELIMIT;
    }
    j = mg_xcalloc(1, sizeof(*j));
    j->req.data = j;
    j->pool = p;
    j->work = work;
    j->done = done;
    j->arg = arg;
    if (uv_queue_work(loop, &j->req, work_cb, after_cb) != 0) {
        atomic_fetch_sub(&p->in_flight, 1);
        free(j);
        return MG_EIO;
    }
    return 0;
}

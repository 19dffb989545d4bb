/* The audit writer thread, its bounded queue and the loops' completion
 * ports; see audit.h. The queue is a FIFO under one mutex, as in
 * src/core/log.c: loops only append and signal, the writer takes a batch,
 * chains and writes it with the mutex released, and gives each completion
 * to its loop's port. Records keep their queue order on disk; a failed
 * batch goes back to the front. */
#include "audit/audit.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define BATCH_MAX_BYTES (8u << 20)
#define TEXT_KEEP_BYTES (1u << 20) /* the batch text buffer kept between batches */
#define EAGAIN_TRIES    8          /* re-chains of one batch before it counts as a failure */

struct item {
    struct item *next;
    struct mg_audit_record *rec;
    struct mg_audit_port *port;
    mg_audit_done_fn done;
    void *arg;
    size_t bytes;
    bool notified; /* done already ran (with the first failure) */
};

struct completion {
    struct completion *next;
    mg_audit_done_fn done;
    void *arg;
    int status;
};

struct mg_audit_port {
    uv_async_t async;
    pthread_mutex_t mu;
    struct completion *head, *tail; /* under mu */
    size_t pending;                 /* loop thread only */
};

struct mg_audit {
    const struct mg_audit_sink_ops *ops;
    void *sink;
    enum mg_conf_audit_args arguments;
    bool sync, fail_open;
    size_t max_queue, max_bytes;
    uint64_t retry_min_ms, retry_max_ms;
    uint64_t sync_ms; /* sync: false: a write is synced within this */

    pthread_mutex_t mu;
    pthread_cond_t work;    /* the writer waits for records or stop */
    pthread_cond_t flushed; /* mg_audit_flush waits for progress */
    struct item *head, *tail;
    size_t bytes;
    uint64_t submitted, completed; /* items ever queued / ever written or lost */
    uint64_t written, write_failures, rejected, lost;
    bool stopping;
    char last_error[512];
    pthread_t thread;

    atomic_bool sink_ok;
    atomic_size_t n_queued;
    atomic_int_fast64_t head_seq;

    /* The chain's head: the writer thread only (and mg_audit_new before it). */
    int64_t seq;
    char hash[MG_AUDIT_HASH_HEX + 1];
    struct mg_buf text; /* the batch's canonical texts (writer thread) */
    bool idle;          /* the writer waits for a first record (under mu) */
};

static const struct mg_audit_sink_ops *const builtin_sinks[] = {
    [MG_CONF_AUDIT_FILE] = &mg_audit__file_ops,
    [MG_CONF_AUDIT_STDOUT] = &mg_audit__stdout_ops,
    [MG_CONF_AUDIT_STORE] = &mg_audit__store_ops,
    [MG_CONF_AUDIT_SYSLOG] = &mg_audit__syslog_ops,
};

/* ---------------------------------------------------------------------------
 * Ports.
 */

static void port_run(uv_async_t *h)
{
    struct mg_audit_port *p = h->data;
    struct completion *c;
    pthread_mutex_lock(&p->mu);
    c = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (c) {
        struct completion *next = c->next;
        MG_ASSERT(p->pending > 0);
        p->pending--;
        c->done(c->arg, c->status);
        free(c);
        c = next;
    }
}

int mg_audit_port_new(uv_loop_t *loop, struct mg_audit_port **out)
{
    struct mg_audit_port *p = mg_xcalloc(1, sizeof *p);
    if (uv_async_init(loop, &p->async, port_run) != 0) {
        free(p);
        return MG_EIO;
    }
    p->async.data = p;
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return 0;
}

size_t mg_audit_port_pending(const struct mg_audit_port *p)
{
    return p->pending;
}

static void port_closed(uv_handle_t *h)
{
    struct mg_audit_port *p = h->data;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void mg_audit_port_close(struct mg_audit_port *p)
{
    MG_ASSERT(p->pending == 0);
    uv_close((uv_handle_t *)&p->async, port_closed);
}

/* Writer thread: hands a completion to its loop. */
static void deliver(struct item *it, int status)
{
    struct completion *c = mg_xcalloc(1, sizeof *c);
    struct mg_audit_port *p = it->port;
    c->done = it->done;
    c->arg = it->arg;
    c->status = status;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->async);
    it->notified = true;
}

/* ---------------------------------------------------------------------------
 * The writer.
 */

_Static_assert(sizeof(struct item) <= MG_AUDIT_RECORD_LINK, "an item fits in its record");

/* The item lives in its record (mg_audit_record_link): one free for both. */
static void item_free(struct item *it)
{
    mg_audit_record_free(it->rec);
}

/* Chains the batch after the writer's head and writes it; re-chains when
 * another writer (a gateway on the same store) took the head meanwhile.
 * Runs without the mutex: the batch belongs to the writer. The texts go
 * into one buffer, reused from batch to batch. */
static int write_batch(struct mg_audit *a, struct item *batch, size_t n, char *err, size_t cap)
{
    struct mg_audit_entry *e = mg_xcalloc(n, sizeof *e);
    char(*hashes)[MG_AUDIT_HASH_HEX + 1] = mg_xcalloc(n + 1, sizeof *hashes);
    struct mg_buf *text = &a->text;
    int rc = 0;

    for (int attempt = 0; attempt < EAGAIN_TRIES; attempt++) {
        struct item *it = batch;
        mg_buf_reset(text);
        memcpy(hashes[0], a->hash, MG_AUDIT_HASH_HEX + 1);
        for (size_t i = 0; i < n; i++, it = it->next) {
            size_t start = text->len;
            rc = mg_audit_record_append(it->rec, a->seq + 1 + (int64_t)i, hashes[i], text,
                                        hashes[i + 1]);
            if (rc != 0) {
                snprintf(err, cap, "audit: cannot serialise a record: %s", mg_strstatus(rc));
                goto out;
            }
            /* By construction (record.h); readers rely on it. */
            MG_ASSERT(text->len - start <= MG_AUDIT_MAX_RECORD_BYTES);
            e[i].seq = a->seq + 1 + (int64_t)i;
            e[i].time_ms = mg_audit_record_time_ms(it->rec);
            e[i].text = (const char *)(uintptr_t)start; /* an offset until the buffer is final */
            e[i].len = text->len - start;
            MG_ASSERT(mg_buf_append(text, "", 1) == 0); /* each text is a C string too */
            e[i].prev = hashes[i];
            e[i].hash = hashes[i + 1];
            if (a->ops->wants_cols)
                mg_audit_record_cols(it->rec, &e[i].cols);
        }
        for (size_t i = 0; i < n; i++)
            e[i].text = text->data + (size_t)(uintptr_t)e[i].text;
        rc = a->ops->write(a->sink, e, n, a->sync || !a->ops->sync, err, cap);
        if (rc != MG_EAGAIN)
            break;
        rc = a->ops->head(a->sink, &a->seq, a->hash, err, cap);
        if (rc != 0)
            break;
        rc = MG_EAGAIN;
    }
    if (rc == 0) {
        a->seq += (int64_t)n;
        memcpy(a->hash, hashes[n], MG_AUDIT_HASH_HEX + 1);
    } else if (rc == MG_EAGAIN) {
        snprintf(err, cap, "audit: lost the race for the chain's head %d times", EAGAIN_TRIES);
    } else {
        /* The sink knows its head better than we do after a failure (a
         * store another gateway writes to, a file cut back). */
        char e2[256];
        int64_t seq;
        char hash[MG_AUDIT_HASH_HEX + 1];
        if (a->ops->head(a->sink, &seq, hash, e2, sizeof e2) == 0) {
            a->seq = seq;
            memcpy(a->hash, hash, sizeof hash);
        }
    }
out:
    /* A big batch's buffer is not kept for the next one. */
    if (text->cap > TEXT_KEEP_BYTES)
        mg_buf_fini(text);
    free(hashes);
    free(e);
    return rc;
}

static void deadline_after(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Takes up to MG_AUDIT_MAX_BATCH records (and BATCH_MAX_BYTES) off the
 * front of the queue; under the mutex. */
static struct item *take(struct mg_audit *a, size_t *n, size_t *bytes)
{
    struct item *first = a->head, *last = NULL, *it = a->head;
    *n = 0;
    *bytes = 0;
    while (it && *n < MG_AUDIT_MAX_BATCH && (*n == 0 || *bytes + it->bytes <= BATCH_MAX_BYTES)) {
        *bytes += it->bytes;
        (*n)++;
        last = it;
        it = it->next;
    }
    a->head = it;
    if (!it)
        a->tail = NULL;
    last->next = NULL;
    return first;
}

/* Puts a failed batch back in front of what was queued meanwhile. */
static void put_back(struct mg_audit *a, struct item *batch)
{
    struct item *last = batch;
    while (last->next)
        last = last->next;
    last->next = a->head;
    if (!a->head)
        a->tail = last;
    a->head = batch;
}

/* Without the mutex: completions run, records are freed (a big batch
 * takes a while to free; submitters must not wait for it). */
static void finish(struct item *batch, int status)
{
    while (batch) {
        struct item *next = batch->next;
        if (batch->done && !batch->notified)
            deliver(batch, status);
        item_free(batch);
        batch = next;
    }
}

/* Under the mutex: n records of `bytes` left the queue, written or lost. */
static void account(struct mg_audit *a, size_t n, size_t bytes, bool written)
{
    a->bytes -= bytes;
    a->completed += n;
    atomic_fetch_sub(&a->n_queued, n);
    if (written)
        a->written += n;
    else
        a->lost += n;
    pthread_cond_broadcast(&a->flushed);
}

/* Makes the writes since the last sync durable (sync: false); without the
 * mutex. A failure cannot take them back: it is reported, and the sink
 * counts as failing until the next write and sync succeed. */
static void sync_now(struct mg_audit *a, uint64_t *failures)
{
    char err[512] = "";
    if (a->ops->sync(a->sink, err, sizeof err) == 0)
        return;
    atomic_store(&a->sink_ok, false);
    if ((*failures)++ == 0)
        mg_log_error("audit: %s; records of the last %llu ms may not survive a power loss", err,
                     (unsigned long long)a->sync_ms);
    pthread_mutex_lock(&a->mu);
    a->write_failures++;
    snprintf(a->last_error, sizeof a->last_error, "%s", err);
    pthread_mutex_unlock(&a->mu);
}

static bool past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Under the mutex: the queue is half full, by count or bytes. */
static bool filling(const struct mg_audit *a)
{
    return a->bytes >= a->max_bytes / 2 || atomic_load(&a->n_queued) >= a->max_queue / 2;
}

static void *writer(void *arg)
{
    struct mg_audit *a = arg;
    uint64_t backoff = 0, failures = 0;
    bool lazy = !a->sync && a->ops->sync != NULL, dirty = false;
    /* ticking: a batch was just written (sync: false); lingered: the records
     * now queued came while the writer waited by itself, and need no more. */
    bool ticking = false, lingered = false;
    struct timespec sync_by = {0};
    char err[512];

    pthread_mutex_lock(&a->mu);
    for (;;) {
        struct item *batch;
        size_t n, bytes;
        int rc;

        while (!a->head && !a->stopping) {
            if (ticking) {
                /* Under load records keep coming: wait one linger for the
                 * next ones by ourselves, so that no submitter has to wake
                 * the writer (a futex call on its request's path) and the
                 * writer sleeps once per batch. Only a quiet linger lets it
                 * go idle. */
                struct timespec dl;
                deadline_after(&dl, MG_AUDIT_LINGER_MS);
                while (!a->stopping && !filling(a) &&
                       pthread_cond_timedwait(&a->work, &a->mu, &dl) != ETIMEDOUT)
                    ;
                ticking = false;
                lingered = a->head != NULL;
                continue;
            }
            a->idle = true;
            if (dirty) {
                /* A sync is owed: wait for records until it is due. */
                int w = pthread_cond_timedwait(&a->work, &a->mu, &sync_by);
                a->idle = false;
                if (w == ETIMEDOUT) {
                    pthread_mutex_unlock(&a->mu);
                    sync_now(a, &failures);
                    dirty = false;
                    pthread_mutex_lock(&a->mu);
                }
                continue;
            }
            pthread_cond_wait(&a->work, &a->mu);
            a->idle = false;
        }
        if (!a->head)
            break;
        if (backoff > 0 && !a->stopping) {
            struct timespec dl;
            deadline_after(&dl, backoff);
            while (!a->stopping && pthread_cond_timedwait(&a->work, &a->mu, &dl) != ETIMEDOUT)
                ;
        } else if (lazy && !a->stopping && !lingered) {
            /* Nobody waits for these records: gather what comes in the
             * next few milliseconds into the same write. Submitters do not
             * signal meanwhile, unless the queue fills. */
            struct timespec dl;
            deadline_after(&dl, MG_AUDIT_LINGER_MS);
            while (!a->stopping && !filling(a) &&
                   pthread_cond_timedwait(&a->work, &a->mu, &dl) != ETIMEDOUT)
                ;
        }
        lingered = false;
        batch = take(a, &n, &bytes);
        pthread_mutex_unlock(&a->mu);
        err[0] = '\0';
        rc = write_batch(a, batch, n, err, sizeof err);
        if (rc == 0 && lazy) {
            ticking = true;
            if (!dirty)
                deadline_after(&sync_by, a->sync_ms);
            dirty = true;
            if (past(&sync_by)) {
                sync_now(a, &failures);
                dirty = false;
            }
        }
        if (rc == 0) {
            if (failures > 0)
                mg_log_info("audit: the %s sink works again after %llu failed writes", a->ops->name,
                            (unsigned long long)failures);
            failures = 0;
            backoff = 0;
            atomic_store(&a->sink_ok, true);
            atomic_store(&a->head_seq, a->seq);
            finish(batch, 0);
            pthread_mutex_lock(&a->mu);
            account(a, n, bytes, true);
            continue;
        }
        atomic_store(&a->sink_ok, false);
        if (failures++ == 0)
            mg_log_error("audit: cannot write to the %s sink: %s; %s", a->ops->name, err,
                         a->fail_open ? "serving on unrecorded (on_failure: allow)"
                                      : "refusing requests until it recovers (on_failure: deny)");
        pthread_mutex_lock(&a->mu);
        a->write_failures++;
        snprintf(a->last_error, sizeof a->last_error, "%s", err);
        if (a->stopping) {
            /* Stopping: one attempt only, whatever is left is lost. */
            struct item *rest = a->head;
            size_t n_rest = atomic_load(&a->n_queued) - n;
            a->head = a->tail = NULL;
            account(a, n_rest + n, a->bytes, false);
            pthread_mutex_unlock(&a->mu);
            finish(batch, MG_ECANCELED);
            finish(rest, MG_ECANCELED);
            mg_log_error("audit: %zu records lost: the %s sink still fails at stop", n_rest + n,
                         a->ops->name);
            pthread_mutex_lock(&a->mu);
            break;
        }
        pthread_mutex_unlock(&a->mu);
        /* The callers waiting for these records learn now; the records
         * stay first in line and are retried. */
        for (struct item *it = batch; it; it = it->next)
            if (it->done && !it->notified)
                deliver(it, rc == MG_EAGAIN ? MG_EIO : rc);
        pthread_mutex_lock(&a->mu);
        put_back(a, batch);
        backoff = backoff ? MG_MIN(backoff * 2, a->retry_max_ms) : a->retry_min_ms;
    }
    pthread_mutex_unlock(&a->mu);
    if (dirty)
        sync_now(a, &failures);
    mg_buf_fini(&a->text);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Life cycle and the loop side.
 */

int mg_audit_new(const struct mg_audit_opts *o, struct mg_audit **out, char **err)
{
    struct mg_audit *a = NULL;
    pthread_condattr_t ca;
    char msg[512] = "";
    int rc;

    *out = NULL;
    if (err)
        *err = NULL;
    a = mg_xcalloc(1, sizeof *a);
    a->ops = o->sink_ops;
    if (!a->ops && (size_t)o->sink < MG_ARRAY_LEN(builtin_sinks))
        a->ops = builtin_sinks[o->sink];
    if (!a->ops) {
        snprintf(msg, sizeof msg, "audit: unknown sink");
        rc = MG_EINVAL;
        goto fail;
    }
    a->arguments = o->arguments;
    a->sync = o->sync;
    a->fail_open = o->fail_open;
    a->max_queue = o->max_queue ? o->max_queue : 10000;
    a->max_bytes = o->max_queue_bytes ? o->max_queue_bytes : MG_AUDIT_MAX_QUEUE_BYTES;
    a->retry_min_ms = o->retry_min_ms ? o->retry_min_ms : 50;
    a->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 5000;
    a->sync_ms = o->sync_interval_ms ? o->sync_interval_ms : MG_CONF_AUDIT_SYNC_INTERVAL_MS;
    atomic_init(&a->sink_ok, true);
    atomic_init(&a->n_queued, 0);
    rc = a->ops->open(o->target, &a->sink, msg, sizeof msg);
    if (rc != 0)
        goto fail;
    rc = a->ops->head(a->sink, &a->seq, a->hash, msg, sizeof msg);
    if (rc != 0)
        goto fail;
    atomic_init(&a->head_seq, a->seq);
    mg_buf_init(&a->text, SIZE_MAX / 2);
    /* Timed waits (retry back-off, flush) on the monotonic clock. */
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->work, &ca);
    pthread_cond_init(&a->flushed, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&a->thread, NULL, writer, a) != 0) {
        snprintf(msg, sizeof msg, "audit: cannot start the writer thread");
        pthread_cond_destroy(&a->work);
        pthread_cond_destroy(&a->flushed);
        pthread_mutex_destroy(&a->mu);
        rc = MG_EIO;
        goto fail;
    }
    *out = a;
    return 0;
fail:
    if (a->sink)
        a->ops->close(a->sink);
    free(a);
    if (err)
        *err = mg_xstrdup(msg[0] ? msg : mg_strstatus(rc));
    return rc;
}

int mg_audit_new_from_conf(const struct mg_conf *c, struct mg_audit **out, char **err)
{
    struct mg_audit_opts o = {
        .sink = c->audit.sink,
        .target = c->audit.sink == MG_CONF_AUDIT_STORE ? c->store_dsn : c->audit.path,
        .arguments = c->audit.arguments,
        .sync = c->audit.sync,
        .fail_open = c->audit.fail_open,
        .max_queue = c->audit.max_queue,
        .sync_interval_ms = c->audit.sync_interval_ms,
    };
    return mg_audit_new(&o, out, err);
}

void mg_audit_free(struct mg_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    MG_ASSERT(a->head == NULL);
    a->ops->close(a->sink);
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->flushed);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int mg_audit_submit(struct mg_audit *a, struct mg_audit_record *r, struct mg_audit_port *port,
                    mg_audit_done_fn done, void *arg)
{
    struct item *it;
    int rc = 0;

    if (!r)
        return MG_EINVAL;
    if ((done != NULL) != (port != NULL)) {
        mg_audit_record_free(r);
        return MG_EINVAL;
    }
    it = mg_audit_record_link(r);
    memset(it, 0, sizeof *it);
    it->rec = r;
    it->port = port;
    it->done = done;
    it->arg = arg;
    it->bytes = mg_audit_record_size(r);
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        rc = MG_ECANCELED;
    } else if (atomic_load(&a->n_queued) >= a->max_queue || a->bytes + it->bytes > a->max_bytes) {
        a->rejected++;
        rc = MG_ELIMIT;
    } else {
        bool was_empty = a->head == NULL;
        if (a->tail)
            a->tail->next = it;
        else
            a->head = it;
        a->tail = it;
        a->bytes += it->bytes;
        a->submitted++;
        atomic_fetch_add(&a->n_queued, 1);
        /* The writer takes a batch each time it wakes: one signal per
         * batch, not per record. While it gathers a batch (sync: false)
         * it wakes by itself, unless the queue fills. */
        if ((was_empty && (a->idle || a->sync)) || filling(a))
            pthread_cond_signal(&a->work);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        item_free(it);
        return rc;
    }
    if (port)
        port->pending++;
    return 0;
}

bool mg_audit_healthy(const struct mg_audit *a)
{
    struct mg_audit *m = (struct mg_audit *)a; /* atomics read only */
    return a->fail_open || (atomic_load(&m->sink_ok) && atomic_load(&m->n_queued) < a->max_queue);
}

bool mg_audit_wants_sync(const struct mg_audit *a)
{
    return a->sync;
}

enum mg_conf_audit_args mg_audit_arguments(const struct mg_audit *a)
{
    return a->arguments;
}

void mg_audit_stats(struct mg_audit *a, struct mg_audit_stats *out)
{
    pthread_mutex_lock(&a->mu);
    out->queued = atomic_load(&a->n_queued);
    out->written = a->written;
    out->write_failures = a->write_failures;
    out->rejected = a->rejected;
    out->lost = a->lost;
    out->sink_ok = atomic_load(&a->sink_ok);
    out->head_seq = atomic_load(&a->head_seq);
    pthread_mutex_unlock(&a->mu);
}

void mg_audit_last_error(struct mg_audit *a, char *buf, size_t cap)
{
    pthread_mutex_lock(&a->mu);
    snprintf(buf, cap, "%s", a->last_error);
    pthread_mutex_unlock(&a->mu);
}

int mg_audit_flush(struct mg_audit *a, int64_t timeout_ms)
{
    struct timespec dl;
    uint64_t ticket;
    int rc = 0;

    deadline_after(&dl, timeout_ms > 0 ? (uint64_t)timeout_ms : 0);
    pthread_mutex_lock(&a->mu);
    ticket = a->submitted;
    while (a->completed < ticket && rc == 0)
        if (pthread_cond_timedwait(&a->flushed, &a->mu, &dl) == ETIMEDOUT && a->completed < ticket)
            rc = MG_ETIMEDOUT;
    pthread_mutex_unlock(&a->mu);
    return rc;
}

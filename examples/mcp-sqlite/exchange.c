/* Runs slow_count jobs on libuv timers (see exchange.h). A job's timer is
 * one-shot and re-armed each step, so interval 0 still yields to the loop
 * between steps and other requests keep being served. */
#include "exchange.h"

struct mg_msq_job_timer {
    uv_timer_t timer;
    struct mg_msq_exchange *ex; /* NULL once detached; memory lives until close_cb */
    struct mg_msq_job_timer *next;
    json_t *id;
    json_t *token;
    int step;
    int steps;
    uint64_t interval_ms;
    size_t slot;
};

static void job_closed(uv_handle_t *h)
{
    struct mg_msq_job_timer *j = h->data;
    json_decref(j->id);
    json_decref(j->token);
    free(j);
}

/* Unlinks j from its exchange and closes its timer; freed in job_closed. */
static void job_detach(struct mg_msq_job_timer *j)
{
    struct mg_msq_job_timer **pp = &j->ex->jobs;
    while (*pp != j)
        pp = &(*pp)->next;
    *pp = j->next;
    j->ex = NULL;
    uv_close((uv_handle_t *)&j->timer, job_closed);
}

static void finish(struct mg_msq_exchange *ex, json_t *reply)
{
    ex->finishing = true;
    ex->ops->done(ex, reply);
    json_decref(ex->batch);
    free(ex);
}

static void on_tick(uv_timer_t *t)
{
    struct mg_msq_job_timer *j = t->data;
    struct mg_msq_exchange *ex = j->ex;
    j->step++;
    if (j->token != NULL) {
        json_t *note = mg_msq_progress(j->token, j->step, j->steps);
        ex->ops->progress(ex, note);
        json_decref(note);
        /* The sink may have shut everything down while writing. */
        if (j->ex == NULL)
            return;
    }
    if (j->step < j->steps) {
        MG_ASSERT(uv_timer_start(&j->timer, on_tick, j->interval_ms, 0) == 0);
        return;
    }
    json_t *reply = mg_msq_slow_result(j->id, j->steps);
    size_t slot = j->slot;
    job_detach(j);
    ex->outstanding--;
    if (ex->batch != NULL) {
        MG_ASSERT(json_array_set_new(ex->batch, slot, reply) == 0);
        if (ex->outstanding > 0)
            return;
        reply = ex->batch;
        ex->batch = NULL;
    }
    MG_ASSERT(ex->outstanding == 0);
    finish(ex, reply);
}

struct mg_msq_exchange *mg_msq_exchange_start(uv_loop_t *loop, struct mg_msq_out *out,
                                              const struct mg_msq_sink_ops *ops, void *sink)
{
    if (out->n_jobs == 0)
        return NULL;
    struct mg_msq_exchange *ex = mg_xcalloc(1, sizeof *ex);
    ex->ops = ops;
    ex->sink = sink;
    if (json_is_array(out->reply)) {
        ex->batch = out->reply;
        out->reply = NULL;
    }
    for (size_t i = 0; i < out->n_jobs; i++) {
        struct mg_msq_job_timer *j = mg_xcalloc(1, sizeof *j);
        MG_ASSERT(uv_timer_init(loop, &j->timer) == 0);
        j->timer.data = j;
        j->ex = ex;
        j->id = out->jobs[i].id;
        j->token = out->jobs[i].token;
        out->jobs[i].id = out->jobs[i].token = NULL;
        j->steps = out->jobs[i].steps;
        j->interval_ms = (uint64_t)out->jobs[i].interval_ms;
        j->slot = out->jobs[i].slot;
        j->next = ex->jobs;
        ex->jobs = j;
        ex->outstanding++;
        MG_ASSERT(uv_timer_start(&j->timer, on_tick, j->interval_ms, 0) == 0);
    }
    return ex;
}

void mg_msq_exchange_free(struct mg_msq_exchange *ex)
{
    if (ex == NULL || ex->finishing)
        return;
    while (ex->jobs != NULL)
        job_detach(ex->jobs);
    json_decref(ex->batch);
    free(ex);
}

bool mg_msq_exchange_cancel(struct mg_msq_exchange *ex, const json_t *id)
{
    if (ex->batch != NULL || ex->jobs == NULL || !json_equal(ex->jobs->id, (json_t *)id))
        return false;
    job_detach(ex->jobs);
    ex->outstanding--;
    finish(ex, NULL);
    return true;
}

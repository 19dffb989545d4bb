/* An exchange is one inbound transport message (a stdio line or an HTTP body)
 * whose answer waits for slow_count jobs. It owns the jobs' libuv timers and
 * the batch reply under construction, and hands progress notifications and
 * the final reply to its transport through a small ops struct, so stdio and
 * HTTP share the job logic without knowing about each other. */
#ifndef MG_MSQ_EXCHANGE_H
#define MG_MSQ_EXCHANGE_H

#include <uv.h>

#include "tools.h"

struct mg_msq_exchange;
struct mg_msq_job_timer;

struct mg_msq_sink_ops {
    /* A notifications/progress message (borrowed). The sink may drop it. */
    void (*progress)(struct mg_msq_exchange *ex, const json_t *note);
    /* The final reply (owned by the sink), or NULL when the request was
     * cancelled. The exchange is freed as soon as this returns. */
    void (*done)(struct mg_msq_exchange *ex, json_t *reply);
};

struct mg_msq_exchange {
    const struct mg_msq_sink_ops *ops;
    void *sink;                   /* the transport's object; not owned */
    struct mg_msq_exchange *next; /* for the transport's own list */
    json_t *batch;                /* owned batch reply with placeholders, or NULL */
    struct mg_msq_job_timer *jobs;
    int outstanding;
    bool finishing; /* inside ops->done: mg_msq_exchange_free is a no-op */
};

/* Starts out's jobs on loop. Takes the jobs and a batch reply out of out.
 * Returns NULL when out has no jobs (nothing to wait for). */
struct mg_msq_exchange *mg_msq_exchange_start(uv_loop_t *loop, struct mg_msq_out *out,
                                              const struct mg_msq_sink_ops *ops, void *sink);
/* Stops the jobs without calling ops->done and frees ex; NULL is a no-op. */
void mg_msq_exchange_free(struct mg_msq_exchange *ex);
/* notifications/cancelled: if ex is a single request with this id, stops it
 * and calls ops->done(ex, NULL) (MCP "Cancellation": no response is sent).
 * Returns true when ex was cancelled and freed. */
bool mg_msq_exchange_cancel(struct mg_msq_exchange *ex, const json_t *id);

#endif

/* Store access from event loops: a fixed set of store handles used on libuv's
 * threadpool, so no loop thread ever waits on disk or the network. A job runs
 * on a threadpool thread with a handle of its own; its completion runs on the
 * loop that submitted it. The number of queued jobs is bounded: past the
 * bound, submit fails with MG_ELIMIT and the caller answers 503. */
#ifndef MG_STORE_POOL_H
#define MG_STORE_POOL_H

#include "store/store.h"

#include <uv.h>

struct mg_store_pool;

/* Runs on a threadpool thread with exclusive use of st. Returns 0 or MG_E*. */
typedef int (*mg_store_work_fn)(struct mg_store *st, void *arg);
/* Runs on the submitting loop with what work returned (or MG_ECANCELED). */
typedef void (*mg_store_done_fn)(void *arg, int status);

/* Opens n handles on dsn (each migrated to the latest schema by the first;
 * see mg_store_migrate), allowing at most max_queued jobs in flight. On
 * failure *err (if err) gets a malloc'd message. */
int mg_store_pool_new(const char *dsn, size_t n, size_t max_queued, int64_t now,
                      struct mg_store_pool **out, char **err);
/* All jobs must have completed. NULL is a no-op. */
void mg_store_pool_free(struct mg_store_pool *p);
/* Queues work on loop's threadpool. On success done runs exactly once, on
 * loop; on failure (MG_ELIMIT: too many jobs in flight) neither runs. */
int mg_store_pool_submit(struct mg_store_pool *p, uv_loop_t *loop, mg_store_work_fn work,
                         mg_store_done_fn done, void *arg);
/* Runs work now on the calling thread with a pooled handle (CLI, start-up,
 * background threads that are not loops). */
int mg_store_pool_run(struct mg_store_pool *p, mg_store_work_fn work, void *arg);

#endif

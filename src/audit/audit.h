/* The audit writer: takes records from event loops without ever blocking
 * them, and writes them to the configured sink on a thread of its own, in
 * batches (one write and one fdatasync for a file, one transaction for the
 * store), each record chained to the one before by its hash (record.h).
 *
 * Loop side: mg_audit_submit() queues a record and returns at once. The
 * queue is bounded (audit.max_queue records and MG_AUDIT_MAX_QUEUE_BYTES);
 * a full queue fails the submit with MG_ELIMIT and the caller treats the
 * request as unrecorded. With audit.sync the caller passes a completion:
 * it runs on the caller's loop (through an mg_audit_port, a uv_async) once
 * the record is durable, or once its first write failed.
 *
 * Failure: a write that fails leaves the batch queued; the writer retries
 * it (50 ms, doubling to 5 s) until it succeeds, re-reading the chain's
 * head first. While the sink is failing mg_audit_healthy() is false (unless
 * audit.on_failure is allow), so callers refuse requests with a clear error
 * instead of acting unrecorded; the first successful write makes it true.
 *
 * Batches: with sync: true the writer takes what is queued as soon as it
 * is woken, and each batch is durable (fdatasync, COMMIT) before the
 * callers waiting for it go on. With sync: false nobody waits, so the
 * writer gathers records for MG_AUDIT_LINGER_MS after the first one (or
 * until the queue is half full) and a file is fdatasync'ed at most every
 * sync_interval_ms (audit.sync_interval, default 20 ms): a few writes and
 * syncs per second instead of one per request (bench/RESULTS.md).
 *
 * Durability: a record is durable once its batch's fdatasync / COMMIT has
 * returned. With sync: false a kill -9 loses what was queued and not yet
 * written: at most max_queue records, in practice the last
 * MG_AUDIT_LINGER_MS; a power loss loses up to sync_interval_ms more of a
 * file sink. With sync: true nothing whose response was released is lost.
 * A clean stop (mg_audit_free) writes and syncs everything queued first
 * (one attempt if the sink is failing). */
#ifndef MG_AUDIT_AUDIT_H
#define MG_AUDIT_AUDIT_H

#include "audit/record.h"
#include "audit/sink.h"

#include <uv.h>

#define MG_AUDIT_MAX_QUEUE_BYTES (64u << 20) /* queued records' bytes, whatever max_queue */
#define MG_AUDIT_MAX_BATCH       1024        /* records per write */
#define MG_AUDIT_LINGER_MS       2           /* sync: false: a batch gathers this long */

struct mg_audit;
struct mg_audit_port;

struct mg_audit_opts {
    enum mg_conf_audit_sink sink;
    const char *target; /* file: the path; store: the store's DSN; others: unused */
    enum mg_conf_audit_args arguments;
    bool sync;
    bool fail_open;         /* on_failure: allow */
    size_t max_queue;       /* 0: 10000 */
    size_t max_queue_bytes; /* 0: MG_AUDIT_MAX_QUEUE_BYTES */
    uint64_t retry_min_ms;  /* 0: 50 */
    uint64_t retry_max_ms;  /* 0: 5000 */
    /* sync: false, a sink with a sync op: a write is synced within this;
     * 0: MG_CONF_AUDIT_SYNC_INTERVAL_MS. */
    uint64_t sync_interval_ms;
    /* Another sink instead of `sink` (tests, embedders); its open gets
     * target. */
    const struct mg_audit_sink_ops *sink_ops;
};

/* Runs on the caller's loop: status 0 once the record is durable, MG_EIO
 * (or another MG_E*) when its first write failed (it stays queued and is
 * retried: it may still be written later), MG_ECANCELED when the writer
 * stopped before writing it. */
typedef void (*mg_audit_done_fn)(void *arg, int status);

/* Opens the sink, reads the chain's head and starts the writer thread.
 * Blocks (file, database): call at start-up, not on a loop. On failure *err
 * (if err) gets a malloc'd message the caller frees. */
int mg_audit_new(const struct mg_audit_opts *o, struct mg_audit **out, char **err);
/* The same from a loaded configuration's audit: section. */
int mg_audit_new_from_conf(const struct mg_conf *c, struct mg_audit **out, char **err);
/* Writes what is queued, stops the writer, closes the sink. Every port must
 * have no pending completion (their loops have run them). NULL is a no-op. */
void mg_audit_free(struct mg_audit *a);

/* Queues r (taken in every case: freed on failure). Never blocks. done
 * (optional) runs on port's loop as mg_audit_done_fn says; port is needed
 * exactly when done is given. On failure done is never called: MG_ELIMIT
 * when the queue is full, MG_ECANCELED after mg_audit_free began. Thread-safe. */
int mg_audit_submit(struct mg_audit *a, struct mg_audit_record *r, struct mg_audit_port *port,
                    mg_audit_done_fn done, void *arg);

/* False while records cannot be written (the last write failed, or the
 * queue is full) and audit.on_failure is deny: refuse requests until it is
 * true again. Always true with on_failure: allow. Thread-safe, lock-free. */
bool mg_audit_healthy(const struct mg_audit *a);
/* audit.sync: the caller should wait for done before releasing a response. */
bool mg_audit_wants_sync(const struct mg_audit *a);
/* audit.arguments, for mg_audit_record_set_arguments. */
enum mg_conf_audit_args mg_audit_arguments(const struct mg_audit *a);

struct mg_audit_stats {
    uint64_t queued;         /* waiting now, including a batch being written */
    uint64_t written;        /* records durable since start */
    uint64_t write_failures; /* failed batch writes */
    uint64_t rejected;       /* submits refused: queue full */
    uint64_t lost;           /* records dropped at stop because the sink kept failing */
    bool sink_ok;            /* the last write succeeded (or none was tried) */
    int64_t head_seq;        /* the last durable record's seq */
};
void mg_audit_stats(struct mg_audit *a, struct mg_audit_stats *out);
/* The last write failure's message, "" if none yet (copied into buf). */
void mg_audit_last_error(struct mg_audit *a, char *buf, size_t cap);
/* Blocks until everything submitted before the call is durable or
 * timeout_ms passes: 0, or MG_ETIMEDOUT. Not for loop threads (tests, CLI). */
int mg_audit_flush(struct mg_audit *a, int64_t timeout_ms);

/* A loop's mailbox for completions. One per loop that submits with done;
 * created and closed on that loop's thread. */
int mg_audit_port_new(uv_loop_t *loop, struct mg_audit_port **out);
/* Completions submitted through the port and not yet run. */
size_t mg_audit_port_pending(const struct mg_audit_port *p);
/* Closes the handle; the port is freed in its close callback. Pending must
 * be 0 (a draining worker waits for its requests, which wait for their
 * completions). */
void mg_audit_port_close(struct mg_audit_port *p);

#endif

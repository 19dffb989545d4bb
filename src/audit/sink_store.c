/* The store sink: records go to the audit table of the identity store
 * (SQLite or PostgreSQL) through a store handle of the writer thread's own.
 * A batch is one transaction. Gateways that share a PostgreSQL store share
 * one chain: an append that lost the race for the head comes back as
 * MG_EAGAIN and the writer re-chains it (store.h, mg_store_audit_append). */
#include "audit/sink.h"
#include "store/store.h"

#include <time.h>

static int store_open(const char *dsn, void **out, char *err, size_t cap)
{
    struct mg_store *st = NULL;
    char *e = NULL;
    int rc = mg_store_open(dsn, &st, &e);
    if (rc == 0 && (rc = mg_store_migrate(st, (int64_t)time(NULL))) != 0)
        snprintf(err, cap, "audit store: %s", mg_store_last_error(st));
    else if (rc != 0)
        snprintf(err, cap, "audit store: %s", e ? e : mg_strstatus(rc));
    free(e);
    if (rc != 0) {
        mg_store_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int store_head(void *p, int64_t *seq, char hash[MG_AUDIT_HASH_HEX + 1], char *err,
                      size_t cap)
{
    struct mg_store *st = p;
    int rc = mg_store_audit_last(st, seq, hash);
    if (rc != 0)
        snprintf(err, cap, "audit store: %s", mg_store_last_error(st));
    return rc;
}

static int store_write(void *p, const struct mg_audit_entry *e, size_t n, bool durable, char *err,
                       size_t cap)
{
    struct mg_store *st = p;
    struct mg_store_audit_row *rows = mg_xcalloc(n, sizeof *rows);
    int rc;

    for (size_t i = 0; i < n; i++) {
        /* The store only reads the rows: the casts do not let it write. */
        rows[i] = (struct mg_store_audit_row){
            .seq = e[i].seq,
            .time_ms = e[i].time_ms,
            .route = (char *)e[i].cols.route,
            .subject = (char *)e[i].cols.subject,
            .email = (char *)e[i].cols.email,
            .method = (char *)e[i].cols.method,
            .name = (char *)e[i].cols.name,
            .decision = (char *)e[i].cols.decision,
            .prev = (char *)e[i].prev,
            .hash = (char *)e[i].hash,
            .record = (char *)e[i].text,
        };
    }
    rc = mg_store_audit_append(st, rows, n);
    if (rc != 0)
        snprintf(err, cap, "audit store: %s", mg_store_last_error(st));
    free(rows);
    return rc;
}

static void store_close(void *p)
{
    mg_store_free(p);
}

const struct mg_audit_sink_ops mg_audit__store_ops = {
    .name = "store",
    .persistent = true,
    .wants_cols = true,
    .open = store_open,
    .head = store_head,
    .write = store_write,
    .close = store_close,
};

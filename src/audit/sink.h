/* Audit sinks: where the writer thread puts chained records. Each sink is a
 * const struct mg_audit_sink_ops; the built-in ones are JSON lines (a file,
 * or standard output), the store's audit table and syslog(3). Every op runs
 * on the audit writer thread only (open: on the thread creating the writer,
 * before it starts) and may block. */
#ifndef MG_AUDIT_SINK_H
#define MG_AUDIT_SINK_H

#include "audit/record.h"

/* One record, chained and serialised. */
struct mg_audit_entry {
    int64_t seq;
    int64_t time_ms;
    const char *text; /* canonical JSON, no newline, NUL-terminated */
    size_t len;
    const char *prev;                 /* MG_AUDIT_HASH_HEX hex digits */
    const char *hash;                 /* SHA-256 of text */
    struct mg_audit_record_cols cols; /* only for a sink that wants_cols */
};

struct mg_audit_sink_ops {
    const char *name;
    /* false: the chain restarts at seq 1 every time the sink is opened, and
     * `mcpgate audit verify` cannot read it back (stdout, syslog). */
    bool persistent;
    /* The sink stores mg_audit_entry.cols (else they are left empty). */
    bool wants_cols;
    /* target: the file path, "stdout", the store DSN, or NULL (syslog). On
     * success *sink is the sink's state, passed to every other op. On
     * failure err (cap bytes) says why. */
    int (*open)(const char *target, void **sink, char *err, size_t cap);
    /* The last record's seq and hash; 0 and mg_audit_zero_hash when there
     * is none. Called after open and again after a failed write. */
    int (*head)(void *sink, int64_t *seq, char hash[MG_AUDIT_HASH_HEX + 1], char *err, size_t cap);
    /* Writes e[0..n) (consecutive seq, each chained to the one before) all
     * or nothing; durably at return (fsync, commit) when `durable`, else
     * at the latest when sync next returns. MG_EAGAIN: another writer
     * moved the chain's head; nothing was written, the caller re-reads
     * head and re-chains. Any other failure: nothing was written, err says
     * why. */
    int (*write)(void *sink, const struct mg_audit_entry *e, size_t n, bool durable, char *err,
                 size_t cap);
    /* Makes what write put down without `durable` durable. NULL: every
     * write is durable anyway (a database commit, syslog). */
    int (*sync)(void *sink, char *err, size_t cap);
    /* NULL is a no-op. */
    void (*close)(void *sink);
};

extern const struct mg_audit_sink_ops mg_audit__file_ops;   /* target: path or "stdout" */
extern const struct mg_audit_sink_ops mg_audit__stdout_ops; /* target ignored */
extern const struct mg_audit_sink_ops mg_audit__store_ops;  /* target: store DSN */
extern const struct mg_audit_sink_ops mg_audit__syslog_ops; /* target ignored */

#endif

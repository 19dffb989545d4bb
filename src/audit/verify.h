/* Reading the audit trail back: verifying its hash chain and querying it,
 * from a file the file sink wrote or from the store's audit table. Used by
 * `mcpgate audit verify` and `mcpgate audit query`; blocking, never on a
 * loop.
 *
 * What the chain proves: every record carries the SHA-256 of the one before
 * it and its sequence number, so changing a record's bytes, removing one or
 * slipping one in breaks the chain at that point, and verification names
 * the first place it breaks. What it cannot prove on its own: that nothing
 * was cut off the end (keep the head that verify prints somewhere the
 * gateway's host cannot write, and compare), or that someone able to write
 * the file did not rewrite every record after their change (the same
 * remedy: an external copy of an earlier head exposes it). */
#ifndef MG_AUDIT_VERIFY_H
#define MG_AUDIT_VERIFY_H

#include "audit/record.h"
#include "store/store.h"

enum mg_audit_problem {
    MG_AUDIT_INTACT = 0,
    MG_AUDIT_EDITED,   /* a record's bytes (or a store column) changed */
    MG_AUDIT_INSERTED, /* a record where the chain has no place for it */
    MG_AUDIT_DELETED,  /* records missing */
};

struct mg_audit_verify {
    enum mg_audit_problem problem;
    int64_t records;  /* records that verified before the problem (all, when intact) */
    int64_t seq;      /* the record concerned; DELETED: the first missing seq */
    int64_t line;     /* its line in the file, 1-based (0 for the store) */
    int64_t head_seq; /* intact: the last record's seq (0 if none) ... */
    char head_hash[MG_AUDIT_HASH_HEX + 1]; /* ... and its hash */
    char message[512];                     /* one line, for people */
};

const char *mg_audit_problem_name(enum mg_audit_problem p);

/* Walks the chain in a file written by the file sink. 0: intact. MG_EPROTO:
 * broken, out says where and how (the first problem only). MG_EIO: the
 * file cannot be read (out->message). */
int mg_audit_verify_file(const char *path, struct mg_audit_verify *out);
/* The same for the store's audit table; also checks that every row's
 * columns (seq, hash, prev, time, route, user, method, name, decision)
 * match its record, since queries trust them. MG_EIO and friends: the store
 * failed (out->message). */
int mg_audit_verify_store(struct mg_store *st, struct mg_audit_verify *out);

/* Records matching f (see mg_store_audit_filter: user, tool, decision,
 * route, method, since_ms; limit, newest; after_seq is ignored for files),
 * parsed, in chain order, as a new JSON array. Lines that are not records
 * are skipped. */
int mg_audit_query_file(const char *path, const struct mg_store_audit_filter *f, json_t **out,
                        char *err, size_t cap);
int mg_audit_query_store(struct mg_store *st, const struct mg_store_audit_filter *f, json_t **out,
                         char *err, size_t cap);
/* Whether one parsed record matches f. */
bool mg_audit_record_matches(const json_t *rec, const struct mg_store_audit_filter *f);

#endif

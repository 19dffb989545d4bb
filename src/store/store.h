/* The identity store: users, OAuth clients, tokens (stored only as hashes),
 * the revocation sequence and the audit chain (append-only decision
 * records, written by src/audit), behind one interface. Backends (SQLite, embedded;
 * PostgreSQL, for several instances) implement struct mg_store_ops; mg_store_open
 * picks one from the DSN, and the mg_store_* functions are thin wrappers that
 * check arguments and call the ops, so adding a backend never edits them.
 *
 * Threading: every function here is synchronous and may block on disk or the
 * network. They are meant to run on libuv's threadpool (uv_queue_work), never
 * on a loop thread; this module itself does not use libuv. One struct mg_store
 * is used by one thread at a time (the caller keeps a small pool of handles);
 * several handles on the same database may be used concurrently.
 *
 * Conventions: times are int64 Unix seconds passed in by the caller, so the
 * store is pure with respect to the clock. Every function returns 0 or a
 * negative MG_E* status; the human-readable reason of the last failure is
 * mg_store_last_error(). Statuses:
 *   MG_ENOTFOUND  the named row does not exist;
 *   MG_EINVAL     bad argument, or a uniqueness violation (duplicate email,
 *                 client_id or token hash: last error says "already exists"),
 *                 or a database schema newer than this code;
 *   MG_ETIMEDOUT  the database stayed locked past the busy timeout, or a
 *                 statement ran past statement_timeout (PostgreSQL);
 *   MG_EAGAIN     an audit append lost the race for the chain's head;
 *   MG_ENOMEM     the backend ran out of memory;
 *   MG_EIO        any other backend or I/O failure.
 * Strings returned are malloc'd and owned by the caller; free them with the
 * matching mg_store_*_fini / mg_store_*_list_free helper. */
#ifndef MG_STORE_STORE_H
#define MG_STORE_STORE_H

#include "core/common.h"

#define MG_STORE_HASH_LEN 32 /* SHA-256 of the token; tokens are never stored */

struct mg_store_user {
    int64_t id;
    char *email;         /* unique, compared case-insensitively (ASCII) */
    char *name;          /* may be "" */
    char *groups_json;   /* JSON array text, e.g. ["admins"] */
    char *password_hash; /* argon2id encoded string; NULL for accounts without a password */
    bool disabled;
    int64_t failed_logins;   /* consecutive failures since the last reset */
    int64_t last_failure_at; /* 0 when never */
    int64_t created_at;
};

enum mg_store_client_kind {
    MG_STORE_CLIENT_DYNAMIC,           /* RFC 7591 dynamic registration */
    MG_STORE_CLIENT_METADATA_DOCUMENT, /* client ID metadata document (https URL) */
    MG_STORE_CLIENT_CONFIG,            /* pre-registered in the configuration */
};

struct mg_store_client {
    char *client_id;
    char *name;
    char *redirect_uris_json; /* JSON array text */
    char *metadata_json;      /* JSON object text (the registration metadata) */
    enum mg_store_client_kind kind;
    int64_t created_at;
};

enum mg_store_token_kind {
    MG_STORE_TOKEN_ACCESS,
    MG_STORE_TOKEN_REFRESH,
    MG_STORE_TOKEN_CODE, /* authorization code; single use: see mg_store_token_revoke */
    MG_STORE_TOKEN_SERVICE,
};

struct mg_store_token {
    uint8_t hash[MG_STORE_HASH_LEN];
    bool has_hash; /* false in listings for codes: their hashes are never listed */
    enum mg_store_token_kind kind;
    char *family_id; /* refresh-rotation family; NULL if none */
    char *client_id; /* NULL for service tokens */
    char *subject;
    char *audience; /* the route the token is bound to (RFC 8707) */
    char *scopes;   /* space-separated */
    int64_t expires_at;
    int64_t created_at;
    int64_t revoked_at;  /* 0 while not revoked */
    char *identity_json; /* JSON object: who the token speaks for (email, name,
                          * groups, claims, idp, method, owner); "{}" if none */
    char *extra_json;    /* JSON object: grant data (a code's redirect_uri,
                          * code_challenge, ...); "{}" if none */
};

/* One audit record as the store keeps it (src/audit writes them). record is
 * the canonical JSON text whose SHA-256 is hash; the other columns repeat
 * some of its fields so queries need not parse it. Strings are "" when the
 * record has no such field, never NULL in rows read back. */
#define MG_STORE_AUDIT_HASH_HEX 64
struct mg_store_audit_row {
    int64_t seq;     /* 1, 2, 3, ... without gaps */
    int64_t time_ms; /* Unix milliseconds */
    char *route;
    char *subject;
    char *email;
    char *method;   /* JSON-RPC method */
    char *name;     /* tool / prompt name or resource URI */
    char *decision; /* "allow" or "deny" */
    char *prev;     /* 64 hex: hash of the record seq - 1 (64 zeros for seq 1) */
    char *hash;     /* 64 hex: SHA-256 of record */
    char *record;   /* canonical JSON */
};

/* Filters of mg_store_audit_query; NULL / 0 fields do not filter. */
struct mg_store_audit_filter {
    const char *user;     /* subject or email equals */
    const char *tool;     /* name equals */
    const char *decision; /* "allow" or "deny" */
    const char *route;
    const char *method;
    int64_t since_ms;  /* time_ms >= since_ms */
    int64_t after_seq; /* seq > after_seq (paging through the chain) */
    size_t limit;      /* at most this many rows; 0 or above MG_STORE_AUDIT_MAX_ROWS: that */
    bool newest;       /* the last `limit` matching rows rather than the first */
};
#define MG_STORE_AUDIT_MAX_ROWS 10000

/* A person's remembered consent for one client on one route (audience). */
struct mg_store_consent {
    char *subject;
    char *client_id;
    char *audience;
    char *scopes; /* space-separated, as approved */
    int64_t created_at;
    int64_t expires_at;
};

struct mg_store;

/* Backend interface. Each backend defines one const instance; arguments have
 * been checked by the wrappers below (non-NULL where required). A backend
 * reports failure details with mg_store__set_error. */
struct mg_store_ops {
    const char *name;
    /* Opens the database named by the DSN with its scheme removed; sets
     * st->backend. On failure st->backend must be left NULL. */
    int (*open)(struct mg_store *st, const char *target);
    void (*close)(struct mg_store *st);
    int (*migrate)(struct mg_store *st, int64_t now);
    int (*schema_version)(struct mg_store *st, int64_t *version);

    int (*user_create)(struct mg_store *st, const struct mg_store_user *u, int64_t now,
                       int64_t *id);
    int (*user_get)(struct mg_store *st, const char *email, struct mg_store_user *out);
    int (*user_list)(struct mg_store *st, struct mg_store_user **out, size_t *n);
    int (*user_set_disabled)(struct mg_store *st, const char *email, bool disabled);
    int (*user_set_password)(struct mg_store *st, const char *email, const char *password_hash);
    int (*user_record_failure)(struct mg_store *st, const char *email, int64_t now, int64_t *count);
    int (*user_reset_failures)(struct mg_store *st, const char *email);

    int (*client_insert)(struct mg_store *st, const struct mg_store_client *c);
    int (*client_get)(struct mg_store *st, const char *client_id, struct mg_store_client *out);
    int (*client_list)(struct mg_store *st, struct mg_store_client **out, size_t *n);
    int (*client_count_dynamic_since)(struct mg_store *st, int64_t since, int64_t *n);
    int (*client_delete)(struct mg_store *st, const char *client_id);

    int (*token_insert)(struct mg_store *st, const struct mg_store_token *t);
    int (*token_get)(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN],
                     struct mg_store_token *out);
    int (*token_revoke)(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN], int64_t now,
                        size_t *n_revoked);
    int (*token_revoke_family)(struct mg_store *st, const char *family_id, int64_t now,
                               size_t *n_revoked);
    int (*token_revoke_client)(struct mg_store *st, const char *client_id, int64_t now,
                               size_t *n_revoked);
    int (*token_revoke_subject)(struct mg_store *st, const char *subject, int64_t now,
                                size_t *n_revoked);
    int (*token_list)(struct mg_store *st, const char *subject, const char *client_id,
                      struct mg_store_token **out, size_t *n);
    int (*token_delete_expired)(struct mg_store *st, int64_t now, size_t *n_deleted);
    int (*revocation_seq)(struct mg_store *st, uint64_t *seq);
    int (*revocation_wait)(struct mg_store *st, uint64_t known, int64_t timeout_ms, uint64_t *seq);

    int (*consent_put)(struct mg_store *st, const struct mg_store_consent *c);
    int (*consent_get)(struct mg_store *st, const char *subject, const char *client_id,
                       const char *audience, int64_t now, struct mg_store_consent *out);
    int (*consent_delete_subject)(struct mg_store *st, const char *subject, size_t *n_deleted);

    int (*secret_get_or_create)(struct mg_store *st, const char *name, const uint8_t *candidate,
                                size_t len, uint8_t *out, size_t cap, size_t *out_len);

    int (*audit_append)(struct mg_store *st, const struct mg_store_audit_row *rows, size_t n);
    int (*audit_last)(struct mg_store *st, int64_t *seq, char hash[MG_STORE_AUDIT_HASH_HEX + 1]);
    int (*audit_query)(struct mg_store *st, const struct mg_store_audit_filter *f,
                       struct mg_store_audit_row **out, size_t *n);
};

struct mg_store {
    const struct mg_store_ops *ops;
    void *backend;    /* owned by the backend */
    char *last_error; /* owned; NULL when none */
};

/* Opens a store. dsn: "sqlite:PATH" or a plain PATH selects SQLite (the file
 * is created with mode 0600 and must not be a symlink); "postgres://" and
 * "postgresql://" select PostgreSQL (libpq connection URI; connect_timeout
 * and statement_timeout are 5 s unless the DSN, role or database sets them). On
 * success *out is owned by the caller (mg_store_free). On failure *err, if err
 * is non-NULL, receives a malloc'd message the caller frees. Does not migrate:
 * call mg_store_migrate. */
int mg_store_open(const char *dsn, struct mg_store **out, char **err);
/* Closes the database synchronously and frees the handle; NULL is a no-op. */
void mg_store_free(struct mg_store *st);
/* The reason of the last failure on this handle, "" if none. Owned by the
 * handle, valid until its next call. */
const char *mg_store_last_error(const struct mg_store *st);

/* Applies, in one transaction, every migration newer than the database and
 * records each in schema_migrations (version, applied_at = now). Idempotent.
 * A database whose recorded version is newer than this code knows is refused
 * with MG_EINVAL and nothing is changed. */
int mg_store_migrate(struct mg_store *st, int64_t now);
/* The highest applied migration (0 for an empty database). */
int mg_store_schema_version(struct mg_store *st, int64_t *version);
/* The newest migration this code knows. */
int64_t mg_store_schema_latest(void);

/* Users. u->email is required; NULL name / groups_json take "" / "[]".
 * Duplicate email (case-insensitive) is MG_EINVAL. *id (optional) gets the new
 * row id. */
int mg_store_user_create(struct mg_store *st, const struct mg_store_user *u, int64_t now,
                         int64_t *id);
/* Fills *out (caller: mg_store_user_fini) or MG_ENOTFOUND. */
int mg_store_user_get(struct mg_store *st, const char *email, struct mg_store_user *out);
/* All users ordered by email; caller frees with mg_store_user_list_free. */
int mg_store_user_list(struct mg_store *st, struct mg_store_user **out, size_t *n);
int mg_store_user_set_disabled(struct mg_store *st, const char *email, bool disabled);
/* password_hash may be NULL to remove the password. */
int mg_store_user_set_password(struct mg_store *st, const char *email, const char *password_hash);
/* Increments the failed-login count and sets last_failure_at = now; *count
 * (optional) gets the new count, for throttling. */
int mg_store_user_record_failure(struct mg_store *st, const char *email, int64_t now,
                                 int64_t *count);
/* After a successful sign-in: count back to 0 (last_failure_at kept). */
int mg_store_user_reset_failures(struct mg_store *st, const char *email);
void mg_store_user_fini(struct mg_store_user *u);
void mg_store_user_list_free(struct mg_store_user *list, size_t n);

/* OAuth clients. Duplicate client_id is MG_EINVAL. */
int mg_store_client_insert(struct mg_store *st, const struct mg_store_client *c);
int mg_store_client_get(struct mg_store *st, const char *client_id, struct mg_store_client *out);
/* All clients ordered by created_at, then client_id. */
int mg_store_client_list(struct mg_store *st, struct mg_store_client **out, size_t *n);
/* Dynamic registrations with created_at >= since (registration rate limit). */
int mg_store_client_count_dynamic_since(struct mg_store *st, int64_t since, int64_t *n);
/* Deletes the client row only; revoke its tokens with mg_store_token_revoke_client. */
int mg_store_client_delete(struct mg_store *st, const char *client_id);
void mg_store_client_fini(struct mg_store_client *c);
void mg_store_client_list_free(struct mg_store_client *list, size_t n);

/* Tokens. t->has_hash is ignored (the hash is always stored); subject is
 * required. Duplicate hash is MG_EINVAL. */
int mg_store_token_insert(struct mg_store *st, const struct mg_store_token *t);
/* Returns revoked and expired tokens too: the caller decides (revoked_at,
 * expires_at). MG_ENOTFOUND if no such hash. */
int mg_store_token_get(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN],
                       struct mg_store_token *out);
/* Revocations set revoked_at = now on rows not yet revoked and, in the same
 * transaction, bump the revocation sequence once if any row changed.
 * *n_revoked (optional) gets the number of rows this call revoked.
 * mg_store_token_revoke: MG_ENOTFOUND for an unknown hash; an already revoked
 * token is success with *n_revoked == 0 (RFC 7009 §2.2). Because the update is
 * conditional, exactly one caller sees *n_revoked == 1: that is how an
 * authorization code is consumed once. The others match nothing and return 0
 * with *n_revoked == 0. */
int mg_store_token_revoke(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN], int64_t now,
                          size_t *n_revoked);
int mg_store_token_revoke_family(struct mg_store *st, const char *family_id, int64_t now,
                                 size_t *n_revoked);
int mg_store_token_revoke_client(struct mg_store *st, const char *client_id, int64_t now,
                                 size_t *n_revoked);
int mg_store_token_revoke_subject(struct mg_store *st, const char *subject, int64_t now,
                                  size_t *n_revoked);
/* Tokens filtered by subject and/or client_id (NULL: any), ordered by
 * created_at. Codes come without their hash (has_hash false, hash zeroed). */
int mg_store_token_list(struct mg_store *st, const char *subject, const char *client_id,
                        struct mg_store_token **out, size_t *n);
/* Deletes tokens with expires_at <= now. */
int mg_store_token_delete_expired(struct mg_store *st, int64_t now, size_t *n_deleted);
void mg_store_token_fini(struct mg_store_token *t);
void mg_store_token_list_free(struct mg_store_token *list, size_t n);

/* A counter that only grows, bumped by every revocation that changed a row.
 * Cheap to read: instances poll it (or get notified) to drop cached tokens. */
int mg_store_revocation_seq(struct mg_store *st, uint64_t *seq);

/* Blocks until the revocation sequence differs from known, or timeout_ms has
 * passed; *seq gets the current value either way. PostgreSQL wakes at once on
 * NOTIFY mcpgate_revocation (sent by every revoking transaction); SQLite polls
 * the counter every 50 ms. A dead connection is MG_EIO (the caller treats its
 * cache as stale) and is re-established on the next call. Runs on the
 * watcher thread only. */
int mg_store_revocation_wait(struct mg_store *st, uint64_t known, int64_t timeout_ms,
                             uint64_t *seq);

/* Consents. put replaces any consent for the same (subject, client_id,
 * audience). get returns MG_ENOTFOUND when none exists or it has expired
 * (expires_at <= now). */
int mg_store_consent_put(struct mg_store *st, const struct mg_store_consent *c);
int mg_store_consent_get(struct mg_store *st, const char *subject, const char *client_id,
                         const char *audience, int64_t now, struct mg_store_consent *out);
int mg_store_consent_delete_subject(struct mg_store *st, const char *subject, size_t *n_deleted);
void mg_store_consent_fini(struct mg_store_consent *c);

/* Shared secrets (the key that seals browser cookies, ...): returns the value
 * stored under name, first inserting candidate (len bytes) if there is none,
 * atomically, so every instance on one database ends up with the same value.
 * MG_ELIMIT if the stored value does not fit cap. */
int mg_store_secret_get_or_create(struct mg_store *st, const char *name, const uint8_t *candidate,
                                  size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* The audit chain (src/audit). Appends rows[0..n) (1 to
 * MG_STORE_AUDIT_MAX_ROWS, consecutive seq) in one transaction, durable at
 * return, and only if they continue the stored chain: rows[0].seq is one
 * past the highest stored seq and rows[0].prev is that row's hash (seq 1 on
 * an empty table). If another writer (another gateway on the same
 * database) appended first, nothing is written and the result is
 * MG_EAGAIN: read audit_last again, re-chain, retry. Appends from several
 * handles are serialised (SQLite: the write lock; PostgreSQL: an advisory
 * transaction lock). MG_EINVAL for rows that are malformed (hash not 64
 * hex, decision not allow/deny, seq not consecutive). */
int mg_store_audit_append(struct mg_store *st, const struct mg_store_audit_row *rows, size_t n);
/* The newest row's seq and hash; seq 0 and 64 zeros when there is none. */
int mg_store_audit_last(struct mg_store *st, int64_t *seq, char hash[MG_STORE_AUDIT_HASH_HEX + 1]);
/* Rows matching f, ordered by seq (ascending, also with f->newest). The
 * caller frees them with mg_store_audit_list_free. */
int mg_store_audit_query(struct mg_store *st, const struct mg_store_audit_filter *f,
                         struct mg_store_audit_row **out, size_t *n);
void mg_store_audit_row_fini(struct mg_store_audit_row *r);
void mg_store_audit_list_free(struct mg_store_audit_row *list, size_t n);

const char *mg_store_client_kind_name(enum mg_store_client_kind k);
const char *mg_store_token_kind_name(enum mg_store_token_kind k);
/* Parses the names above; MG_EINVAL for anything else. */
int mg_store_client_kind_parse(const char *s, enum mg_store_client_kind *out);
int mg_store_token_kind_parse(const char *s, enum mg_store_token_kind *out);

/* For backends only. */
void mg_store__set_error(struct mg_store *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Migrations are backend SQL, but their count is shared so every backend
 * agrees on mg_store_schema_latest(). */
#define MG_STORE__SCHEMA_LATEST 3
extern const struct mg_store_ops mg_store__sqlite_ops;
extern const struct mg_store_ops mg_store__postgres_ops;

#endif

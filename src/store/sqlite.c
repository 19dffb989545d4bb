/* The SQLite store backend: the embedded default, one file in the state
 * directory. It owns the connection, a cache of prepared statements (every
 * query is a constant with bound parameters; no SQL is ever built from data)
 * and the SQLite schema migrations. Durability: WAL with synchronous=FULL, so
 * a token that was reported issued survives kill -9 and power loss. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum q {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_VERSION,
    Q_USER_INSERT,
    Q_USER_GET,
    Q_USER_LIST,
    Q_USER_DISABLE,
    Q_USER_PASSWORD,
    Q_USER_FAIL,
    Q_USER_RESET,
    Q_CLIENT_INSERT,
    Q_CLIENT_GET,
    Q_CLIENT_LIST,
    Q_CLIENT_COUNT,
    Q_CLIENT_DELETE,
    Q_TOKEN_INSERT,
    Q_TOKEN_GET,
    Q_TOKEN_EXISTS,
    Q_TOKEN_REVOKE,
    Q_TOKEN_REVOKE_FAMILY,
    Q_TOKEN_REVOKE_CLIENT,
    Q_TOKEN_REVOKE_SUBJECT,
    Q_TOKEN_LIST,
    Q_TOKEN_DELETE_EXPIRED,
    Q_SEQ_BUMP,
    Q_SEQ_GET,
    Q_CONSENT_PUT,
    Q_CONSENT_GET,
    Q_CONSENT_DELETE_SUBJECT,
    Q_SECRET_INSERT,
    Q_SECRET_GET,
    Q_AUDIT_INSERT,
    Q_AUDIT_LAST,
    Q_AUDIT_QUERY,
    Q_AUDIT_QUERY_NEWEST,
    Q__N
};

#define USER_COLS                                                                                  \
    "id, email, name, groups, password_hash, disabled, failed_logins, last_failure_at, created_at"
#define CLIENT_COLS "client_id, name, redirect_uris, metadata, kind, created_at"
#define TOKEN_COLS                                                                                 \
    "hash, kind, family_id, client_id, subject, audience, scopes, expires_at, created_at, "        \
    "revoked_at, identity_json, extra_json"
#define CONSENT_COLS "subject, client_id, audience, scopes, created_at, expires_at"
#define AUDIT_COLS   "seq, time_ms, route, subject, email, method, name, decision, prev, hash, record"
/* NULL parameters do not filter; the user matches the subject or the email
 * (ASCII case-insensitively, like users). */
#define AUDIT_WHERE                                                                                \
    " WHERE (?1 IS NULL OR subject = ?1 OR lower(email) = lower(?1))"                              \
    " AND (?2 IS NULL OR name = ?2) AND (?3 IS NULL OR decision = ?3)"                             \
    " AND (?4 IS NULL OR route = ?4) AND (?5 IS NULL OR method = ?5)"                              \
    " AND time_ms >= ?6 AND seq > ?7"

static const char *const sql[Q__N] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [Q_USER_INSERT] =
        "INSERT INTO users (email, name, groups, password_hash, disabled, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_USER_GET] = "SELECT " USER_COLS " FROM users WHERE lower(email) = lower(?1)",
    [Q_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY lower(email)",
    [Q_USER_DISABLE] = "UPDATE users SET disabled = ?2 WHERE lower(email) = lower(?1)",
    [Q_USER_PASSWORD] = "UPDATE users SET password_hash = ?2 WHERE lower(email) = lower(?1)",
    [Q_USER_FAIL] = "UPDATE users SET failed_logins = failed_logins + 1, last_failure_at = ?2 "
                    "WHERE lower(email) = lower(?1) RETURNING failed_logins",
    [Q_USER_RESET] = "UPDATE users SET failed_logins = 0 WHERE lower(email) = lower(?1)",
    [Q_CLIENT_INSERT] =
        "INSERT INTO oauth_clients (" CLIENT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_CLIENT_GET] = "SELECT " CLIENT_COLS " FROM oauth_clients WHERE client_id = ?1",
    [Q_CLIENT_LIST] = "SELECT " CLIENT_COLS " FROM oauth_clients ORDER BY created_at, client_id",
    [Q_CLIENT_COUNT] =
        "SELECT count(*) FROM oauth_clients WHERE kind = 'dynamic' AND created_at >= ?1",
    [Q_CLIENT_DELETE] = "DELETE FROM oauth_clients WHERE client_id = ?1",
    [Q_TOKEN_INSERT] = "INSERT INTO tokens (" TOKEN_COLS ") "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11)",
    [Q_TOKEN_GET] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?1",
    [Q_TOKEN_EXISTS] = "SELECT 1 FROM tokens WHERE hash = ?1",
    [Q_TOKEN_REVOKE] = "UPDATE tokens SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at IS NULL",
    [Q_TOKEN_REVOKE_FAMILY] =
        "UPDATE tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
    [Q_TOKEN_REVOKE_CLIENT] =
        "UPDATE tokens SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
    [Q_TOKEN_REVOKE_SUBJECT] =
        "UPDATE tokens SET revoked_at = ?2 WHERE subject = ?1 AND revoked_at IS NULL",
    [Q_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens WHERE (?1 IS NULL OR subject = ?1) "
                     "AND (?2 IS NULL OR client_id = ?2) ORDER BY created_at, rowid",
    [Q_TOKEN_DELETE_EXPIRED] = "DELETE FROM tokens WHERE expires_at <= ?1",
    [Q_SEQ_BUMP] = "UPDATE revocation_seq SET seq = seq + 1 WHERE id = 1",
    [Q_SEQ_GET] = "SELECT seq FROM revocation_seq WHERE id = 1",
    [Q_CONSENT_PUT] = "INSERT INTO consents (" CONSENT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                      "ON CONFLICT (subject, client_id, audience) DO UPDATE SET "
                      "scopes = excluded.scopes, created_at = excluded.created_at, "
                      "expires_at = excluded.expires_at",
    [Q_CONSENT_GET] = "SELECT " CONSENT_COLS " FROM consents WHERE subject = ?1 "
                      "AND client_id = ?2 AND audience = ?3 AND expires_at > ?4",
    [Q_CONSENT_DELETE_SUBJECT] = "DELETE FROM consents WHERE subject = ?1",
    /* The signature carries no time: created_at is the database's clock, for
     * people reading the table only. */
    [Q_SECRET_INSERT] = "INSERT OR IGNORE INTO secrets (name, value, created_at) "
                        "VALUES (?1, ?2, unixepoch())",
    [Q_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
    [Q_AUDIT_INSERT] = "INSERT INTO audit (" AUDIT_COLS ") "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [Q_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [Q_AUDIT_QUERY] = "SELECT " AUDIT_COLS " FROM audit" AUDIT_WHERE " ORDER BY seq LIMIT ?8",
    [Q_AUDIT_QUERY_NEWEST] =
        "SELECT " AUDIT_COLS " FROM audit" AUDIT_WHERE " ORDER BY seq DESC LIMIT ?8",
};

/* Migrations, applied in order, each exactly once. Never edit a released
 * one: add the next version. MG_STORE__SCHEMA_LATEST is the last version. */
static const struct {
    int64_t version;
    const char *sql;
} migrations[] = {
    {1, "CREATE TABLE users ("
        " id INTEGER PRIMARY KEY,"
        " email TEXT NOT NULL,"
        " name TEXT NOT NULL DEFAULT '',"
        " groups TEXT NOT NULL DEFAULT '[]',"
        " password_hash TEXT,"
        " disabled INTEGER NOT NULL DEFAULT 0,"
        " failed_logins INTEGER NOT NULL DEFAULT 0,"
        " last_failure_at INTEGER NOT NULL DEFAULT 0,"
        " created_at INTEGER NOT NULL) STRICT;"
        "CREATE UNIQUE INDEX users_email ON users (lower(email));"
        "CREATE TABLE oauth_clients ("
        " client_id TEXT PRIMARY KEY NOT NULL,"
        " name TEXT NOT NULL DEFAULT '',"
        " redirect_uris TEXT NOT NULL DEFAULT '[]',"
        " metadata TEXT NOT NULL DEFAULT '{}',"
        " kind TEXT NOT NULL CHECK (kind IN ('dynamic', 'metadata_document', 'config')),"
        " created_at INTEGER NOT NULL) STRICT;"
        "CREATE INDEX oauth_clients_kind_created ON oauth_clients (kind, created_at);"
        "CREATE TABLE tokens ("
        " hash BLOB NOT NULL CHECK (length(hash) = 32),"
        " kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh', 'code', 'service')),"
        " family_id TEXT,"
        " client_id TEXT,"
        " subject TEXT NOT NULL,"
        " audience TEXT NOT NULL DEFAULT '',"
        " scopes TEXT NOT NULL DEFAULT '',"
        " expires_at INTEGER NOT NULL,"
        " created_at INTEGER NOT NULL,"
        " revoked_at INTEGER) STRICT;"
        "CREATE UNIQUE INDEX tokens_hash ON tokens (hash);"
        "CREATE INDEX tokens_family ON tokens (family_id);"
        "CREATE INDEX tokens_client ON tokens (client_id);"
        "CREATE INDEX tokens_subject ON tokens (subject);"
        "CREATE INDEX tokens_expires ON tokens (expires_at);"
        "CREATE TABLE revocation_seq ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " seq INTEGER NOT NULL) STRICT;"
        "INSERT INTO revocation_seq (id, seq) VALUES (1, 0);"},
    /* v2: tokens carry the identity they speak for and their grant data;
     * remembered consents; secrets shared by every instance. */
    {2, "ALTER TABLE tokens ADD COLUMN identity_json TEXT NOT NULL DEFAULT '{}';"
        "ALTER TABLE tokens ADD COLUMN extra_json TEXT NOT NULL DEFAULT '{}';"
        "CREATE TABLE consents ("
        " subject TEXT NOT NULL,"
        " client_id TEXT NOT NULL,"
        " audience TEXT NOT NULL,"
        " scopes TEXT NOT NULL DEFAULT '',"
        " created_at INTEGER NOT NULL,"
        " expires_at INTEGER NOT NULL,"
        " PRIMARY KEY (subject, client_id, audience)) STRICT;"
        "CREATE TABLE secrets ("
        " name TEXT PRIMARY KEY NOT NULL,"
        " value BLOB NOT NULL,"
        " created_at INTEGER NOT NULL) STRICT;"},
    /* v3: the audit chain. seq is the rowid, so appends go to the end of
     * the table's b-tree; time_ms is indexed for `audit query --since`. */
    {3, "CREATE TABLE audit ("
        " seq INTEGER PRIMARY KEY CHECK (seq > 0),"
        " time_ms INTEGER NOT NULL,"
        " route TEXT NOT NULL DEFAULT '',"
        " subject TEXT NOT NULL DEFAULT '',"
        " email TEXT NOT NULL DEFAULT '',"
        " method TEXT NOT NULL DEFAULT '',"
        " name TEXT NOT NULL DEFAULT '',"
        " decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),"
        " prev TEXT NOT NULL CHECK (length(prev) = 64),"
        " hash TEXT NOT NULL CHECK (length(hash) = 64),"
        " record TEXT NOT NULL) STRICT;"
        "CREATE INDEX audit_time ON audit (time_ms);"},
};

_Static_assert(MG_ARRAY_LEN(migrations) == MG_STORE__SCHEMA_LATEST,
               "MG_STORE__SCHEMA_LATEST must name the last migration");

struct sq {
    sqlite3 *db;
    sqlite3_stmt *stmts[Q__N];
};

static struct sq *SQ(struct mg_store *st)
{
    return st->backend;
}

/* Maps an SQLite result code to our status and records why. */
static int fail(struct mg_store *st, int rc, const char *what)
{
    sqlite3 *db = SQ(st) ? SQ(st)->db : NULL;
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
            mg_store__set_error(st, "sqlite: %s: already exists (%s)", what, msg);
            return MG_EINVAL;
        }
        mg_store__set_error(st, "sqlite: %s: %s", what, msg);
        return MG_EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        mg_store__set_error(st, "sqlite: %s: database is locked (%s)", what, msg);
        return MG_ETIMEDOUT;
    case SQLITE_NOMEM: mg_store__set_error(st, "sqlite: %s: out of memory", what); return MG_ENOMEM;
    default: mg_store__set_error(st, "sqlite: %s: %s", what, msg); return MG_EIO;
    }
}

/* The cached statement for q, reset and ready to bind. */
static int prep(struct mg_store *st, enum q q, sqlite3_stmt **out)
{
    struct sq *s = SQ(st);
    int rc;
    if (!s->stmts[q]) {
        rc = sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[q], NULL);
        if (rc != SQLITE_OK)
            return fail(st, rc, "prepare");
    }
    *out = s->stmts[q];
    return 0;
}

static void done(sqlite3_stmt *stmt)
{
    if (stmt) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    }
}

static int bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    return s ? sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(stmt, i);
}

static char *col_text(sqlite3_stmt *stmt, int i)
{
    const unsigned char *t = sqlite3_column_text(stmt, i);
    return t ? mg_xstrdup((const char *)t) : NULL;
}

/* Runs a statement that returns no rows; *changes (optional) gets the row count. */
static int run(struct mg_store *st, sqlite3_stmt *stmt, const char *what, size_t *changes)
{
    int rc = sqlite3_step(stmt);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = fail(st, sqlite3_extended_errcode(SQ(st)->db), what);
    else if (changes)
        *changes = (size_t)sqlite3_changes64(SQ(st)->db);
    done(stmt);
    return ret;
}

static int simple(struct mg_store *st, enum q q, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, q, &stmt);
    return rc ? rc : run(st, stmt, what, NULL);
}

static void rollback(struct mg_store *st)
{
    if (!sqlite3_get_autocommit(SQ(st)->db)) {
        char *keep = st->last_error; /* keep the reason, not the rollback's */
        st->last_error = NULL;
        simple(st, Q_ROLLBACK, "rollback");
        free(st->last_error);
        st->last_error = keep;
    }
}

static void sq_close(struct mg_store *st)
{
    struct sq *s = SQ(st);
    if (!s)
        return;
    for (size_t i = 0; i < Q__N; i++)
        sqlite3_finalize(s->stmts[i]);
    /* sqlite3_close_v2 checkpoints the WAL when this is the last connection. */
    sqlite3_close_v2(s->db);
    free(s);
    st->backend = NULL;
}

static int sq_open(struct mg_store *st, const char *path)
{
    struct sq *s = NULL;
    sqlite3_stmt *stmt = NULL;
    int fd = -1, rc, ret = MG_EIO;

    /* Create the file owner-only before SQLite sees it: it holds password and
     * token hashes. SQLite gives the -wal and -shm files the same mode.
     * Only a file this call creates is ever opened here: closing any
     * descriptor of a file drops every POSIX lock the process holds on it
     * (fcntl(2)), so opening and closing an existing database would unlock
     * it under this process's other handles, and another process (the CLI)
     * could then reset the WAL beneath them. */
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        if (fchmod(fd, 0600) != 0) {
            mg_store__set_error(st, "sqlite: chmod %s: %s", path, strerror(errno));
            goto out;
        }
        close(fd);
        fd = -1;
    } else if (errno == EEXIST) {
        struct stat sb;
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            mg_store__set_error(st, "sqlite: %s: not a regular file (symlinks are refused)", path);
            goto out;
        }
        if ((sb.st_mode & 077) != 0 && chmod(path, 0600) != 0) {
            mg_store__set_error(st, "sqlite: chmod %s: %s", path, strerror(errno));
            goto out;
        }
    } else {
        mg_store__set_error(st, "sqlite: %s: %s", path, strerror(errno));
        goto out;
    }
    s = mg_xcalloc(1, sizeof(*s));
    st->backend = s;
    /* NOMUTEX: one handle is used by one thread at a time (store.h). */
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                             SQLITE_OPEN_NOFOLLOW,
                         NULL);
    if (rc != SQLITE_OK) {
        ret = fail(st, rc, path);
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    /* Constant pragmas: synchronous=FULL makes each commit durable in WAL
     * mode (NORMAL may lose the last commits on power loss). */
    rc = sqlite3_exec(s->db,
                      "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; "
                      "PRAGMA trusted_schema = OFF;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        ret = fail(st, rc, "pragmas");
        goto out;
    }
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
    /* Several handles switching a fresh file to WAL at once can each hold a
     * shared lock and wait for the other: SQLite then answers BUSY at once
     * rather than deadlock, without its busy handler. Retry, bounded (5 s). */
    for (int tries = 0; rc == SQLITE_OK; tries++) {
        rc = sqlite3_step(stmt);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        if (tries >= 500)
            break;
        sqlite3_reset(stmt);
        rc = SQLITE_OK;
        sqlite3_sleep(10);
    }
    if (rc != SQLITE_ROW) {
        ret = fail(st, sqlite3_extended_errcode(s->db), "journal_mode");
        goto out;
    }
    if (sqlite3_stricmp((const char *)sqlite3_column_text(stmt, 0), "wal") != 0) {
        mg_store__set_error(st, "sqlite: %s: cannot switch to WAL journal mode", path);
        ret = MG_EIO;
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(stmt);
    if (fd >= 0)
        close(fd);
    if (ret != 0)
        sq_close(st);
    return ret;
}

static int read_version(struct mg_store *st, int64_t *version)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_VERSION, &stmt);
    if (rc)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int64(stmt, 0);
        rc = 0;
    } else {
        rc = fail(st, sqlite3_extended_errcode(SQ(st)->db), "schema version");
    }
    done(stmt);
    return rc;
}

static int sq_schema_version(struct mg_store *st, int64_t *version)
{
    *version = 0;
    /* A database never migrated has no schema_migrations table. */
    if (sqlite3_table_column_metadata(SQ(st)->db, NULL, "schema_migrations", NULL, NULL, NULL, NULL,
                                      NULL, NULL) != SQLITE_OK)
        return 0;
    return read_version(st, version);
}

static int sq_migrate(struct mg_store *st, int64_t now)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *ins = NULL;
    int64_t have = 0;
    int rc;

    rc = simple(st, Q_BEGIN, "begin");
    if (rc)
        return rc;
    rc = sqlite3_exec(s->db,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = fail(st, sqlite3_extended_errcode(s->db), "create schema_migrations");
        goto out;
    }
    rc = read_version(st, &have);
    if (rc)
        goto out;
    if (have > MG_STORE__SCHEMA_LATEST) {
        mg_store__set_error(st,
                            "sqlite: database schema version %lld is newer than this mcpgate "
                            "supports (%d); upgrade mcpgate or restore a matching backup",
                            (long long)have, MG_STORE__SCHEMA_LATEST);
        rc = MG_EINVAL;
        goto out;
    }
    rc = sqlite3_prepare_v2(s->db,
                            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                            -1, &ins, NULL);
    if (rc != SQLITE_OK) {
        rc = fail(st, rc, "prepare");
        goto out;
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(migrations); i++) {
        if (migrations[i].version <= have)
            continue;
        rc = sqlite3_exec(s->db, migrations[i].sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            rc = fail(st, sqlite3_extended_errcode(s->db), "migration");
            goto out;
        }
        sqlite3_bind_int64(ins, 1, migrations[i].version);
        sqlite3_bind_int64(ins, 2, now);
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE) {
            rc = fail(st, sqlite3_extended_errcode(s->db), "record migration");
            goto out;
        }
    }
    rc = simple(st, Q_COMMIT, "commit");
out:
    sqlite3_finalize(ins);
    if (rc)
        rollback(st);
    return rc;
}

/* Users */

static int sq_user_create(struct mg_store *st, const struct mg_store_user *u, int64_t now,
                          int64_t *id)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_USER_INSERT, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, u->email);
    bind_text(stmt, 2, u->name ? u->name : "");
    bind_text(stmt, 3, u->groups_json ? u->groups_json : "[]");
    bind_text(stmt, 4, u->password_hash);
    sqlite3_bind_int(stmt, 5, u->disabled ? 1 : 0);
    sqlite3_bind_int64(stmt, 6, now);
    rc = run(st, stmt, "create user", NULL);
    if (rc == 0 && id)
        *id = sqlite3_last_insert_rowid(SQ(st)->db);
    return rc;
}

static void read_user(sqlite3_stmt *stmt, struct mg_store_user *u)
{
    u->id = sqlite3_column_int64(stmt, 0);
    u->email = col_text(stmt, 1);
    u->name = col_text(stmt, 2);
    u->groups_json = col_text(stmt, 3);
    u->password_hash = col_text(stmt, 4);
    u->disabled = sqlite3_column_int(stmt, 5) != 0;
    u->failed_logins = sqlite3_column_int64(stmt, 6);
    u->last_failure_at = sqlite3_column_int64(stmt, 7);
    u->created_at = sqlite3_column_int64(stmt, 8);
}

/* Steps a one-row query; MG_ENOTFOUND when there is no row. The statement is
 * left on its row for the caller to read, then done(). */
static int one_row(struct mg_store *st, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE) {
        mg_store__set_error(st, "sqlite: %s: not found", what);
        return MG_ENOTFOUND;
    }
    return fail(st, sqlite3_extended_errcode(SQ(st)->db), what);
}

static int sq_user_get(struct mg_store *st, const char *email, struct mg_store_user *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_USER_GET, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, email);
    rc = one_row(st, stmt, "user");
    if (rc == 0)
        read_user(stmt, out);
    done(stmt);
    return rc;
}

/* Collects every row of stmt into a growing array of elem_size items. */
static int all_rows(struct mg_store *st, sqlite3_stmt *stmt, size_t elem_size,
                    void (*read)(sqlite3_stmt *, void *), void **out, size_t *n)
{
    char *items = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            items = mg_xrealloc(items, cap * elem_size);
        }
        memset(items + len * elem_size, 0, elem_size);
        read(stmt, items + len * elem_size);
        len++;
    }
    if (rc != SQLITE_DONE) {
        rc = fail(st, sqlite3_extended_errcode(SQ(st)->db), "list");
        done(stmt);
        *out = items; /* the wrapper's caller frees what was read */
        *n = len;
        return rc;
    }
    done(stmt);
    *out = items;
    *n = len;
    return 0;
}

static void read_user_v(sqlite3_stmt *stmt, void *p)
{
    read_user(stmt, p);
}

static int sq_user_list(struct mg_store *st, struct mg_store_user **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    void *items = NULL;
    int rc = prep(st, Q_USER_LIST, &stmt);
    if (rc)
        return rc;
    rc = all_rows(st, stmt, sizeof(**out), read_user_v, &items, n);
    if (rc) {
        mg_store_user_list_free(items, *n);
        *n = 0;
        return rc;
    }
    *out = items;
    return 0;
}

/* Runs an UPDATE/DELETE keyed by one text value; MG_ENOTFOUND if no row matched. */
static int update_one(struct mg_store *st, sqlite3_stmt *stmt, const char *what)
{
    size_t changes = 0;
    int rc = run(st, stmt, what, &changes);
    if (rc == 0 && changes == 0) {
        mg_store__set_error(st, "sqlite: %s: not found", what);
        rc = MG_ENOTFOUND;
    }
    return rc;
}

static int sq_user_set_disabled(struct mg_store *st, const char *email, bool disabled)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_USER_DISABLE, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, email);
    sqlite3_bind_int(stmt, 2, disabled ? 1 : 0);
    return update_one(st, stmt, "user");
}

static int sq_user_set_password(struct mg_store *st, const char *email, const char *password_hash)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_USER_PASSWORD, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, email);
    bind_text(stmt, 2, password_hash);
    return update_one(st, stmt, "user");
}

static int sq_user_record_failure(struct mg_store *st, const char *email, int64_t now,
                                  int64_t *count)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_USER_FAIL, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, email);
    sqlite3_bind_int64(stmt, 2, now);
    rc = one_row(st, stmt, "user");
    if (rc == 0) {
        if (count)
            *count = sqlite3_column_int64(stmt, 0);
        /* Step to the end so the UPDATE ... RETURNING completes. */
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = fail(st, sqlite3_extended_errcode(SQ(st)->db), "user");
    }
    done(stmt);
    return rc;
}

static int sq_user_reset_failures(struct mg_store *st, const char *email)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_USER_RESET, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, email);
    return update_one(st, stmt, "user");
}

/* Clients */

static int sq_client_insert(struct mg_store *st, const struct mg_store_client *c)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_CLIENT_INSERT, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, c->client_id);
    bind_text(stmt, 2, c->name ? c->name : "");
    bind_text(stmt, 3, c->redirect_uris_json ? c->redirect_uris_json : "[]");
    bind_text(stmt, 4, c->metadata_json ? c->metadata_json : "{}");
    bind_text(stmt, 5, mg_store_client_kind_name(c->kind));
    sqlite3_bind_int64(stmt, 6, c->created_at);
    return run(st, stmt, "insert client", NULL);
}

static void read_client(sqlite3_stmt *stmt, void *p)
{
    struct mg_store_client *c = p;
    c->client_id = col_text(stmt, 0);
    c->name = col_text(stmt, 1);
    c->redirect_uris_json = col_text(stmt, 2);
    c->metadata_json = col_text(stmt, 3);
    /* The CHECK constraint keeps kind to known names. */
    MG_ASSERT(mg_store_client_kind_parse((const char *)sqlite3_column_text(stmt, 4), &c->kind) ==
              0);
    c->created_at = sqlite3_column_int64(stmt, 5);
}

static int sq_client_get(struct mg_store *st, const char *client_id, struct mg_store_client *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_CLIENT_GET, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, client_id);
    rc = one_row(st, stmt, "client");
    if (rc == 0)
        read_client(stmt, out);
    done(stmt);
    return rc;
}

static int sq_client_list(struct mg_store *st, struct mg_store_client **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    void *items = NULL;
    int rc = prep(st, Q_CLIENT_LIST, &stmt);
    if (rc)
        return rc;
    rc = all_rows(st, stmt, sizeof(**out), read_client, &items, n);
    if (rc) {
        mg_store_client_list_free(items, *n);
        *n = 0;
        return rc;
    }
    *out = items;
    return 0;
}

static int sq_client_count_dynamic_since(struct mg_store *st, int64_t since, int64_t *n)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_CLIENT_COUNT, &stmt);
    if (rc)
        return rc;
    sqlite3_bind_int64(stmt, 1, since);
    rc = one_row(st, stmt, "count clients");
    if (rc == 0)
        *n = sqlite3_column_int64(stmt, 0);
    done(stmt);
    return rc;
}

static int sq_client_delete(struct mg_store *st, const char *client_id)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_CLIENT_DELETE, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, client_id);
    return update_one(st, stmt, "client");
}

/* Tokens */

static int sq_token_insert(struct mg_store *st, const struct mg_store_token *t)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_TOKEN_INSERT, &stmt);
    if (rc)
        return rc;
    sqlite3_bind_blob(stmt, 1, t->hash, MG_STORE_HASH_LEN, SQLITE_TRANSIENT);
    bind_text(stmt, 2, mg_store_token_kind_name(t->kind));
    bind_text(stmt, 3, t->family_id);
    bind_text(stmt, 4, t->client_id);
    bind_text(stmt, 5, t->subject);
    bind_text(stmt, 6, t->audience ? t->audience : "");
    bind_text(stmt, 7, t->scopes ? t->scopes : "");
    sqlite3_bind_int64(stmt, 8, t->expires_at);
    sqlite3_bind_int64(stmt, 9, t->created_at);
    bind_text(stmt, 10, t->identity_json ? t->identity_json : "{}");
    bind_text(stmt, 11, t->extra_json ? t->extra_json : "{}");
    return run(st, stmt, "insert token", NULL);
}

static void read_token(sqlite3_stmt *stmt, void *p)
{
    struct mg_store_token *t = p;
    MG_ASSERT(mg_store_token_kind_parse((const char *)sqlite3_column_text(stmt, 1), &t->kind) == 0);
    /* Codes are bearer secrets for their short life: listings never carry
     * even their hash. */
    if (sqlite3_column_bytes(stmt, 0) == MG_STORE_HASH_LEN && t->kind != MG_STORE_TOKEN_CODE) {
        memcpy(t->hash, sqlite3_column_blob(stmt, 0), MG_STORE_HASH_LEN);
        t->has_hash = true;
    }
    t->family_id = col_text(stmt, 2);
    t->client_id = col_text(stmt, 3);
    t->subject = col_text(stmt, 4);
    t->audience = col_text(stmt, 5);
    t->scopes = col_text(stmt, 6);
    t->expires_at = sqlite3_column_int64(stmt, 7);
    t->created_at = sqlite3_column_int64(stmt, 8);
    t->revoked_at = sqlite3_column_int64(stmt, 9); /* NULL reads as 0 */
    t->identity_json = col_text(stmt, 10);
    t->extra_json = col_text(stmt, 11);
}

static int sq_token_get(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN],
                        struct mg_store_token *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_TOKEN_GET, &stmt);
    if (rc)
        return rc;
    sqlite3_bind_blob(stmt, 1, hash, MG_STORE_HASH_LEN, SQLITE_TRANSIENT);
    rc = one_row(st, stmt, "token");
    if (rc == 0) {
        read_token(stmt, out);
        /* The caller asked by hash: give it back whatever the kind. */
        memcpy(out->hash, hash, MG_STORE_HASH_LEN);
        out->has_hash = true;
    }
    done(stmt);
    return rc;
}

/* Runs one revoking UPDATE and, if it changed rows, bumps the sequence, all
 * in one transaction so a reader never sees a revocation without its bump. */
static int revoke_rows(struct mg_store *st, enum q q, const void *key, bool key_is_hash,
                       int64_t now, size_t *n_revoked)
{
    sqlite3_stmt *stmt = NULL;
    int rc = simple(st, Q_BEGIN, "begin");
    if (rc)
        return rc;
    rc = prep(st, q, &stmt);
    if (rc)
        goto out;
    if (key_is_hash)
        sqlite3_bind_blob(stmt, 1, key, MG_STORE_HASH_LEN, SQLITE_TRANSIENT);
    else
        bind_text(stmt, 1, key);
    sqlite3_bind_int64(stmt, 2, now);
    rc = run(st, stmt, "revoke", n_revoked);
    if (rc)
        goto out;
    if (*n_revoked > 0) {
        rc = simple(st, Q_SEQ_BUMP, "bump revocation sequence");
        if (rc)
            goto out;
    } else if (key_is_hash) {
        /* Nothing changed: already revoked (success) or unknown. */
        rc = prep(st, Q_TOKEN_EXISTS, &stmt);
        if (rc)
            goto out;
        sqlite3_bind_blob(stmt, 1, key, MG_STORE_HASH_LEN, SQLITE_TRANSIENT);
        rc = one_row(st, stmt, "token");
        done(stmt);
        if (rc)
            goto out;
    }
    rc = simple(st, Q_COMMIT, "commit");
out:
    if (rc) {
        *n_revoked = 0;
        rollback(st);
    }
    return rc;
}

static int sq_token_revoke(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN], int64_t now,
                           size_t *n_revoked)
{
    return revoke_rows(st, Q_TOKEN_REVOKE, hash, true, now, n_revoked);
}

static int sq_token_revoke_family(struct mg_store *st, const char *family_id, int64_t now,
                                  size_t *n_revoked)
{
    return revoke_rows(st, Q_TOKEN_REVOKE_FAMILY, family_id, false, now, n_revoked);
}

static int sq_token_revoke_client(struct mg_store *st, const char *client_id, int64_t now,
                                  size_t *n_revoked)
{
    return revoke_rows(st, Q_TOKEN_REVOKE_CLIENT, client_id, false, now, n_revoked);
}

static int sq_token_revoke_subject(struct mg_store *st, const char *subject, int64_t now,
                                   size_t *n_revoked)
{
    return revoke_rows(st, Q_TOKEN_REVOKE_SUBJECT, subject, false, now, n_revoked);
}

static int sq_token_list(struct mg_store *st, const char *subject, const char *client_id,
                         struct mg_store_token **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    void *items = NULL;
    int rc = prep(st, Q_TOKEN_LIST, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, subject);
    bind_text(stmt, 2, client_id);
    rc = all_rows(st, stmt, sizeof(**out), read_token, &items, n);
    if (rc) {
        mg_store_token_list_free(items, *n);
        *n = 0;
        return rc;
    }
    *out = items;
    return 0;
}

static int sq_token_delete_expired(struct mg_store *st, int64_t now, size_t *n_deleted)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_TOKEN_DELETE_EXPIRED, &stmt);
    if (rc)
        return rc;
    sqlite3_bind_int64(stmt, 1, now);
    return run(st, stmt, "delete expired tokens", n_deleted);
}

static int sq_revocation_seq(struct mg_store *st, uint64_t *seq)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_SEQ_GET, &stmt);
    if (rc)
        return rc;
    rc = one_row(st, stmt, "revocation sequence");
    if (rc == 0)
        *seq = (uint64_t)sqlite3_column_int64(stmt, 0);
    done(stmt);
    return rc;
}

/* SQLite has no notifications: read the counter every 50 ms. A WAL reader
 * sees every commit made before its statement started, so each read is
 * current. */
static int sq_revocation_wait(struct mg_store *st, uint64_t known, int64_t timeout_ms,
                              uint64_t *seq)
{
    const uint64_t poll_ms = 50;
    uint64_t deadline = mg_now_ms() + (uint64_t)timeout_ms;
    int rc;

    for (;;) {
        uint64_t now, nap;
        struct timespec ts;
        rc = sq_revocation_seq(st, seq);
        if (rc || *seq != known)
            return rc;
        now = mg_now_ms();
        if (now >= deadline)
            return 0;
        nap = MG_MIN(poll_ms, deadline - now);
        ts.tv_sec = (time_t)(nap / 1000);
        ts.tv_nsec = (long)(nap % 1000) * 1000000L;
        nanosleep(&ts, NULL); /* woken early by a signal: the deadline still bounds the loop */
    }
}

/* Consents */

static int sq_consent_put(struct mg_store *st, const struct mg_store_consent *c)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_CONSENT_PUT, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, c->subject);
    bind_text(stmt, 2, c->client_id);
    bind_text(stmt, 3, c->audience);
    bind_text(stmt, 4, c->scopes ? c->scopes : "");
    sqlite3_bind_int64(stmt, 5, c->created_at);
    sqlite3_bind_int64(stmt, 6, c->expires_at);
    return run(st, stmt, "put consent", NULL);
}

static int sq_consent_get(struct mg_store *st, const char *subject, const char *client_id,
                          const char *audience, int64_t now, struct mg_store_consent *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_CONSENT_GET, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, subject);
    bind_text(stmt, 2, client_id);
    bind_text(stmt, 3, audience);
    sqlite3_bind_int64(stmt, 4, now);
    rc = one_row(st, stmt, "consent");
    if (rc == 0) {
        out->subject = col_text(stmt, 0);
        out->client_id = col_text(stmt, 1);
        out->audience = col_text(stmt, 2);
        out->scopes = col_text(stmt, 3);
        out->created_at = sqlite3_column_int64(stmt, 4);
        out->expires_at = sqlite3_column_int64(stmt, 5);
    }
    done(stmt);
    return rc;
}

static int sq_consent_delete_subject(struct mg_store *st, const char *subject, size_t *n_deleted)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_CONSENT_DELETE_SUBJECT, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, subject);
    return run(st, stmt, "delete consents", n_deleted);
}

/* Secrets */

/* The insert and the read share one write transaction, so two handles racing
 * on an empty row both read the value that won. */
static int sq_secret_get_or_create(struct mg_store *st, const char *name, const uint8_t *candidate,
                                   size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    sqlite3_stmt *stmt = NULL;
    size_t n;
    int rc = simple(st, Q_BEGIN, "begin");
    if (rc)
        return rc;
    rc = prep(st, Q_SECRET_INSERT, &stmt);
    if (rc)
        goto out;
    bind_text(stmt, 1, name);
    sqlite3_bind_blob64(stmt, 2, candidate, len, SQLITE_TRANSIENT);
    rc = run(st, stmt, "insert secret", NULL);
    if (rc)
        goto out;
    rc = prep(st, Q_SECRET_GET, &stmt);
    if (rc)
        goto out;
    bind_text(stmt, 1, name);
    rc = one_row(st, stmt, "secret");
    if (rc == 0) {
        n = (size_t)sqlite3_column_bytes(stmt, 0);
        if (n > cap) {
            mg_store__set_error(st, "sqlite: secret %s: %zu bytes do not fit in %zu", name, n, cap);
            rc = MG_ELIMIT;
        } else {
            if (n > 0)
                memcpy(out, sqlite3_column_blob(stmt, 0), n);
            *out_len = n;
        }
    }
    done(stmt);
    if (rc)
        goto out;
    rc = simple(st, Q_COMMIT, "commit");
out:
    if (rc) {
        *out_len = 0;
        rollback(st);
    }
    return rc;
}

/* Audit */

static int read_audit_last(struct mg_store *st, int64_t *seq,
                           char hash[MG_STORE_AUDIT_HASH_HEX + 1])
{
    sqlite3_stmt *stmt = NULL;
    int rc = prep(st, Q_AUDIT_LAST, &stmt);
    if (rc)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(stmt, 1);
        *seq = sqlite3_column_int64(stmt, 0);
        snprintf(hash, MG_STORE_AUDIT_HASH_HEX + 1, "%s", h ? (const char *)h : "");
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        *seq = 0;
        memset(hash, '0', MG_STORE_AUDIT_HASH_HEX);
        hash[MG_STORE_AUDIT_HASH_HEX] = '\0';
        rc = 0;
    } else {
        rc = fail(st, sqlite3_extended_errcode(SQ(st)->db), "audit head");
    }
    done(stmt);
    return rc;
}

static int sq_audit_last(struct mg_store *st, int64_t *seq, char hash[MG_STORE_AUDIT_HASH_HEX + 1])
{
    return read_audit_last(st, seq, hash);
}

/* BEGIN IMMEDIATE takes the write lock first, so the head read here is the
 * head the rows are appended to: no other handle can append in between. */
static int sq_audit_append(struct mg_store *st, const struct mg_store_audit_row *rows, size_t n)
{
    sqlite3_stmt *stmt = NULL;
    char head[MG_STORE_AUDIT_HASH_HEX + 1];
    int64_t last = 0;
    int rc = simple(st, Q_BEGIN, "begin");
    if (rc)
        return rc;
    rc = read_audit_last(st, &last, head);
    if (rc)
        goto out;
    if (rows[0].seq != last + 1 || strcmp(rows[0].prev, head) != 0) {
        mg_store__set_error(st, "sqlite: audit append: the chain's head is seq %lld, not %lld",
                            (long long)last, (long long)(rows[0].seq - 1));
        rc = MG_EAGAIN;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mg_store_audit_row *r = &rows[i];
        rc = prep(st, Q_AUDIT_INSERT, &stmt);
        if (rc)
            goto out;
        sqlite3_bind_int64(stmt, 1, r->seq);
        sqlite3_bind_int64(stmt, 2, r->time_ms);
        bind_text(stmt, 3, r->route ? r->route : "");
        bind_text(stmt, 4, r->subject ? r->subject : "");
        bind_text(stmt, 5, r->email ? r->email : "");
        bind_text(stmt, 6, r->method ? r->method : "");
        bind_text(stmt, 7, r->name ? r->name : "");
        bind_text(stmt, 8, r->decision);
        bind_text(stmt, 9, r->prev);
        bind_text(stmt, 10, r->hash);
        bind_text(stmt, 11, r->record);
        rc = run(st, stmt, "append audit record", NULL);
        if (rc)
            goto out;
    }
    rc = simple(st, Q_COMMIT, "commit");
out:
    if (rc)
        rollback(st);
    return rc;
}

static void read_audit(sqlite3_stmt *stmt, void *p)
{
    struct mg_store_audit_row *r = p;
    r->seq = sqlite3_column_int64(stmt, 0);
    r->time_ms = sqlite3_column_int64(stmt, 1);
    r->route = col_text(stmt, 2);
    r->subject = col_text(stmt, 3);
    r->email = col_text(stmt, 4);
    r->method = col_text(stmt, 5);
    r->name = col_text(stmt, 6);
    r->decision = col_text(stmt, 7);
    r->prev = col_text(stmt, 8);
    r->hash = col_text(stmt, 9);
    r->record = col_text(stmt, 10);
}

static int sq_audit_query(struct mg_store *st, const struct mg_store_audit_filter *f,
                          struct mg_store_audit_row **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    void *items = NULL;
    int rc = prep(st, f->newest ? Q_AUDIT_QUERY_NEWEST : Q_AUDIT_QUERY, &stmt);
    if (rc)
        return rc;
    bind_text(stmt, 1, f->user);
    bind_text(stmt, 2, f->tool);
    bind_text(stmt, 3, f->decision);
    bind_text(stmt, 4, f->route);
    bind_text(stmt, 5, f->method);
    sqlite3_bind_int64(stmt, 6, f->since_ms);
    sqlite3_bind_int64(stmt, 7, f->after_seq);
    sqlite3_bind_int64(stmt, 8, (sqlite3_int64)f->limit);
    rc = all_rows(st, stmt, sizeof(**out), read_audit, &items, n);
    if (rc) {
        mg_store_audit_list_free(items, *n);
        *n = 0;
        return rc;
    }
    *out = items;
    if (f->newest) /* read newest first: give them back in chain order */
        for (size_t i = 0; i < *n / 2; i++) {
            struct mg_store_audit_row t = (*out)[i];
            (*out)[i] = (*out)[*n - 1 - i];
            (*out)[*n - 1 - i] = t;
        }
    return 0;
}

const struct mg_store_ops mg_store__sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .user_create = sq_user_create,
    .user_get = sq_user_get,
    .user_list = sq_user_list,
    .user_set_disabled = sq_user_set_disabled,
    .user_set_password = sq_user_set_password,
    .user_record_failure = sq_user_record_failure,
    .user_reset_failures = sq_user_reset_failures,
    .client_insert = sq_client_insert,
    .client_get = sq_client_get,
    .client_list = sq_client_list,
    .client_count_dynamic_since = sq_client_count_dynamic_since,
    .client_delete = sq_client_delete,
    .token_insert = sq_token_insert,
    .token_get = sq_token_get,
    .token_revoke = sq_token_revoke,
    .token_revoke_family = sq_token_revoke_family,
    .token_revoke_client = sq_token_revoke_client,
    .token_revoke_subject = sq_token_revoke_subject,
    .token_list = sq_token_list,
    .token_delete_expired = sq_token_delete_expired,
    .revocation_seq = sq_revocation_seq,
    .revocation_wait = sq_revocation_wait,
    .consent_put = sq_consent_put,
    .consent_get = sq_consent_get,
    .consent_delete_subject = sq_consent_delete_subject,
    .secret_get_or_create = sq_secret_get_or_create,
    .audit_append = sq_audit_append,
    .audit_last = sq_audit_last,
    .audit_query = sq_audit_query,
};

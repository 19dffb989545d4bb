/* The PostgreSQL store backend, for several gateway instances sharing one
 * database. It owns one libpq connection per handle, the PostgreSQL schema
 * migrations, and the revocation notifications: every revoking transaction
 * bumps revocation_seq and sends NOTIFY mcpgate_revocation with the new value,
 * so a watcher on any instance wakes at once instead of polling. Every query
 * is a constant with bound parameters (PQexecParams; hashes and secrets as
 * binary BYTEA), no SQL is ever built from data. Semantics and statuses match
 * the SQLite backend exactly; the unit tests run one suite against both. */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <libpq-fe.h>
#include <poll.h>

/* The revocation channel; revocation_wait LISTENs on it. */
#define CHANNEL "mcpgate_revocation"

struct pg {
    PGconn *conn;
    bool in_tx;     /* inside BEGIN ... COMMIT: never reconnect there */
    bool listening; /* LISTEN done on this connection (lost with it) */
};

static struct pg *PG(struct mg_store *st)
{
    return st->backend;
}

/* Bound parameters: text (NULL is SQL NULL) or binary bytes. */
#define MAX_PARAMS 12
struct params {
    int n;
    int result_format; /* 0 text, 1 binary */
    const char *vals[MAX_PARAMS];
    int lens[MAX_PARAMS];
    int fmts[MAX_PARAMS];
    char nums[MAX_PARAMS][24];
};

static void p_text(struct params *ps, const char *s)
{
    MG_ASSERT(ps->n < MAX_PARAMS);
    ps->vals[ps->n] = s;
    ps->lens[ps->n] = 0;
    ps->fmts[ps->n] = 0;
    ps->n++;
}

static void p_i64(struct params *ps, int64_t v)
{
    MG_ASSERT(ps->n < MAX_PARAMS);
    snprintf(ps->nums[ps->n], sizeof(ps->nums[0]), "%" PRId64, v);
    p_text(ps, ps->nums[ps->n]);
}

static void p_bool(struct params *ps, bool v)
{
    p_text(ps, v ? "true" : "false");
}

static void p_bytes(struct params *ps, const void *b, size_t len)
{
    MG_ASSERT(ps->n < MAX_PARAMS && len <= INT_MAX);
    ps->vals[ps->n] = b;
    ps->lens[ps->n] = (int)len;
    ps->fmts[ps->n] = 1;
    ps->n++;
}

/* libpq messages may span lines ("...failed: Connection refused\n\tIs the
 * server running..."); the store's are one line, for logs. */
struct flat {
    char s[400];
};

static const char *flatten(struct flat *f, const char *msg)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = msg; *p && n + 1 < sizeof(f->s); p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < sizeof(f->s))
            f->s[n++] = ' ';
        space = false;
        f->s[n++] = *p;
    }
    f->s[n] = '\0';
    return f->s;
}

/* Maps a failed result (or a connection failure) to our status and records why. */
static int fail(struct mg_store *st, const PGresult *res, const char *what)
{
    PGconn *conn = PG(st)->conn;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* The primary message only: the DETAIL of a uniqueness violation
     * quotes the key (an email, a token hash), which logs need not hold. */
    const char *raw = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    struct flat f;
    const char *msg;
    if (!raw && res)
        raw = PQresultErrorMessage(res);
    msg = flatten(&f, raw && *raw ? raw : PQerrorMessage(conn));
    if (PQstatus(conn) != CONNECTION_OK) {
        mg_store__set_error(st, "postgres: %s: connection lost: %s", what, msg);
        return MG_EIO;
    }
    if (!state) {
        mg_store__set_error(st, "postgres: %s: %s", what, msg);
        return MG_EIO;
    }
    if (strcmp(state, "23505") == 0) { /* unique_violation */
        mg_store__set_error(st, "postgres: %s: already exists (%s)", what, msg);
        return MG_EINVAL;
    }
    if (strncmp(state, "23", 2) == 0) { /* other integrity constraints */
        mg_store__set_error(st, "postgres: %s: %s", what, msg);
        return MG_EINVAL;
    }
    /* query_canceled (statement_timeout), lock_not_available */
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0) {
        mg_store__set_error(st, "postgres: %s: timed out (%s)", what, msg);
        return MG_ETIMEDOUT;
    }
    if (strcmp(state, "53200") == 0) {
        mg_store__set_error(st, "postgres: %s: out of memory", what);
        return MG_ENOMEM;
    }
    mg_store__set_error(st, "postgres: %s: %s", what, msg);
    return MG_EIO;
}

/* Per-session settings, after every (re)connect. statement_timeout bounds
 * every query at 5 s unless the DSN, role or database already sets one. */
static int session_setup(struct mg_store *st)
{
    PGresult *res = PQexec(PG(st)->conn, "SELECT set_config('statement_timeout', '5s', false) "
                                         "WHERE current_setting('statement_timeout') = '0'");
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : fail(st, res, "session settings");
    PQclear(res);
    return rc;
}

/* The last call lost the connection: this call tries once to get it back
 * (the LISTEN went with the old session). */
static int ready(struct mg_store *st)
{
    struct pg *p = PG(st);
    if (PQstatus(p->conn) == CONNECTION_OK)
        return 0;
    p->listening = false;
    PQreset(p->conn);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        struct flat f;
        mg_store__set_error(st, "postgres: reconnect: %s", flatten(&f, PQerrorMessage(p->conn)));
        return MG_EIO;
    }
    return session_setup(st);
}

/* Reconnects like ready(), without blocking past deadline (mg_now_ms): the
 * watcher's revocation_wait must return on time even when the server is
 * unreachable, where a blocking reconnect would wait out connect_timeout. A
 * reconnect cut short is MG_EIO and the next call starts it again. */
static int ready_by(struct mg_store *st, uint64_t deadline)
{
    struct pg *p = PG(st);
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING; /* libpq: where polling starts */
    struct flat f;

    if (PQstatus(p->conn) == CONNECTION_OK)
        return 0;
    p->listening = false;
    if (!PQresetStart(p->conn)) {
        mg_store__set_error(st, "postgres: reconnect: %s", flatten(&f, PQerrorMessage(p->conn)));
        return MG_EIO;
    }
    /* Bounded by the deadline. */
    while (ps != PGRES_POLLING_OK) {
        struct pollfd pfd = {.fd = PQsocket(p->conn),
                             .events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        uint64_t now = mg_now_ms();
        int n;
        if (ps == PGRES_POLLING_FAILED) {
            mg_store__set_error(st, "postgres: reconnect: %s",
                                flatten(&f, PQerrorMessage(p->conn)));
            return MG_EIO;
        }
        if (now >= deadline) {
            mg_store__set_error(st, "postgres: reconnect: not done within the wait's timeout");
            return MG_EIO;
        }
        n = poll(&pfd, 1, (int)MG_MIN(deadline - now, (uint64_t)INT_MAX));
        if (n < 0 && errno != EINTR) {
            mg_store__set_error(st, "postgres: reconnect: poll: %s", strerror(errno));
            return MG_EIO;
        }
        if (n > 0)
            ps = PQresetPoll(p->conn);
    }
    return session_setup(st);
}

/* Frees the notifications libpq has already read; true if there were any. */
static bool drain_notifies(PGconn *conn)
{
    PGnotify *n;
    bool any = false;
    /* Bounded: libpq only holds what it has already read from the socket. */
    while ((n = PQnotifies(conn)) != NULL) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

/* Runs one statement. On success *out (optional) owns the result. */
static int query(struct mg_store *st, const char *sql, const struct params *ps, const char *what,
                 PGresult **out)
{
    struct pg *p = PG(st);
    PGresult *res = NULL;
    ExecStatusType status;
    int rc;

    if (out)
        *out = NULL;
    if (!p->in_tx) {
        rc = ready(st);
        if (rc)
            return rc;
    }
    /* A listening handle used for other calls between waits must not pile
     * up notifications. Only those read before this statement go: their
     * commits came before it, so it sees them; any that arrive while it runs
     * stay queued for revocation_wait to notice. */
    if (p->listening)
        drain_notifies(p->conn);
    res = PQexecParams(p->conn, sql, ps ? ps->n : 0, NULL, ps ? ps->vals : NULL,
                       ps ? ps->lens : NULL, ps ? ps->fmts : NULL, ps ? ps->result_format : 0);
    status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        rc = fail(st, res, what);
        PQclear(res);
        return rc;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

/* The row count of an INSERT/UPDATE/DELETE result. */
static size_t affected(const PGresult *res)
{
    const char *s = PQcmdTuples((PGresult *)res);
    uint64_t n = 0;
    if (*s)
        MG_ASSERT(mg_parse_u64(s, strlen(s), &n) == 0);
    return (size_t)n;
}

/* Runs a statement that must match one row at least; MG_ENOTFOUND otherwise. */
static int update_one(struct mg_store *st, const char *sql, const struct params *ps,
                      const char *what)
{
    PGresult *res = NULL;
    int rc = query(st, sql, ps, what, &res);
    if (rc == 0 && affected(res) == 0) {
        mg_store__set_error(st, "postgres: %s: not found", what);
        rc = MG_ENOTFOUND;
    }
    PQclear(res);
    return rc;
}

/* Runs a query that returns at most one row; MG_ENOTFOUND when it has none.
 * On success *out owns the result. */
static int one_row(struct mg_store *st, const char *sql, const struct params *ps, const char *what,
                   PGresult **out)
{
    int rc = query(st, sql, ps, what, out);
    if (rc == 0 && PQntuples(*out) == 0) {
        mg_store__set_error(st, "postgres: %s: not found", what);
        PQclear(*out);
        *out = NULL;
        rc = MG_ENOTFOUND;
    }
    return rc;
}

static int begin(struct mg_store *st)
{
    int rc = query(st, "BEGIN", NULL, "begin", NULL);
    if (rc == 0)
        PG(st)->in_tx = true;
    return rc;
}

static int commit(struct mg_store *st)
{
    int rc = query(st, "COMMIT", NULL, "commit", NULL);
    PG(st)->in_tx = false;
    return rc;
}

static void rollback(struct mg_store *st)
{
    struct pg *p = PG(st);
    if (!p->in_tx)
        return;
    p->in_tx = false;
    if (PQstatus(p->conn) == CONNECTION_OK && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
        PQclear(PQexec(p->conn, "ROLLBACK")); /* keeps the reason already recorded */
}

static char *val_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : mg_xstrdup(PQgetvalue(res, row, col));
}

/* A BIGINT (or count) column; SQL NULL reads as 0. */
static int64_t val_i64(const PGresult *res, int row, int col)
{
    const char *s = PQgetvalue(res, row, col);
    char *end = NULL;
    long long v;
    if (PQgetisnull(res, row, col))
        return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    MG_ASSERT(errno == 0 && end != s && *end == '\0');
    return (int64_t)v;
}

static bool val_bool(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

/* Server notices ("relation already exists, skipping", the FATAL a killed
 * session receives while idle) would go to stderr by default; a loop thread
 * never writes there, and failures reach the caller as statuses. */
static void ignore_notice(void *arg, const char *message)
{
    MG_UNUSED(arg);
    MG_UNUSED(message);
}

static void pg_close(struct mg_store *st)
{
    struct pg *p = PG(st);
    if (!p)
        return;
    PQfinish(p->conn);
    free(p);
    st->backend = NULL;
}

static int pg_open(struct mg_store *st, const char *dsn)
{
    /* libpq reads these arrays in order and expands the URI in place of
     * dbname: entries before it are defaults the DSN may override, entries
     * after it are imposed. */
    static const char *const keys[] = {"connect_timeout", "application_name", "dbname",
                                       "client_encoding", NULL};
    const char *vals[] = {"5", "mcpgate", dsn, "UTF8", NULL};
    struct pg *p = mg_xcalloc(1, sizeof(*p));
    int rc = MG_EIO;

    st->backend = p;
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (!p->conn) {
        mg_store__set_error(st, "postgres: connect: out of memory");
        rc = MG_ENOMEM;
        goto out;
    }
    PQsetNoticeProcessor(p->conn, ignore_notice, NULL);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        struct flat f;
        mg_store__set_error(st, "postgres: connect: %s", flatten(&f, PQerrorMessage(p->conn)));
        rc = MG_EIO;
        goto out;
    }
    rc = session_setup(st);
out:
    if (rc)
        pg_close(st);
    return rc;
}

/* Migrations, applied in order, each exactly once. Never edit a released
 * one: add the next version. Versions mean the same as SQLite's. Text
 * compared or ordered as keys is COLLATE "C": byte order like SQLite, and
 * lower() then folds ASCII only, so email uniqueness is ASCII
 * case-insensitive on both backends. */
static const struct {
    int64_t version;
    const char *sql;
} migrations[] = {
    {1, "CREATE TABLE users ("
        " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " email TEXT COLLATE \"C\" NOT NULL,"
        " name TEXT NOT NULL DEFAULT '',"
        " groups TEXT NOT NULL DEFAULT '[]',"
        " password_hash TEXT,"
        " disabled BOOLEAN NOT NULL DEFAULT false,"
        " failed_logins BIGINT NOT NULL DEFAULT 0,"
        " last_failure_at BIGINT NOT NULL DEFAULT 0,"
        " created_at BIGINT NOT NULL);"
        "CREATE UNIQUE INDEX users_email ON users (lower(email));"
        "CREATE TABLE oauth_clients ("
        " client_id TEXT COLLATE \"C\" PRIMARY KEY,"
        " name TEXT NOT NULL DEFAULT '',"
        " redirect_uris TEXT NOT NULL DEFAULT '[]',"
        " metadata TEXT NOT NULL DEFAULT '{}',"
        " kind TEXT NOT NULL CHECK (kind IN ('dynamic', 'metadata_document', 'config')),"
        " created_at BIGINT NOT NULL);"
        "CREATE INDEX oauth_clients_kind_created ON oauth_clients (kind, created_at);"
        "CREATE TABLE tokens ("
        " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " hash BYTEA NOT NULL CHECK (length(hash) = 32),"
        " kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh', 'code', 'service')),"
        " family_id TEXT COLLATE \"C\","
        " client_id TEXT COLLATE \"C\","
        " subject TEXT COLLATE \"C\" NOT NULL,"
        " audience TEXT NOT NULL DEFAULT '',"
        " scopes TEXT NOT NULL DEFAULT '',"
        " expires_at BIGINT NOT NULL,"
        " created_at BIGINT NOT NULL,"
        " revoked_at BIGINT);"
        "CREATE UNIQUE INDEX tokens_hash ON tokens (hash);"
        "CREATE INDEX tokens_family ON tokens (family_id);"
        "CREATE INDEX tokens_client ON tokens (client_id);"
        "CREATE INDEX tokens_subject ON tokens (subject);"
        "CREATE INDEX tokens_expires ON tokens (expires_at);"
        "CREATE TABLE revocation_seq ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " seq BIGINT NOT NULL);"
        "INSERT INTO revocation_seq (id, seq) VALUES (1, 0);"},
    /* v2: tokens carry the identity they speak for and their grant data;
     * remembered consents; secrets shared by every instance. */
    {2, "ALTER TABLE tokens"
        " ADD COLUMN identity_json TEXT NOT NULL DEFAULT '{}',"
        " ADD COLUMN extra_json TEXT NOT NULL DEFAULT '{}';"
        "CREATE TABLE consents ("
        " subject TEXT COLLATE \"C\" NOT NULL,"
        " client_id TEXT COLLATE \"C\" NOT NULL,"
        " audience TEXT COLLATE \"C\" NOT NULL,"
        " scopes TEXT NOT NULL DEFAULT '',"
        " created_at BIGINT NOT NULL,"
        " expires_at BIGINT NOT NULL,"
        " PRIMARY KEY (subject, client_id, audience));"
        "CREATE TABLE secrets ("
        " name TEXT COLLATE \"C\" PRIMARY KEY,"
        " value BYTEA NOT NULL,"
        " created_at BIGINT NOT NULL);"},
    /* v3: the audit chain; see the SQLite migration. */
    {3, "CREATE TABLE audit ("
        " seq BIGINT PRIMARY KEY CHECK (seq > 0),"
        " time_ms BIGINT NOT NULL,"
        " route TEXT COLLATE \"C\" NOT NULL DEFAULT '',"
        " subject TEXT COLLATE \"C\" NOT NULL DEFAULT '',"
        " email TEXT COLLATE \"C\" NOT NULL DEFAULT '',"
        " method TEXT COLLATE \"C\" NOT NULL DEFAULT '',"
        " name TEXT COLLATE \"C\" NOT NULL DEFAULT '',"
        " decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),"
        " prev TEXT NOT NULL CHECK (length(prev) = 64),"
        " hash TEXT NOT NULL CHECK (length(hash) = 64),"
        " record TEXT NOT NULL);"
        "CREATE INDEX audit_time ON audit (time_ms);"},
};

_Static_assert(MG_ARRAY_LEN(migrations) == MG_STORE__SCHEMA_LATEST,
               "MG_STORE__SCHEMA_LATEST must name the last migration");

static int read_version(struct mg_store *st, int64_t *version)
{
    PGresult *res = NULL;
    int rc = one_row(st, "SELECT coalesce(max(version), 0) FROM schema_migrations", NULL,
                     "schema version", &res);
    if (rc == 0)
        *version = val_i64(res, 0, 0);
    PQclear(res);
    return rc;
}

static int pg_schema_version(struct mg_store *st, int64_t *version)
{
    PGresult *res = NULL;
    bool exists;
    int rc;

    *version = 0;
    /* A database never migrated has no schema_migrations table. */
    rc = one_row(st, "SELECT to_regclass('schema_migrations') IS NOT NULL", NULL, "schema version",
                 &res);
    if (rc)
        return rc;
    exists = val_bool(res, 0, 0);
    PQclear(res);
    return exists ? read_version(st, version) : 0;
}

static int pg_migrate(struct mg_store *st, int64_t now)
{
    PGresult *res = NULL;
    int64_t have = 0;
    int rc;

    rc = begin(st);
    if (rc)
        return rc;
    /* Instances starting together queue here: the first applies the
     * migrations, the others then find nothing to do. The lock is released
     * at commit or rollback. The key is an arbitrary constant of ours
     * ("mcpgate" in ASCII). The wait may exceed the usual 5 s bound. */
    rc = query(st, "SET LOCAL statement_timeout = '60s'", NULL, "migration timeout", NULL);
    if (rc)
        goto out;
    rc = query(st, "SELECT pg_advisory_xact_lock(30790106883388517)", NULL, "migration lock", NULL);
    if (rc)
        goto out;
    rc = query(st,
               "CREATE TABLE IF NOT EXISTS schema_migrations ("
               " version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
               NULL, "create schema_migrations", NULL);
    if (rc)
        goto out;
    rc = read_version(st, &have);
    if (rc)
        goto out;
    if (have > MG_STORE__SCHEMA_LATEST) {
        mg_store__set_error(st,
                            "postgres: database schema version %lld is newer than this mcpgate "
                            "supports (%d); upgrade mcpgate or restore a matching backup",
                            (long long)have, MG_STORE__SCHEMA_LATEST);
        rc = MG_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(migrations); i++) {
        struct params ps = {0};
        if (migrations[i].version <= have)
            continue;
        /* Constant SQL with several statements: PQexec, inside our transaction. */
        res = PQexec(PG(st)->conn, migrations[i].sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = fail(st, res, "migration");
            goto out;
        }
        PQclear(res);
        res = NULL;
        p_i64(&ps, migrations[i].version);
        p_i64(&ps, now);
        rc = query(st, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &ps,
                   "record migration", NULL);
        if (rc)
            goto out;
    }
    rc = commit(st);
out:
    PQclear(res);
    if (rc)
        rollback(st);
    return rc;
}

/* Users */

#define USER_COLS                                                                                  \
    "id, email, name, groups, password_hash, disabled, failed_logins, last_failure_at, created_at"
/* lower() of a C-collated value folds ASCII only, like SQLite's. */
#define BY_EMAIL " WHERE lower(email) = lower($1::text COLLATE \"C\")"

static int pg_user_create(struct mg_store *st, const struct mg_store_user *u, int64_t now,
                          int64_t *id)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_text(&ps, u->email);
    p_text(&ps, u->name ? u->name : "");
    p_text(&ps, u->groups_json ? u->groups_json : "[]");
    p_text(&ps, u->password_hash);
    p_bool(&ps, u->disabled);
    p_i64(&ps, now);
    rc = one_row(st,
                 "INSERT INTO users (email, name, groups, password_hash, disabled, created_at) "
                 "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                 &ps, "create user", &res);
    if (rc == 0 && id)
        *id = val_i64(res, 0, 0);
    PQclear(res);
    return rc;
}

static void read_user(const PGresult *res, int row, void *p)
{
    struct mg_store_user *u = p;
    u->id = val_i64(res, row, 0);
    u->email = val_text(res, row, 1);
    u->name = val_text(res, row, 2);
    u->groups_json = val_text(res, row, 3);
    u->password_hash = val_text(res, row, 4);
    u->disabled = val_bool(res, row, 5);
    u->failed_logins = val_i64(res, row, 6);
    u->last_failure_at = val_i64(res, row, 7);
    u->created_at = val_i64(res, row, 8);
}

static int pg_user_get(struct mg_store *st, const char *email, struct mg_store_user *out)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_text(&ps, email);
    rc = one_row(st, "SELECT " USER_COLS " FROM users" BY_EMAIL, &ps, "user", &res);
    if (rc == 0)
        read_user(res, 0, out);
    PQclear(res);
    return rc;
}

/* Runs a query and reads every row into a new array of elem_size items. */
static int all_rows(struct mg_store *st, const char *sql, const struct params *ps, size_t elem_size,
                    void (*read)(const PGresult *, int, void *), void **out, size_t *n)
{
    PGresult *res = NULL;
    char *items = NULL;
    int rows;
    int rc = query(st, sql, ps, "list", &res);
    if (rc)
        return rc;
    rows = PQntuples(res);
    if (rows > 0)
        items = mg_xcalloc((size_t)rows, elem_size);
    for (int i = 0; i < rows; i++)
        read(res, i, items + (size_t)i * elem_size);
    PQclear(res);
    *out = items;
    *n = (size_t)rows;
    return 0;
}

static int pg_user_list(struct mg_store *st, struct mg_store_user **out, size_t *n)
{
    void *items = NULL;
    int rc = all_rows(st, "SELECT " USER_COLS " FROM users ORDER BY lower(email)", NULL,
                      sizeof(**out), read_user, &items, n);
    if (rc == 0)
        *out = items;
    return rc;
}

static int pg_user_set_disabled(struct mg_store *st, const char *email, bool disabled)
{
    struct params ps = {0};
    p_text(&ps, email);
    p_bool(&ps, disabled);
    return update_one(st, "UPDATE users SET disabled = $2" BY_EMAIL, &ps, "user");
}

static int pg_user_set_password(struct mg_store *st, const char *email, const char *password_hash)
{
    struct params ps = {0};
    p_text(&ps, email);
    p_text(&ps, password_hash);
    return update_one(st, "UPDATE users SET password_hash = $2" BY_EMAIL, &ps, "user");
}

static int pg_user_record_failure(struct mg_store *st, const char *email, int64_t now,
                                  int64_t *count)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_text(&ps, email);
    p_i64(&ps, now);
    rc = one_row(st,
                 "UPDATE users SET failed_logins = failed_logins + 1, last_failure_at = $2" BY_EMAIL
                 " RETURNING failed_logins",
                 &ps, "user", &res);
    if (rc == 0 && count)
        *count = val_i64(res, 0, 0);
    PQclear(res);
    return rc;
}

static int pg_user_reset_failures(struct mg_store *st, const char *email)
{
    struct params ps = {0};
    p_text(&ps, email);
    return update_one(st, "UPDATE users SET failed_logins = 0" BY_EMAIL, &ps, "user");
}

/* Clients */

#define CLIENT_COLS "client_id, name, redirect_uris, metadata, kind, created_at"

static int pg_client_insert(struct mg_store *st, const struct mg_store_client *c)
{
    struct params ps = {0};
    p_text(&ps, c->client_id);
    p_text(&ps, c->name ? c->name : "");
    p_text(&ps, c->redirect_uris_json ? c->redirect_uris_json : "[]");
    p_text(&ps, c->metadata_json ? c->metadata_json : "{}");
    p_text(&ps, mg_store_client_kind_name(c->kind));
    p_i64(&ps, c->created_at);
    return query(st, "INSERT INTO oauth_clients (" CLIENT_COLS ") VALUES ($1, $2, $3, $4, $5, $6)",
                 &ps, "insert client", NULL);
}

static void read_client(const PGresult *res, int row, void *p)
{
    struct mg_store_client *c = p;
    c->client_id = val_text(res, row, 0);
    c->name = val_text(res, row, 1);
    c->redirect_uris_json = val_text(res, row, 2);
    c->metadata_json = val_text(res, row, 3);
    /* The CHECK constraint keeps kind to known names. */
    MG_ASSERT(mg_store_client_kind_parse(PQgetvalue(res, row, 4), &c->kind) == 0);
    c->created_at = val_i64(res, row, 5);
}

static int pg_client_get(struct mg_store *st, const char *client_id, struct mg_store_client *out)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_text(&ps, client_id);
    rc = one_row(st, "SELECT " CLIENT_COLS " FROM oauth_clients WHERE client_id = $1", &ps,
                 "client", &res);
    if (rc == 0)
        read_client(res, 0, out);
    PQclear(res);
    return rc;
}

static int pg_client_list(struct mg_store *st, struct mg_store_client **out, size_t *n)
{
    void *items = NULL;
    int rc =
        all_rows(st, "SELECT " CLIENT_COLS " FROM oauth_clients ORDER BY created_at, client_id",
                 NULL, sizeof(**out), read_client, &items, n);
    if (rc == 0)
        *out = items;
    return rc;
}

static int pg_client_count_dynamic_since(struct mg_store *st, int64_t since, int64_t *n)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_i64(&ps, since);
    rc = one_row(st,
                 "SELECT count(*) FROM oauth_clients WHERE kind = 'dynamic' AND created_at >= $1",
                 &ps, "count clients", &res);
    if (rc == 0)
        *n = val_i64(res, 0, 0);
    PQclear(res);
    return rc;
}

static int pg_client_delete(struct mg_store *st, const char *client_id)
{
    struct params ps = {0};
    p_text(&ps, client_id);
    return update_one(st, "DELETE FROM oauth_clients WHERE client_id = $1", &ps, "client");
}

/* Tokens */

#define TOKEN_COLS                                                                                 \
    "hash, kind, family_id, client_id, subject, audience, scopes, expires_at, created_at, "        \
    "revoked_at, identity_json, extra_json"

static int pg_token_insert(struct mg_store *st, const struct mg_store_token *t)
{
    struct params ps = {0};
    p_bytes(&ps, t->hash, MG_STORE_HASH_LEN);
    p_text(&ps, mg_store_token_kind_name(t->kind));
    p_text(&ps, t->family_id);
    p_text(&ps, t->client_id);
    p_text(&ps, t->subject);
    p_text(&ps, t->audience ? t->audience : "");
    p_text(&ps, t->scopes ? t->scopes : "");
    p_i64(&ps, t->expires_at);
    p_i64(&ps, t->created_at);
    p_text(&ps, t->identity_json ? t->identity_json : "{}");
    p_text(&ps, t->extra_json ? t->extra_json : "{}");
    return query(st,
                 "INSERT INTO tokens (" TOKEN_COLS ") "
                 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11)",
                 &ps, "insert token", NULL);
}

static void read_token(const PGresult *res, int row, void *p)
{
    struct mg_store_token *t = p;
    MG_ASSERT(mg_store_token_kind_parse(PQgetvalue(res, row, 1), &t->kind) == 0);
    /* Codes are bearer secrets for their short life: listings never carry
     * even their hash. Text results give BYTEA in hex. */
    if (t->kind != MG_STORE_TOKEN_CODE) {
        size_t len = 0;
        unsigned char *h = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 0), &len);
        MG_ASSERT(h != NULL);
        if (len == MG_STORE_HASH_LEN) {
            memcpy(t->hash, h, MG_STORE_HASH_LEN);
            t->has_hash = true;
        }
        PQfreemem(h);
    }
    t->family_id = val_text(res, row, 2);
    t->client_id = val_text(res, row, 3);
    t->subject = val_text(res, row, 4);
    t->audience = val_text(res, row, 5);
    t->scopes = val_text(res, row, 6);
    t->expires_at = val_i64(res, row, 7);
    t->created_at = val_i64(res, row, 8);
    t->revoked_at = val_i64(res, row, 9); /* NULL reads as 0 */
    t->identity_json = val_text(res, row, 10);
    t->extra_json = val_text(res, row, 11);
}

static int pg_token_get(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN],
                        struct mg_store_token *out)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_bytes(&ps, hash, MG_STORE_HASH_LEN);
    rc = one_row(st, "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1", &ps, "token", &res);
    if (rc == 0) {
        read_token(res, 0, out);
        /* The caller asked by hash: give it back whatever the kind. */
        memcpy(out->hash, hash, MG_STORE_HASH_LEN);
        out->has_hash = true;
    }
    PQclear(res);
    return rc;
}

/* Runs one revoking UPDATE and, if it changed rows, bumps the sequence and
 * queues the notification, all in one transaction: a reader never sees a
 * revocation without its bump, and listeners hear of it only at commit. */
static int revoke_rows(struct mg_store *st, const char *sql, const void *key, bool key_is_hash,
                       int64_t now, size_t *n_revoked)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;

    if (key_is_hash)
        p_bytes(&ps, key, MG_STORE_HASH_LEN);
    else
        p_text(&ps, key);
    p_i64(&ps, now);
    rc = begin(st);
    if (rc)
        return rc;
    rc = query(st, sql, &ps, "revoke", &res);
    if (rc)
        goto out;
    *n_revoked = affected(res);
    PQclear(res);
    res = NULL;
    if (*n_revoked > 0) {
        rc = query(st,
                   "WITH b AS (UPDATE revocation_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq) "
                   "SELECT pg_notify('" CHANNEL "', seq::text) FROM b",
                   NULL, "bump revocation sequence", NULL);
        if (rc)
            goto out;
    } else if (key_is_hash) {
        /* Nothing changed: already revoked (success) or unknown. */
        ps.n = 1;
        rc = one_row(st, "SELECT 1 FROM tokens WHERE hash = $1", &ps, "token", &res);
        if (rc)
            goto out;
    }
    rc = commit(st);
out:
    PQclear(res);
    if (rc) {
        *n_revoked = 0;
        rollback(st);
    }
    return rc;
}

static int pg_token_revoke(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN], int64_t now,
                           size_t *n_revoked)
{
    return revoke_rows(st,
                       "UPDATE tokens SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL",
                       hash, true, now, n_revoked);
}

static int pg_token_revoke_family(struct mg_store *st, const char *family_id, int64_t now,
                                  size_t *n_revoked)
{
    return revoke_rows(
        st, "UPDATE tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        family_id, false, now, n_revoked);
}

static int pg_token_revoke_client(struct mg_store *st, const char *client_id, int64_t now,
                                  size_t *n_revoked)
{
    return revoke_rows(
        st, "UPDATE tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        client_id, false, now, n_revoked);
}

static int pg_token_revoke_subject(struct mg_store *st, const char *subject, int64_t now,
                                   size_t *n_revoked)
{
    return revoke_rows(
        st, "UPDATE tokens SET revoked_at = $2 WHERE subject = $1 AND revoked_at IS NULL", subject,
        false, now, n_revoked);
}

static int pg_token_list(struct mg_store *st, const char *subject, const char *client_id,
                         struct mg_store_token **out, size_t *n)
{
    struct params ps = {0};
    void *items = NULL;
    int rc;
    p_text(&ps, subject);
    p_text(&ps, client_id);
    rc = all_rows(st,
                  "SELECT " TOKEN_COLS " FROM tokens WHERE ($1::text IS NULL OR subject = $1) "
                  "AND ($2::text IS NULL OR client_id = $2) ORDER BY created_at, id",
                  &ps, sizeof(**out), read_token, &items, n);
    if (rc == 0)
        *out = items;
    return rc;
}

static int pg_token_delete_expired(struct mg_store *st, int64_t now, size_t *n_deleted)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_i64(&ps, now);
    rc = query(st, "DELETE FROM tokens WHERE expires_at <= $1", &ps, "delete expired tokens", &res);
    if (rc == 0)
        *n_deleted = affected(res);
    PQclear(res);
    return rc;
}

static int pg_revocation_seq(struct mg_store *st, uint64_t *seq)
{
    PGresult *res = NULL;
    int rc = one_row(st, "SELECT seq FROM revocation_seq WHERE id = 1", NULL, "revocation sequence",
                     &res);
    if (rc == 0)
        *seq = (uint64_t)val_i64(res, 0, 0);
    PQclear(res);
    return rc;
}

/* LISTEN, then read the counter; sleep in poll() on the connection's socket
 * until a notification (or anything) arrives or the time is up, and read
 * again. A notification that lands while the counter is being read is seen
 * by the drain after the read, which reads once more instead of sleeping:
 * no wake-up is lost between the read and the poll. */
static int pg_revocation_wait(struct mg_store *st, uint64_t known, int64_t timeout_ms,
                              uint64_t *seq)
{
    struct pg *p = PG(st);
    uint64_t deadline = mg_now_ms() + (uint64_t)timeout_ms;
    int rc = ready_by(st, deadline);
    if (rc)
        return rc;
    if (!p->listening) {
        rc = query(st, "LISTEN " CHANNEL, NULL, "listen", NULL);
        if (rc)
            return rc;
        p->listening = true;
    }
    for (;;) {
        struct pollfd pfd = {.fd = PQsocket(p->conn), .events = POLLIN};
        bool notified;
        uint64_t now;
        int n;

        rc = pg_revocation_seq(st, seq);
        if (rc || *seq != known)
            return rc;
        notified = drain_notifies(p->conn);
        now = mg_now_ms();
        if (now >= deadline)
            return 0;
        if (notified)
            continue;
        if (pfd.fd < 0) {
            mg_store__set_error(st, "postgres: revocation wait: no connection");
            return MG_EIO;
        }
        n = poll(&pfd, 1, (int)MG_MIN(deadline - now, (uint64_t)INT_MAX));
        if (n < 0 && errno != EINTR) {
            mg_store__set_error(st, "postgres: revocation wait: poll: %s", strerror(errno));
            return MG_EIO;
        }
        if (n > 0 && (!PQconsumeInput(p->conn) || PQstatus(p->conn) != CONNECTION_OK))
            return fail(st, NULL, "revocation wait");
    }
}

/* Consents */

#define CONSENT_COLS "subject, client_id, audience, scopes, created_at, expires_at"

static int pg_consent_put(struct mg_store *st, const struct mg_store_consent *c)
{
    struct params ps = {0};
    p_text(&ps, c->subject);
    p_text(&ps, c->client_id);
    p_text(&ps, c->audience);
    p_text(&ps, c->scopes ? c->scopes : "");
    p_i64(&ps, c->created_at);
    p_i64(&ps, c->expires_at);
    return query(st,
                 "INSERT INTO consents (" CONSENT_COLS ") VALUES ($1, $2, $3, $4, $5, $6) "
                 "ON CONFLICT (subject, client_id, audience) DO UPDATE SET "
                 "scopes = excluded.scopes, created_at = excluded.created_at, "
                 "expires_at = excluded.expires_at",
                 &ps, "put consent", NULL);
}

static int pg_consent_get(struct mg_store *st, const char *subject, const char *client_id,
                          const char *audience, int64_t now, struct mg_store_consent *out)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_text(&ps, subject);
    p_text(&ps, client_id);
    p_text(&ps, audience);
    p_i64(&ps, now);
    rc = one_row(st,
                 "SELECT " CONSENT_COLS " FROM consents WHERE subject = $1 AND client_id = $2 "
                 "AND audience = $3 AND expires_at > $4",
                 &ps, "consent", &res);
    if (rc == 0) {
        out->subject = val_text(res, 0, 0);
        out->client_id = val_text(res, 0, 1);
        out->audience = val_text(res, 0, 2);
        out->scopes = val_text(res, 0, 3);
        out->created_at = val_i64(res, 0, 4);
        out->expires_at = val_i64(res, 0, 5);
    }
    PQclear(res);
    return rc;
}

static int pg_consent_delete_subject(struct mg_store *st, const char *subject, size_t *n_deleted)
{
    struct params ps = {0};
    PGresult *res = NULL;
    int rc;
    p_text(&ps, subject);
    rc = query(st, "DELETE FROM consents WHERE subject = $1", &ps, "delete consents", &res);
    if (rc == 0)
        *n_deleted = affected(res);
    PQclear(res);
    return rc;
}

/* Secrets */

/* ON CONFLICT DO NOTHING waits for a concurrent insert of the same name to
 * commit; the SELECT, a new snapshot under READ COMMITTED, then reads the
 * value that won. The signature carries no time: created_at is the
 * database's clock, for people reading the table only. */
static int pg_secret_get_or_create(struct mg_store *st, const char *name, const uint8_t *candidate,
                                   size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    struct params ps = {0};
    PGresult *res = NULL;
    size_t n;
    int rc;

    p_text(&ps, name);
    p_bytes(&ps, candidate, len);
    rc = begin(st);
    if (rc)
        return rc;
    rc = query(st,
               "INSERT INTO secrets (name, value, created_at) "
               "VALUES ($1, $2, extract(epoch FROM now())::bigint) ON CONFLICT (name) DO NOTHING",
               &ps, "insert secret", NULL);
    if (rc)
        goto out;
    ps.n = 1;
    ps.result_format = 1; /* the raw bytes, no hex copy to wipe */
    rc = one_row(st, "SELECT value FROM secrets WHERE name = $1", &ps, "secret", &res);
    if (rc)
        goto out;
    n = (size_t)PQgetlength(res, 0, 0);
    if (n > cap) {
        mg_store__set_error(st, "postgres: secret %s: %zu bytes do not fit in %zu", name, n, cap);
        rc = MG_ELIMIT;
        goto out;
    }
    memcpy(out, PQgetvalue(res, 0, 0), n);
    *out_len = n;
    rc = commit(st);
out:
    if (res) {
        explicit_bzero(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        PQclear(res);
    }
    if (rc) {
        *out_len = 0;
        rollback(st);
    }
    return rc;
}

/* Audit */

#define AUDIT_COLS "seq, time_ms, route, subject, email, method, name, decision, prev, hash, record"
/* See the SQLite backend: NULL parameters do not filter. */
#define AUDIT_WHERE                                                                                \
    " WHERE ($1::text IS NULL OR subject = $1 OR lower(email) = lower($1::text COLLATE \"C\"))"    \
    " AND ($2::text IS NULL OR name = $2) AND ($3::text IS NULL OR decision = $3)"                 \
    " AND ($4::text IS NULL OR route = $4) AND ($5::text IS NULL OR method = $5)"                  \
    " AND time_ms >= $6 AND seq > $7"

static int audit_head(struct mg_store *st, int64_t *seq, char hash[MG_STORE_AUDIT_HASH_HEX + 1])
{
    PGresult *res = NULL;
    int rc = query(st, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", NULL, "audit head",
                   &res);
    if (rc)
        return rc;
    if (PQntuples(res) == 1) {
        *seq = val_i64(res, 0, 0);
        snprintf(hash, MG_STORE_AUDIT_HASH_HEX + 1, "%s", PQgetvalue(res, 0, 1));
    } else {
        *seq = 0;
        memset(hash, '0', MG_STORE_AUDIT_HASH_HEX);
        hash[MG_STORE_AUDIT_HASH_HEX] = '\0';
    }
    PQclear(res);
    return 0;
}

static int pg_audit_last(struct mg_store *st, int64_t *seq, char hash[MG_STORE_AUDIT_HASH_HEX + 1])
{
    return audit_head(st, seq, hash);
}

/* Gateways sharing the database append to one chain. The advisory lock
 * (held to commit) makes them take turns; under READ COMMITTED the head is
 * read after the lock is granted, so it includes the previous holder's
 * rows. The key is "mcpgateA" in ASCII. */
static int pg_audit_append(struct mg_store *st, const struct mg_store_audit_row *rows, size_t n)
{
    char head[MG_STORE_AUDIT_HASH_HEX + 1];
    int64_t last = 0;
    int rc = begin(st);
    if (rc)
        return rc;
    rc = query(st, "SELECT pg_advisory_xact_lock(7882267362147460417)", NULL, "audit lock", NULL);
    if (rc)
        goto out;
    rc = audit_head(st, &last, head);
    if (rc)
        goto out;
    if (rows[0].seq != last + 1 || strcmp(rows[0].prev, head) != 0) {
        mg_store__set_error(st, "postgres: audit append: the chain's head is seq %lld, not %lld",
                            (long long)last, (long long)(rows[0].seq - 1));
        rc = MG_EAGAIN;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mg_store_audit_row *r = &rows[i];
        struct params ps = {0};
        p_i64(&ps, r->seq);
        p_i64(&ps, r->time_ms);
        p_text(&ps, r->route ? r->route : "");
        p_text(&ps, r->subject ? r->subject : "");
        p_text(&ps, r->email ? r->email : "");
        p_text(&ps, r->method ? r->method : "");
        p_text(&ps, r->name ? r->name : "");
        p_text(&ps, r->decision);
        p_text(&ps, r->prev);
        p_text(&ps, r->hash);
        p_text(&ps, r->record);
        rc = query(st,
                   "INSERT INTO audit (" AUDIT_COLS ") "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                   &ps, "append audit record", NULL);
        if (rc)
            goto out;
    }
    rc = commit(st);
out:
    if (rc)
        rollback(st);
    return rc;
}

static void read_audit(const PGresult *res, int row, void *p)
{
    struct mg_store_audit_row *r = p;
    r->seq = val_i64(res, row, 0);
    r->time_ms = val_i64(res, row, 1);
    r->route = val_text(res, row, 2);
    r->subject = val_text(res, row, 3);
    r->email = val_text(res, row, 4);
    r->method = val_text(res, row, 5);
    r->name = val_text(res, row, 6);
    r->decision = val_text(res, row, 7);
    r->prev = val_text(res, row, 8);
    r->hash = val_text(res, row, 9);
    r->record = val_text(res, row, 10);
}

static int pg_audit_query(struct mg_store *st, const struct mg_store_audit_filter *f,
                          struct mg_store_audit_row **out, size_t *n)
{
    struct params ps = {0};
    void *items = NULL;
    int rc;
    p_text(&ps, f->user);
    p_text(&ps, f->tool);
    p_text(&ps, f->decision);
    p_text(&ps, f->route);
    p_text(&ps, f->method);
    p_i64(&ps, f->since_ms);
    p_i64(&ps, f->after_seq);
    p_i64(&ps, (int64_t)f->limit);
    rc = all_rows(st,
                  f->newest
                      ? "SELECT " AUDIT_COLS " FROM audit" AUDIT_WHERE " ORDER BY seq DESC LIMIT $8"
                      : "SELECT " AUDIT_COLS " FROM audit" AUDIT_WHERE " ORDER BY seq LIMIT $8",
                  &ps, sizeof(**out), read_audit, &items, n);
    if (rc)
        return rc;
    *out = items;
    if (f->newest) /* read newest first: give them back in chain order */
        for (size_t i = 0; i < *n / 2; i++) {
            struct mg_store_audit_row t = (*out)[i];
            (*out)[i] = (*out)[*n - 1 - i];
            (*out)[*n - 1 - i] = t;
        }
    return 0;
}

const struct mg_store_ops mg_store__postgres_ops = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .migrate = pg_migrate,
    .schema_version = pg_schema_version,
    .user_create = pg_user_create,
    .user_get = pg_user_get,
    .user_list = pg_user_list,
    .user_set_disabled = pg_user_set_disabled,
    .user_set_password = pg_user_set_password,
    .user_record_failure = pg_user_record_failure,
    .user_reset_failures = pg_user_reset_failures,
    .client_insert = pg_client_insert,
    .client_get = pg_client_get,
    .client_list = pg_client_list,
    .client_count_dynamic_since = pg_client_count_dynamic_since,
    .client_delete = pg_client_delete,
    .token_insert = pg_token_insert,
    .token_get = pg_token_get,
    .token_revoke = pg_token_revoke,
    .token_revoke_family = pg_token_revoke_family,
    .token_revoke_client = pg_token_revoke_client,
    .token_revoke_subject = pg_token_revoke_subject,
    .token_list = pg_token_list,
    .token_delete_expired = pg_token_delete_expired,
    .revocation_seq = pg_revocation_seq,
    .revocation_wait = pg_revocation_wait,
    .consent_put = pg_consent_put,
    .consent_get = pg_consent_get,
    .consent_delete_subject = pg_consent_delete_subject,
    .secret_get_or_create = pg_secret_get_or_create,
    .audit_append = pg_audit_append,
    .audit_last = pg_audit_last,
    .audit_query = pg_audit_query,
};

/* Unit tests for the store (src/store). One suite runs against every backend:
 * SQLite on a temporary file, and PostgreSQL when MCPGATE_TEST_PG_DSN names a
 * throwaway database (its public schema is dropped and recreated first;
 * make unit starts one with scripts/pg; without the variable the PostgreSQL
 * part is reported as skipped). The suite covers
 * migrations (from empty, idempotent, refusal of a newer schema, several
 * instances migrating at once), every user, client, token, consent and
 * secret operation with its not-found and duplicate cases, revocations
 * touching only the right rows and bumping the revocation sequence,
 * revocation_wait waking when another handle revokes, expired-token cleanup,
 * persistence across reopen, and a second handle seeing committed writes.
 * Backend-specific parts: DSN parsing, file modes, WAL and the v1 -> v2
 * upgrade of an existing file (SQLite); a killed connection giving MG_EIO and
 * then recovering, in plain calls and in revocation_wait, and
 * statement_timeout giving MG_ETIMEDOUT (PostgreSQL). The audit chain's
 * table: appends that must continue the stored head (MG_EAGAIN otherwise,
 * nothing written), argument checks, every query filter, and handles on
 * several threads appending to one chain without a gap or a fork. */
#include "store/store.h"
#include "tap.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char path[128];

/* The backend the suite is running against. */
static struct {
    const char *name;
    bool is_pg;
    char dsn[512];
} be;

static void hash_of(uint8_t h[MG_STORE_HASH_LEN], int n)
{
    memset(h, 0, MG_STORE_HASH_LEN);
    h[0] = (uint8_t)n;
    h[31] = 0xA5;
}

static int file_mode(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The current backend's DSN with one more URI query parameter. */
static void dsn_with(char *out, size_t cap, const char *param)
{
    snprintf(out, cap, "%s%c%s", be.dsn, strchr(be.dsn, '?') ? '&' : '?', param);
}

static void ignore_notice(void *arg, const char *message)
{
    MG_UNUSED(arg);
    MG_UNUSED(message);
}

static PGconn *pg_connect(void)
{
    PGconn *c = PQconnectdb(be.dsn);
    if (PQstatus(c) != CONNECTION_OK)
        printf("# postgres: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    return c;
}

/* Runs constant SQL on the database behind the store's back (a second
 * process, or an older/newer mcpgate). 0 on success. */
static int raw_exec(const char *q)
{
    int rc = -1;
    if (be.is_pg) {
        PGconn *c = pg_connect();
        PGresult *res = PQexec(c, q);
        if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
            rc = 0;
        else
            printf("# postgres: %s", PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
    } else {
        sqlite3 *db = NULL;
        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_busy_timeout(db, 5000);
            rc = sqlite3_exec(db, q, NULL, NULL, NULL);
        }
        sqlite3_close(db);
    }
    return rc;
}

static long long raw_count(const char *q)
{
    long long v = -1;
    if (be.is_pg) {
        PGconn *c = pg_connect();
        PGresult *res = PQexec(c, q);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        PQfinish(c);
    } else {
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, q, -1, &stmt, NULL) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
            v = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
    }
    return v;
}

/* An empty database for the current backend. */
static int reset_db(void)
{
    if (be.is_pg)
        return raw_exec("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
    for (int i = 0; i < 3; i++) {
        static const char *const suffix[] = {"", "-wal", "-shm"};
        char p[160];
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        unlink(p);
    }
    return 0;
}

static struct mg_store *open_ok(const char *dsn)
{
    struct mg_store *st = NULL;
    char *err = NULL;
    if (mg_store_open(dsn, &st, &err) != 0)
        printf("# open %s: %s\n", dsn, err ? err : "?");
    free(err);
    return st;
}

/* Backend-independent tests */

static void test_migrations(void)
{
    struct mg_store *st = NULL;
    char *err = NULL;
    int64_t v = -1;

    TAP_IS_INT(mg_store_open(be.dsn, &st, &err), 0, "open");
    free(err);
    TAP_IS_STR(st ? st->ops->name : NULL, be.name, "%s backend chosen", be.name);
    TAP_IS_INT(mg_store_schema_version(st, &v), 0, "schema version of an empty database");
    TAP_IS_INT(v, 0, "empty database is version 0");
    TAP_IS_INT(mg_store_migrate(st, 1000), 0, "migrate from empty");
    TAP_IS_INT(mg_store_schema_version(st, &v), 0, "schema version after migrate");
    TAP_IS_INT(v, mg_store_schema_latest(), "at the latest version");
    TAP_IS_INT(v, 3, "latest is 3");
    TAP_IS_INT(mg_store_migrate(st, 2000), 0, "migrate again (idempotent)");
    TAP_IS_INT(raw_count("SELECT count(*) FROM schema_migrations"), mg_store_schema_latest(),
               "one schema_migrations row per version");
    TAP_IS_INT(raw_count("SELECT applied_at FROM schema_migrations WHERE version = 1"), 1000,
               "applied_at is the caller's time of the first run");
    TAP_OK(strcmp(mg_store_last_error(st), "") == 0, "no error after success");
    mg_store_free(st);
}

static void test_newer_schema(void)
{
    struct mg_store *st = NULL;
    char *err = NULL;
    int64_t v = 0;

    TAP_IS_INT(raw_exec("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 5)"), 0,
               "record a future version by hand");
    TAP_IS_INT(mg_store_open(be.dsn, &st, &err), 0, "open the newer database");
    free(err);
    TAP_IS_INT(mg_store_migrate(st, 3000), MG_EINVAL, "migrate refuses a newer database");
    TAP_OK(strstr(mg_store_last_error(st), "newer") != NULL &&
               strstr(mg_store_last_error(st), "99") != NULL,
           "clear message: %s", mg_store_last_error(st));
    TAP_IS_INT(mg_store_schema_version(st, &v), 0, "version still readable");
    TAP_IS_INT(v, 99, "reports the newer version");
    TAP_IS_INT(raw_count("SELECT count(*) FROM schema_migrations"), mg_store_schema_latest() + 1,
               "refusal changed nothing");
    mg_store_free(st);
    TAP_IS_INT(raw_exec("DELETE FROM schema_migrations WHERE version = 99"), 0,
               "undo the future version");
}

struct migrator {
    pthread_t thread;
    int rc;
};

static void *migrate_thread(void *arg)
{
    struct migrator *m = arg;
    struct mg_store *st = open_ok(be.dsn);
    m->rc = st ? mg_store_migrate(st, 7000) : MG_EIO;
    if (m->rc)
        printf("# concurrent migrate: %s\n", mg_store_last_error(st));
    mg_store_free(st);
    return NULL;
}

/* Instances starting at once on an empty database: one applies the
 * migrations, the others wait and find nothing to do. */
static void test_concurrent_migrations(void)
{
    struct migrator m[4];
    int ok = 1;

    TAP_IS_INT(reset_db(), 0, "fresh database for concurrent migrations");
    for (size_t i = 0; i < MG_ARRAY_LEN(m); i++)
        MG_ASSERT(pthread_create(&m[i].thread, NULL, migrate_thread, &m[i]) == 0);
    for (size_t i = 0; i < MG_ARRAY_LEN(m); i++) {
        pthread_join(m[i].thread, NULL);
        ok &= m[i].rc == 0;
    }
    TAP_OK(ok, "four handles migrating at once all succeed");
    TAP_IS_INT(raw_count("SELECT count(*) FROM schema_migrations"), mg_store_schema_latest(),
               "each migration applied once");
    TAP_IS_INT(raw_count("SELECT count(*) FROM revocation_seq"), 1, "one revocation_seq row");
    TAP_IS_INT(reset_db(), 0, "fresh database again");
}

static void test_users(struct mg_store *st)
{
    struct mg_store_user u = {0}, got = {0}, *list = NULL;
    size_t n = 0;
    int64_t id = 0, count = 0;

    u.email = "Alice@Example.com";
    u.name = "Alice";
    u.groups_json = "[\"admins\"]";
    u.password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA";
    TAP_IS_INT(mg_store_user_create(st, &u, 100, &id), 0, "user create");
    TAP_OK(id > 0, "user id returned");
    u.email = "alice@example.COM";
    TAP_IS_INT(mg_store_user_create(st, &u, 101, NULL), MG_EINVAL,
               "duplicate email (other case): MG_EINVAL");
    TAP_OK(strstr(mg_store_last_error(st), "already exists") != NULL, "duplicate: message (%s)",
           mg_store_last_error(st));
    u = (struct mg_store_user){.email = "bob@example.com"};
    TAP_IS_INT(mg_store_user_create(st, &u, 102, NULL), 0, "user with defaults, no password");
    u = (struct mg_store_user){.email = ""};
    TAP_IS_INT(mg_store_user_create(st, &u, 103, NULL), MG_EINVAL, "empty email refused");
    /* Case folding is ASCII only on every backend: these are two users. */
    u = (struct mg_store_user){.email = "\xc3\x89lise@example.com"}; /* Élise */
    TAP_IS_INT(mg_store_user_create(st, &u, 104, NULL), 0, "non-ASCII email");
    u = (struct mg_store_user){.email = "\xc3\xa9lise@example.com"}; /* élise */
    TAP_IS_INT(mg_store_user_create(st, &u, 105, NULL), 0,
               "same email but for a non-ASCII case is another user");

    TAP_IS_INT(mg_store_user_get(st, "ALICE@example.com", &got), 0, "get case-insensitively");
    TAP_IS_STR(got.email, "Alice@Example.com", "email kept as given");
    TAP_IS_STR(got.name, "Alice", "name");
    TAP_IS_STR(got.groups_json, "[\"admins\"]", "groups");
    TAP_IS_STR(got.password_hash, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "password hash");
    TAP_OK(!got.disabled && got.failed_logins == 0 && got.last_failure_at == 0,
           "enabled, no failures");
    TAP_IS_INT(got.created_at, 100, "created_at");
    TAP_IS_INT(got.id, id, "id");
    mg_store_user_fini(&got);
    TAP_IS_INT(mg_store_user_get(st, "bob@example.com", &got), 0, "get bob");
    TAP_IS_STR(got.name, "", "default name");
    TAP_IS_STR(got.groups_json, "[]", "default groups");
    TAP_OK(got.password_hash == NULL, "no password hash");
    mg_store_user_fini(&got);
    TAP_IS_INT(mg_store_user_get(st, "carol@example.com", &got), MG_ENOTFOUND,
               "get unknown: MG_ENOTFOUND");
    TAP_OK(got.email == NULL, "not found leaves out zeroed");

    TAP_IS_INT(mg_store_user_set_disabled(st, "alice@example.com", true), 0, "disable");
    TAP_IS_INT(mg_store_user_set_password(st, "alice@example.com", "$argon2id$new"), 0,
               "set password");
    TAP_IS_INT(mg_store_user_record_failure(st, "alice@example.com", 500, &count), 0,
               "record failure");
    TAP_IS_INT(count, 1, "first failure counted");
    TAP_IS_INT(mg_store_user_record_failure(st, "alice@example.com", 510, &count), 0,
               "record failure again");
    TAP_IS_INT(count, 2, "second failure counted");
    TAP_IS_INT(mg_store_user_get(st, "alice@example.com", &got), 0, "get after updates");
    TAP_OK(got.disabled, "disabled");
    TAP_IS_STR(got.password_hash, "$argon2id$new", "new password hash");
    TAP_IS_INT(got.failed_logins, 2, "failed_logins");
    TAP_IS_INT(got.last_failure_at, 510, "last_failure_at");
    mg_store_user_fini(&got);
    TAP_IS_INT(mg_store_user_reset_failures(st, "alice@example.com"), 0, "reset failures");
    TAP_IS_INT(mg_store_user_set_disabled(st, "alice@example.com", false), 0, "enable");
    TAP_IS_INT(mg_store_user_set_password(st, "bob@example.com", NULL), 0, "clear a password");
    TAP_IS_INT(mg_store_user_get(st, "alice@example.com", &got), 0, "get after reset");
    TAP_OK(!got.disabled && got.failed_logins == 0 && got.last_failure_at == 510,
           "enabled, count reset, last failure kept");
    mg_store_user_fini(&got);

    TAP_IS_INT(mg_store_user_set_disabled(st, "x@y", true), MG_ENOTFOUND, "disable unknown");
    TAP_IS_INT(mg_store_user_set_password(st, "x@y", "h"), MG_ENOTFOUND, "passwd unknown");
    TAP_IS_INT(mg_store_user_record_failure(st, "x@y", 1, &count), MG_ENOTFOUND,
               "failure for unknown");
    TAP_IS_INT(mg_store_user_reset_failures(st, "x@y"), MG_ENOTFOUND, "reset unknown");

    TAP_IS_INT(mg_store_user_list(st, &list, &n), 0, "list users");
    TAP_IS_INT(n, 4, "four users");
    TAP_IS_STR(n == 4 ? list[0].email : NULL, "Alice@Example.com", "ordered by email (1)");
    TAP_IS_STR(n == 4 ? list[1].email : NULL, "bob@example.com", "ordered by email (2)");
    TAP_IS_STR(n == 4 ? list[2].email : NULL, "\xc3\x89lise@example.com",
               "ordered by email bytes (3)");
    mg_store_user_list_free(list, n);
}

static void test_clients(struct mg_store *st)
{
    struct mg_store_client c = {0}, got = {0}, *list = NULL;
    size_t n = 0;
    int64_t cnt = -1;

    c = (struct mg_store_client){.client_id = "dyn-1",
                                 .name = "Claude",
                                 .redirect_uris_json = "[\"https://claude.ai/cb\"]",
                                 .metadata_json = "{\"token_endpoint_auth_method\":\"none\"}",
                                 .kind = MG_STORE_CLIENT_DYNAMIC,
                                 .created_at = 1000};
    TAP_IS_INT(mg_store_client_insert(st, &c), 0, "insert dynamic client");
    c.client_id = "dyn-2";
    c.created_at = 1100;
    TAP_IS_INT(mg_store_client_insert(st, &c), 0, "insert second dynamic client");
    c = (struct mg_store_client){.client_id = "https://app.example/client.json",
                                 .kind = MG_STORE_CLIENT_METADATA_DOCUMENT,
                                 .created_at = 1200};
    TAP_IS_INT(mg_store_client_insert(st, &c), 0, "insert metadata-document client");
    c = (struct mg_store_client){
        .client_id = "cfg", .kind = MG_STORE_CLIENT_CONFIG, .created_at = 1300};
    TAP_IS_INT(mg_store_client_insert(st, &c), 0, "insert config client");
    TAP_IS_INT(mg_store_client_insert(st, &c), MG_EINVAL, "duplicate client_id: MG_EINVAL");
    TAP_OK(strstr(mg_store_last_error(st), "already exists") != NULL, "duplicate: message (%s)",
           mg_store_last_error(st));
    c.client_id = "bad";
    c.kind = (enum mg_store_client_kind)42;
    TAP_IS_INT(mg_store_client_insert(st, &c), MG_EINVAL, "unknown kind refused");

    TAP_IS_INT(mg_store_client_get(st, "dyn-1", &got), 0, "get client");
    TAP_IS_STR(got.name, "Claude", "name");
    TAP_IS_STR(got.redirect_uris_json, "[\"https://claude.ai/cb\"]", "redirect uris");
    TAP_IS_STR(got.metadata_json, "{\"token_endpoint_auth_method\":\"none\"}", "metadata");
    TAP_IS_INT(got.kind, MG_STORE_CLIENT_DYNAMIC, "kind");
    TAP_IS_INT(got.created_at, 1000, "created_at");
    mg_store_client_fini(&got);
    TAP_IS_INT(mg_store_client_get(st, "https://app.example/client.json", &got), 0,
               "get metadata-document client");
    TAP_IS_INT(got.kind, MG_STORE_CLIENT_METADATA_DOCUMENT, "its kind");
    TAP_IS_STR(got.redirect_uris_json, "[]", "default redirect uris");
    TAP_IS_STR(got.metadata_json, "{}", "default metadata");
    mg_store_client_fini(&got);
    TAP_IS_INT(mg_store_client_get(st, "nope", &got), MG_ENOTFOUND, "get unknown client");

    TAP_IS_INT(mg_store_client_count_dynamic_since(st, 0, &cnt), 0, "count dynamic since 0");
    TAP_IS_INT(cnt, 2, "two dynamic (config and metadata-document not counted)");
    TAP_IS_INT(mg_store_client_count_dynamic_since(st, 1100, &cnt), 0, "count since 1100");
    TAP_IS_INT(cnt, 1, "since is inclusive");
    TAP_IS_INT(mg_store_client_count_dynamic_since(st, 1101, &cnt), 0, "count since 1101");
    TAP_IS_INT(cnt, 0, "none after");

    TAP_IS_INT(mg_store_client_list(st, &list, &n), 0, "list clients");
    TAP_IS_INT(n, 4, "four clients");
    TAP_IS_STR(n == 4 ? list[0].client_id : NULL, "dyn-1", "ordered by created_at (first)");
    TAP_IS_STR(n == 4 ? list[3].client_id : NULL, "cfg", "ordered by created_at (last)");
    mg_store_client_list_free(list, n);

    TAP_IS_INT(mg_store_client_delete(st, "dyn-2"), 0, "delete client");
    TAP_IS_INT(mg_store_client_get(st, "dyn-2", &got), MG_ENOTFOUND, "deleted client gone");
    TAP_IS_INT(mg_store_client_delete(st, "dyn-2"), MG_ENOTFOUND, "delete again: MG_ENOTFOUND");
}

static void add_token(struct mg_store *st, int n, enum mg_store_token_kind kind, const char *family,
                      const char *client, const char *subject, int64_t expires)
{
    struct mg_store_token t = {.kind = kind,
                               .family_id = (char *)family,
                               .client_id = (char *)client,
                               .subject = (char *)subject,
                               .audience = "https://gw.example/mcp/files",
                               .scopes = "files:read files:write",
                               .expires_at = expires,
                               .created_at = 1000 + n};
    hash_of(t.hash, n);
    if (kind == MG_STORE_TOKEN_CODE) {
        t.identity_json = "{\"email\":\"alice@example.com\",\"method\":\"password\"}";
        t.extra_json = "{\"redirect_uri\":\"https://claude.ai/cb\",\"code_challenge\":\"abc\"}";
    }
    TAP_IS_INT(mg_store_token_insert(st, &t), 0, "insert token %d (%s)", n,
               mg_store_token_kind_name(kind));
}

static int64_t revoked_at(struct mg_store *st, int n)
{
    struct mg_store_token t;
    uint8_t h[MG_STORE_HASH_LEN];
    int64_t r = -1;
    hash_of(h, n);
    if (mg_store_token_get(st, h, &t) == 0)
        r = t.revoked_at;
    mg_store_token_fini(&t);
    return r;
}

static uint64_t seq_of(struct mg_store *st)
{
    uint64_t s = 0;
    MG_ASSERT(mg_store_revocation_seq(st, &s) == 0);
    return s;
}

static void test_tokens(struct mg_store *st)
{
    struct mg_store_token t = {0}, *list = NULL;
    uint8_t h[MG_STORE_HASH_LEN];
    size_t n = 0, nrev = 99;
    uint64_t seq0;

    /* 1..3: family F1 (alice, client A); 4: code; 5: family F2 (bob, A);
     * 6: alice on client B; 7: service token for bot; 8: expired */
    add_token(st, 1, MG_STORE_TOKEN_ACCESS, "F1", "A", "alice", 5000);
    add_token(st, 2, MG_STORE_TOKEN_REFRESH, "F1", "A", "alice", 9000);
    add_token(st, 3, MG_STORE_TOKEN_REFRESH, "F1", "A", "alice", 9000);
    add_token(st, 4, MG_STORE_TOKEN_CODE, NULL, "A", "alice", 1060);
    add_token(st, 5, MG_STORE_TOKEN_REFRESH, "F2", "A", "bob", 9000);
    add_token(st, 6, MG_STORE_TOKEN_ACCESS, "F3", "B", "alice", 5000);
    add_token(st, 7, MG_STORE_TOKEN_SERVICE, NULL, NULL, "bot", 99999);
    add_token(st, 8, MG_STORE_TOKEN_ACCESS, NULL, "B", "carol", 1500);

    hash_of(t.hash, 1);
    t.kind = MG_STORE_TOKEN_ACCESS;
    t.subject = "dup";
    TAP_IS_INT(mg_store_token_insert(st, &t), MG_EINVAL, "duplicate hash: MG_EINVAL");
    TAP_OK(strstr(mg_store_last_error(st), "already exists") != NULL, "duplicate: message (%s)",
           mg_store_last_error(st));
    t.subject = NULL;
    hash_of(t.hash, 50);
    TAP_IS_INT(mg_store_token_insert(st, &t), MG_EINVAL, "token without subject refused");

    hash_of(h, 2);
    TAP_IS_INT(mg_store_token_get(st, h, &t), 0, "get token by hash");
    TAP_OK(t.has_hash && memcmp(t.hash, h, sizeof(h)) == 0, "hash returned");
    TAP_IS_INT(t.kind, MG_STORE_TOKEN_REFRESH, "kind");
    TAP_IS_STR(t.family_id, "F1", "family");
    TAP_IS_STR(t.client_id, "A", "client");
    TAP_IS_STR(t.subject, "alice", "subject");
    TAP_IS_STR(t.audience, "https://gw.example/mcp/files", "audience");
    TAP_IS_STR(t.scopes, "files:read files:write", "scopes");
    TAP_IS_INT(t.expires_at, 9000, "expires_at");
    TAP_IS_INT(t.created_at, 1002, "created_at");
    TAP_IS_INT(t.revoked_at, 0, "not revoked");
    TAP_IS_STR(t.identity_json, "{}", "identity defaults to {}");
    TAP_IS_STR(t.extra_json, "{}", "extra defaults to {}");
    mg_store_token_fini(&t);
    hash_of(h, 4);
    TAP_IS_INT(mg_store_token_get(st, h, &t), 0, "get the code by hash");
    TAP_OK(t.has_hash && memcmp(t.hash, h, sizeof(h)) == 0, "code: hash given back to the asker");
    TAP_IS_STR(t.identity_json, "{\"email\":\"alice@example.com\",\"method\":\"password\"}",
               "identity stored");
    TAP_IS_STR(t.extra_json,
               "{\"redirect_uri\":\"https://claude.ai/cb\",\"code_challenge\":\"abc\"}",
               "grant data stored");
    mg_store_token_fini(&t);
    TAP_OK(t.identity_json == NULL && t.subject == NULL, "token fini clears the struct");
    hash_of(h, 7);
    TAP_IS_INT(mg_store_token_get(st, h, &t), 0, "get service token");
    TAP_OK(t.client_id == NULL && t.family_id == NULL, "service token: no client, no family");
    mg_store_token_fini(&t);
    hash_of(h, 77);
    TAP_IS_INT(mg_store_token_get(st, h, &t), MG_ENOTFOUND, "get unknown hash");

    seq0 = seq_of(st);
    TAP_IS_INT(seq0, 0, "revocation sequence starts at 0");

    hash_of(h, 4);
    TAP_IS_INT(mg_store_token_revoke(st, h, 2000, &nrev), 0, "revoke (consume) the code");
    TAP_IS_INT(nrev, 1, "one row revoked: this caller consumed it");
    TAP_IS_INT(seq_of(st), seq0 + 1, "sequence bumped");
    TAP_IS_INT(mg_store_token_revoke(st, h, 2001, &nrev), 0, "revoke again: success");
    TAP_IS_INT(nrev, 0, "nothing revoked the second time (single use)");
    TAP_IS_INT(seq_of(st), seq0 + 1, "sequence unchanged when nothing changed");
    TAP_IS_INT(revoked_at(st, 4), 2000, "revoked_at is the first revocation's time");
    hash_of(h, 77);
    TAP_IS_INT(mg_store_token_revoke(st, h, 2002, &nrev), MG_ENOTFOUND, "revoke unknown hash");
    TAP_IS_INT(nrev, 0, "unknown: nothing revoked");
    TAP_IS_INT(seq_of(st), seq0 + 1, "unknown: sequence unchanged");

    TAP_IS_INT(mg_store_token_revoke_family(st, "F1", 3000, &nrev), 0, "revoke family F1");
    TAP_IS_INT(nrev, 3, "three tokens of F1");
    TAP_IS_INT(seq_of(st), seq0 + 2, "sequence bumped");
    TAP_OK(revoked_at(st, 1) == 3000 && revoked_at(st, 2) == 3000 && revoked_at(st, 3) == 3000,
           "F1 tokens revoked");
    TAP_OK(revoked_at(st, 5) == 0 && revoked_at(st, 6) == 0 && revoked_at(st, 7) == 0,
           "other families untouched");
    TAP_IS_INT(mg_store_token_revoke_family(st, "nope", 3001, &nrev), 0, "revoke unknown family");
    TAP_IS_INT(nrev, 0, "nothing revoked");
    TAP_IS_INT(seq_of(st), seq0 + 2, "sequence unchanged");

    TAP_IS_INT(mg_store_token_revoke_client(st, "A", 4000, &nrev), 0, "revoke client A");
    TAP_IS_INT(nrev, 1, "only bob's F2 token was still live on A");
    TAP_IS_INT(revoked_at(st, 5), 4000, "bob's token revoked");
    TAP_IS_INT(revoked_at(st, 1), 3000, "already revoked keep their time");
    TAP_IS_INT(revoked_at(st, 6), 0, "client B untouched");
    TAP_IS_INT(seq_of(st), seq0 + 3, "sequence bumped");

    TAP_IS_INT(mg_store_token_revoke_subject(st, "alice", 5000, NULL), 0,
               "revoke subject alice (count optional)");
    TAP_IS_INT(revoked_at(st, 6), 5000, "alice on client B revoked");
    TAP_IS_INT(revoked_at(st, 7), 0, "bot untouched");
    TAP_IS_INT(revoked_at(st, 8), 0, "carol untouched");
    TAP_IS_INT(seq_of(st), seq0 + 4, "sequence bumped");

    TAP_IS_INT(mg_store_token_list(st, NULL, NULL, &list, &n), 0, "list all tokens");
    TAP_IS_INT(n, 8, "eight tokens");
    if (n == 8) {
        TAP_IS_INT(list[3].kind, MG_STORE_TOKEN_CODE, "fourth is the code");
        TAP_OK(!list[3].has_hash && list[3].hash[31] == 0, "code listed without its hash");
        TAP_OK(list[0].has_hash && list[0].hash[0] == 1 && list[0].hash[31] == 0xA5,
               "access token listed with its hash");
        TAP_IS_STR(list[3].extra_json,
                   "{\"redirect_uri\":\"https://claude.ai/cb\",\"code_challenge\":\"abc\"}",
                   "listing carries the grant data");
        TAP_IS_STR(list[0].identity_json, "{}", "listing carries the identity");
    }
    mg_store_token_list_free(list, n);
    TAP_IS_INT(mg_store_token_list(st, "alice", NULL, &list, &n), 0, "list by subject");
    TAP_IS_INT(n, 5, "alice has five");
    mg_store_token_list_free(list, n);
    TAP_IS_INT(mg_store_token_list(st, "alice", "B", &list, &n), 0, "list by subject and client");
    TAP_IS_INT(n, 1, "alice on B: one");
    mg_store_token_list_free(list, n);
    TAP_IS_INT(mg_store_token_list(st, NULL, "zzz", &list, &n), 0, "list unknown client");
    TAP_OK(n == 0 && list == NULL, "empty list");

    TAP_IS_INT(mg_store_token_delete_expired(st, 1500, &nrev), 0, "delete expired at 1500");
    TAP_IS_INT(nrev, 2, "code (1060) and carol's (1500, inclusive) deleted");
    hash_of(h, 8);
    TAP_IS_INT(mg_store_token_get(st, h, &t), MG_ENOTFOUND, "expired token gone");
    hash_of(h, 7);
    TAP_IS_INT(mg_store_token_get(st, h, &t), 0, "live token kept");
    mg_store_token_fini(&t);
    TAP_IS_INT(mg_store_token_delete_expired(st, 1500, NULL), 0, "delete expired again");
}

static void test_consents(struct mg_store *st)
{
    struct mg_store_consent c, got = {0};
    size_t n = 99;

    c = (struct mg_store_consent){.subject = "alice",
                                  .client_id = "dyn-1",
                                  .audience = "https://gw.example/files",
                                  .scopes = "files:read",
                                  .created_at = 100,
                                  .expires_at = 1000};
    TAP_IS_INT(mg_store_consent_put(st, &c), 0, "put consent");
    TAP_IS_INT(mg_store_consent_get(st, "alice", "dyn-1", "https://gw.example/files", 500, &got), 0,
               "get consent");
    TAP_IS_STR(got.subject, "alice", "subject");
    TAP_IS_STR(got.client_id, "dyn-1", "client_id");
    TAP_IS_STR(got.audience, "https://gw.example/files", "audience");
    TAP_IS_STR(got.scopes, "files:read", "scopes");
    TAP_IS_INT(got.created_at, 100, "created_at");
    TAP_IS_INT(got.expires_at, 1000, "expires_at");
    mg_store_consent_fini(&got);
    TAP_OK(got.subject == NULL, "consent fini clears the struct");
    TAP_IS_INT(mg_store_consent_get(st, "alice", "dyn-1", "https://gw.example/files", 999, &got), 0,
               "valid just before expiry");
    mg_store_consent_fini(&got);
    TAP_IS_INT(mg_store_consent_get(st, "alice", "dyn-1", "https://gw.example/files", 1000, &got),
               MG_ENOTFOUND, "expired at expires_at: MG_ENOTFOUND");
    TAP_OK(got.subject == NULL, "not found leaves out zeroed");
    TAP_IS_INT(mg_store_consent_get(st, "alice", "dyn-1", "https://gw.example/other", 500, &got),
               MG_ENOTFOUND, "other audience: none");
    TAP_IS_INT(mg_store_consent_get(st, "alice", "dyn-2", "https://gw.example/files", 500, &got),
               MG_ENOTFOUND, "other client: none");
    TAP_IS_INT(mg_store_consent_get(st, "Alice", "dyn-1", "https://gw.example/files", 500, &got),
               MG_ENOTFOUND, "subjects are exact");

    c.scopes = "files:read files:write";
    c.created_at = 1200;
    c.expires_at = 3000;
    TAP_IS_INT(mg_store_consent_put(st, &c), 0, "put again replaces");
    TAP_IS_INT(mg_store_consent_get(st, "alice", "dyn-1", "https://gw.example/files", 1500, &got),
               0, "get the replacement");
    TAP_IS_STR(got.scopes, "files:read files:write", "new scopes");
    TAP_IS_INT(got.created_at, 1200, "new created_at");
    TAP_IS_INT(got.expires_at, 3000, "new expires_at");
    mg_store_consent_fini(&got);
    TAP_IS_INT(raw_count("SELECT count(*) FROM consents"), 1, "still one row");

    c.client_id = "dyn-2";
    c.scopes = NULL;
    TAP_IS_INT(mg_store_consent_put(st, &c), 0, "put for another client (no scopes)");
    TAP_IS_INT(mg_store_consent_get(st, "alice", "dyn-2", "https://gw.example/files", 1500, &got),
               0, "get it");
    TAP_IS_STR(got.scopes, "", "NULL scopes stored as \"\"");
    mg_store_consent_fini(&got);
    c.subject = "bob";
    TAP_IS_INT(mg_store_consent_put(st, &c), 0, "put for bob");
    c.audience = NULL;
    TAP_IS_INT(mg_store_consent_put(st, &c), MG_EINVAL, "no audience: MG_EINVAL");
    TAP_IS_INT(mg_store_consent_get(st, "bob", NULL, "x", 1, &got), MG_EINVAL,
               "get without client_id: MG_EINVAL");

    TAP_IS_INT(mg_store_consent_delete_subject(st, "alice", &n), 0, "delete alice's consents");
    TAP_IS_INT(n, 2, "two deleted");
    TAP_IS_INT(mg_store_consent_get(st, "alice", "dyn-1", "https://gw.example/files", 1500, &got),
               MG_ENOTFOUND, "alice's consent gone");
    TAP_IS_INT(mg_store_consent_get(st, "bob", "dyn-2", "https://gw.example/files", 1500, &got), 0,
               "bob's kept");
    mg_store_consent_fini(&got);
    TAP_IS_INT(mg_store_consent_delete_subject(st, "alice", &n), 0, "delete again");
    TAP_IS_INT(n, 0, "nothing deleted");
    TAP_IS_INT(mg_store_consent_delete_subject(st, "nobody", NULL), 0, "count optional");
}

struct secret_racer {
    pthread_t thread;
    uint8_t cand[32];
    uint8_t got[64];
    size_t len;
    int rc;
};

static void *secret_thread(void *arg)
{
    struct secret_racer *r = arg;
    struct mg_store *st = open_ok(be.dsn);
    r->rc = st ? mg_store_secret_get_or_create(st, "race", r->cand, sizeof(r->cand), r->got,
                                               sizeof(r->got), &r->len)
               : MG_EIO;
    mg_store_free(st);
    return NULL;
}

static void test_secrets(struct mg_store *st, struct mg_store *other)
{
    uint8_t a[32], b[32], out[64];
    size_t len = 99;
    struct secret_racer r[4];
    int same = 1;

    for (size_t i = 0; i < sizeof(a); i++) {
        a[i] = (uint8_t)(i * 37 + 11); /* includes 0x00 and bytes >= 0x80 */
        b[i] = (uint8_t)~a[i];
    }
    a[5] = 0;
    TAP_IS_INT(mg_store_secret_get_or_create(st, "cookie", a, sizeof(a), out, sizeof(out), &len), 0,
               "first call creates");
    TAP_IS_INT(len, 32, "its length");
    TAP_OK(memcmp(out, a, sizeof(a)) == 0, "the candidate, byte for byte");
    TAP_IS_INT(mg_store_secret_get_or_create(st, "cookie", b, sizeof(b), out, sizeof(out), &len), 0,
               "second call");
    TAP_OK(len == 32 && memcmp(out, a, sizeof(a)) == 0, "gets the stored value, not its candidate");
    TAP_IS_INT(mg_store_secret_get_or_create(other, "cookie", b, sizeof(b), out, sizeof(out), &len),
               0, "another handle");
    TAP_OK(len == 32 && memcmp(out, a, sizeof(a)) == 0, "sees the same value");
    TAP_IS_INT(mg_store_secret_get_or_create(st, "csrf", b, 16, out, sizeof(out), &len), 0,
               "another name");
    TAP_OK(len == 16 && memcmp(out, b, 16) == 0, "has its own value");
    TAP_IS_INT(mg_store_secret_get_or_create(st, "cookie", b, 8, out, 16, &len), MG_ELIMIT,
               "stored value larger than cap: MG_ELIMIT");
    TAP_IS_INT(len, 0, "no length on failure");
    TAP_IS_INT(mg_store_secret_get_or_create(st, "new", b, 32, out, 16, &len), MG_EINVAL,
               "candidate larger than cap refused");
    TAP_IS_INT(mg_store_secret_get_or_create(st, "", b, 8, out, 16, &len), MG_EINVAL,
               "empty name refused");
    TAP_IS_INT(mg_store_secret_get_or_create(st, "new", NULL, 8, out, 16, &len), MG_EINVAL,
               "no candidate refused");
    TAP_IS_INT(raw_count("SELECT count(*) FROM secrets WHERE name = 'new'"), 0,
               "refusals stored nothing");

    for (size_t i = 0; i < MG_ARRAY_LEN(r); i++) {
        memset(&r[i], 0, sizeof(r[i]));
        memset(r[i].cand, (int)(0x10 + i), sizeof(r[i].cand));
        MG_ASSERT(pthread_create(&r[i].thread, NULL, secret_thread, &r[i]) == 0);
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(r); i++) {
        pthread_join(r[i].thread, NULL);
        same &= r[i].rc == 0 && r[i].len == 32 && memcmp(r[i].got, r[0].got, 32) == 0;
    }
    TAP_OK(same, "four handles racing on an empty name all get one value");
    TAP_OK(r[0].got[0] >= 0x10 && r[0].got[0] < 0x14, "one of the candidates");
}

/* Audit chain */

/* A fake but well-formed hash for row n (the store does not hash). */
static void audit_hash(char out[MG_STORE_AUDIT_HASH_HEX + 1], int64_t n)
{
    if (n == 0) {
        memset(out, '0', MG_STORE_AUDIT_HASH_HEX);
        out[MG_STORE_AUDIT_HASH_HEX] = '\0';
        return;
    }
    snprintf(out, MG_STORE_AUDIT_HASH_HEX + 1, "%032llx%032llx", (unsigned long long)n * 7919u,
             (unsigned long long)n);
}

struct arow {
    struct mg_store_audit_row r;
    char prev[MG_STORE_AUDIT_HASH_HEX + 1], hash[MG_STORE_AUDIT_HASH_HEX + 1];
    char record[96];
};

/* Row seq chained after prev_hash (whose text the caller gives). */
static void arow_make(struct arow *a, int64_t seq, const char *prev, const char *tag,
                      int64_t hash_n)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->prev, sizeof(a->prev), "%s", prev);
    audit_hash(a->hash, hash_n);
    snprintf(a->record, sizeof(a->record), "{\"seq\":%lld,\"tag\":\"%s\"}", (long long)seq, tag);
    a->r.seq = seq;
    a->r.time_ms = 1700000000000LL + seq * 1000;
    a->r.prev = a->prev;
    a->r.hash = a->hash;
    a->r.record = a->record;
    a->r.decision = (char *)(seq % 3 == 0 ? "deny" : "allow");
    a->r.route = (char *)(seq % 2 ? "sql" : "files");
    a->r.subject = (char *)(seq <= 3 ? "user:alice@example.com" : "sa:bot");
    a->r.email = (char *)(seq <= 3 ? "Alice@Example.com" : NULL);
    a->r.method = (char *)(seq == 5 ? "initialize" : "tools/call");
    a->r.name = (char *)(seq == 5 ? NULL : seq % 2 ? "query" : "execute");
}

static void test_audit(struct mg_store *st, struct mg_store *other)
{
    struct arow a[6];
    struct mg_store_audit_row *rows = NULL, bad_rows[2];
    struct mg_store_audit_filter f = {0};
    char head[MG_STORE_AUDIT_HASH_HEX + 1], zeros[MG_STORE_AUDIT_HASH_HEX + 1];
    int64_t seq = -1;
    size_t n = 0;
    struct mg_store_audit_row chain[3];

    audit_hash(zeros, 0);
    TAP_IS_INT(mg_store_audit_last(st, &seq, head), 0, "audit head of an empty table");
    TAP_IS_INT(seq, 0, "seq 0");
    TAP_IS_STR(head, zeros, "hash is 64 zeros");

    arow_make(&a[0], 1, zeros, "one", 1);
    arow_make(&a[1], 2, a[0].hash, "two", 2);
    arow_make(&a[2], 3, a[1].hash, "three", 3);
    for (int i = 0; i < 3; i++)
        chain[i] = a[i].r;
    TAP_IS_INT(mg_store_audit_append(st, chain, 3), 0, "append three chained rows in one call");
    TAP_IS_INT(mg_store_audit_last(other, &seq, head), 0, "another handle reads the head");
    TAP_IS_INT(seq, 3, "head seq 3");
    TAP_IS_STR(head, a[2].hash, "head hash is row 3's");

    /* Rows that do not continue the stored head. */
    TAP_IS_INT(mg_store_audit_append(st, &a[2].r, 1), MG_EAGAIN, "seq 3 again: MG_EAGAIN");
    TAP_OK(strstr(mg_store_last_error(st), "head is seq 3") != NULL, "message names the head (%s)",
           mg_store_last_error(st));
    arow_make(&a[3], 4, a[1].hash, "fork", 4);
    TAP_IS_INT(mg_store_audit_append(st, &a[3].r, 1), MG_EAGAIN,
               "seq 4 chained to row 2's hash (a fork): MG_EAGAIN");
    arow_make(&a[3], 5, a[2].hash, "gap", 5);
    TAP_IS_INT(mg_store_audit_append(st, &a[3].r, 1), MG_EAGAIN,
               "seq 5 after 3 (a gap): MG_EAGAIN");
    TAP_IS_INT(raw_count("SELECT count(*) FROM audit"), 3, "refusals wrote nothing");

    /* Another writer takes seq 4; this one re-reads the head and goes on. */
    arow_make(&a[3], 4, a[2].hash, "four", 4);
    TAP_IS_INT(mg_store_audit_append(other, &a[3].r, 1), 0, "the other handle appends seq 4");
    arow_make(&a[4], 4, a[2].hash, "late", 44);
    TAP_IS_INT(mg_store_audit_append(st, &a[4].r, 1), MG_EAGAIN, "the loser gets MG_EAGAIN");
    TAP_IS_INT(mg_store_audit_last(st, &seq, head), 0, "re-read the head");
    TAP_OK(seq == 4 && strcmp(head, a[3].hash) == 0, "it is the winner's row");
    arow_make(&a[4], 5, head, "five", 5);
    TAP_IS_INT(mg_store_audit_append(st, &a[4].r, 1), 0, "re-chained row appends");
    arow_make(&a[5], 6, a[4].hash, "six", 6);
    TAP_IS_INT(mg_store_audit_append(st, &a[5].r, 1), 0, "and the next");

    /* Argument checks. */
    TAP_IS_INT(mg_store_audit_append(st, NULL, 1), MG_EINVAL, "no rows");
    TAP_IS_INT(mg_store_audit_append(st, &a[5].r, 0), MG_EINVAL, "zero rows");
    bad_rows[0] = a[5].r;
    bad_rows[0].seq = 7;
    bad_rows[0].hash = "ABC";
    TAP_IS_INT(mg_store_audit_append(st, bad_rows, 1), MG_EINVAL, "short hash");
    bad_rows[0].hash = a[0].hash;
    bad_rows[0].decision = "maybe";
    TAP_IS_INT(mg_store_audit_append(st, bad_rows, 1), MG_EINVAL,
               "decision neither allow nor deny");
    bad_rows[0].decision = "allow";
    bad_rows[0].record = NULL;
    TAP_IS_INT(mg_store_audit_append(st, bad_rows, 1), MG_EINVAL, "no record text");
    bad_rows[0].record = "{}";
    bad_rows[1] = bad_rows[0];
    bad_rows[1].seq = 9;
    TAP_IS_INT(mg_store_audit_append(st, bad_rows, 2), MG_EINVAL, "non-consecutive rows");
    bad_rows[1].seq = 8;
    TAP_IS_INT(mg_store_audit_append(st, bad_rows, 2), MG_EINVAL,
               "second row not chained to the first");
    bad_rows[0].seq = 0;
    TAP_IS_INT(mg_store_audit_append(st, bad_rows, 1), MG_EINVAL, "seq 0");
    TAP_IS_INT(raw_count("SELECT count(*) FROM audit"), 6, "six rows stored");

    /* Queries. */
    TAP_IS_INT(mg_store_audit_query(st, NULL, &rows, &n), 0, "query everything");
    TAP_IS_INT(n, 6, "six rows");
    if (n == 6) {
        int chained = 1;
        for (size_t i = 0; i < n; i++)
            chained &= rows[i].seq == (int64_t)i + 1 &&
                       strcmp(rows[i].prev, i ? rows[i - 1].hash : zeros) == 0;
        TAP_OK(chained, "in seq order, each prev the previous hash");
        TAP_IS_STR(rows[0].record, "{\"seq\":1,\"tag\":\"one\"}", "record text kept exactly");
        TAP_IS_INT(rows[0].time_ms, 1700000001000LL, "time_ms");
        TAP_IS_STR(rows[0].route, "sql", "route");
        TAP_IS_STR(rows[0].email, "Alice@Example.com", "email");
        TAP_IS_STR(rows[3].email, "", "NULL email stored as \"\"");
        TAP_IS_STR(rows[4].name, "", "NULL name stored as \"\"");
        TAP_IS_STR(rows[2].decision, "deny", "decision");
    }
    mg_store_audit_list_free(rows, n);

#define COUNT(desc, want)                                                                          \
    do {                                                                                           \
        rows = NULL;                                                                               \
        n = 0;                                                                                     \
        TAP_IS_INT(mg_store_audit_query(st, &f, &rows, &n), 0, "query %s", desc);                  \
        TAP_IS_INT(n, want, "%s: %d rows", desc, want);                                            \
    } while (0)
    f = (struct mg_store_audit_filter){.user = "user:alice@example.com"};
    COUNT("by subject", 3);
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.user = "alice@EXAMPLE.com"};
    COUNT("by email, any ASCII case", 3);
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.tool = "query"};
    COUNT("by tool", 2);
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.decision = "deny"};
    COUNT("by decision", 2);
    TAP_OK(n == 2 && rows[0].seq == 3 && rows[1].seq == 6, "the denials are 3 and 6");
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.route = "files", .decision = "allow"};
    COUNT("by route and decision", 2);
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.method = "initialize"};
    COUNT("by method", 1);
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.since_ms = 1700000004000LL};
    COUNT("since (inclusive)", 3);
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.after_seq = 2, .limit = 2};
    COUNT("after seq 2, limit 2", 2);
    TAP_OK(n == 2 && rows[0].seq == 3 && rows[1].seq == 4, "rows 3 and 4");
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.limit = 2, .newest = true};
    COUNT("newest 2", 2);
    TAP_OK(n == 2 && rows[0].seq == 5 && rows[1].seq == 6, "rows 5 and 6, in chain order");
    mg_store_audit_list_free(rows, n);
    f = (struct mg_store_audit_filter){.user = "nobody"};
    COUNT("no match", 0);
    TAP_OK(rows == NULL, "no rows, no array");
    mg_store_audit_list_free(rows, n);
#undef COUNT
}

/* Writers on several handles (gateways) appending to one chain: each reads
 * the head, chains a row to it and retries on MG_EAGAIN. */
struct audit_writer {
    pthread_t thread;
    int id, n_rows, rc, retries;
};

static void *audit_thread(void *arg)
{
    struct audit_writer *w = arg;
    struct mg_store *st = open_ok(be.dsn);
    w->rc = st ? 0 : MG_EIO;
    for (int i = 0; st && i < w->n_rows && w->rc == 0;) {
        char head[MG_STORE_AUDIT_HASH_HEX + 1];
        struct arow a;
        int64_t seq = 0;
        char tag[16];
        w->rc = mg_store_audit_last(st, &seq, head);
        if (w->rc)
            break;
        snprintf(tag, sizeof(tag), "w%d-%d", w->id, i);
        arow_make(&a, seq + 1, head, tag, (seq + 1) * 1000 + w->id);
        w->rc = mg_store_audit_append(st, &a.r, 1);
        if (w->rc == MG_EAGAIN) {
            w->rc = 0;
            w->retries++;
            continue;
        }
        i++;
    }
    if (w->rc)
        printf("# audit writer %d: %s\n", w->id, mg_store_last_error(st));
    mg_store_free(st);
    return NULL;
}

static void test_audit_concurrent(void)
{
    struct audit_writer w[4];
    struct mg_store *st = open_ok(be.dsn);
    struct mg_store_audit_row *rows = NULL;
    struct mg_store_audit_filter f = {.after_seq = 0};
    int64_t first = 0;
    char head[MG_STORE_AUDIT_HASH_HEX + 1];
    size_t n = 0;
    int ok = 1, retries = 0;

    TAP_IS_INT(mg_store_audit_last(st, &first, head), 0, "head before the race");
    for (size_t i = 0; i < MG_ARRAY_LEN(w); i++) {
        w[i] = (struct audit_writer){.id = (int)i + 1, .n_rows = 25};
        MG_ASSERT(pthread_create(&w[i].thread, NULL, audit_thread, &w[i]) == 0);
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(w); i++) {
        pthread_join(w[i].thread, NULL);
        ok &= w[i].rc == 0;
        retries += w[i].retries;
    }
    TAP_OK(ok, "four handles appended 25 rows each (%d lost races retried)", retries);
    f.after_seq = first;
    TAP_IS_INT(mg_store_audit_query(st, &f, &rows, &n), 0, "read them back");
    TAP_IS_INT(n, 100, "100 new rows");
    for (size_t i = 1; i < n; i++)
        ok &= rows[i].seq == rows[i - 1].seq + 1 && strcmp(rows[i].prev, rows[i - 1].hash) == 0;
    TAP_OK(ok && n > 0 && rows[0].seq == first + 1 && strcmp(rows[0].prev, head) == 0,
           "one chain: no gap, no fork");
    mg_store_audit_list_free(rows, n);
    mg_store_free(st);
}

static void test_reopen_and_second_handle(void)
{
    struct mg_store *a = NULL, *b = NULL;
    struct mg_store_user u = {0};
    struct mg_store_token t = {0};
    uint8_t h[MG_STORE_HASH_LEN];
    char *err = NULL;
    uint64_t s = 0;

    TAP_IS_INT(mg_store_open(be.dsn, &a, &err), 0, "reopen");
    free(err);
    TAP_IS_INT(mg_store_migrate(a, 9000), 0, "migrate on reopen is a no-op");
    TAP_IS_INT(mg_store_user_get(a, "alice@example.com", &u), 0, "user persisted");
    mg_store_user_fini(&u);
    hash_of(h, 2);
    TAP_IS_INT(mg_store_token_get(a, h, &t), 0, "token persisted");
    TAP_IS_INT(t.revoked_at, 3000, "revocation persisted");
    mg_store_token_fini(&t);
    TAP_IS_INT(mg_store_revocation_seq(a, &s), 0, "sequence readable");
    TAP_IS_INT(s, 4, "sequence persisted");
    {
        int64_t aseq = 0;
        char ahash[MG_STORE_AUDIT_HASH_HEX + 1], want[MG_STORE_AUDIT_HASH_HEX + 1];
        audit_hash(want, 6);
        TAP_IS_INT(mg_store_audit_last(a, &aseq, ahash), 0, "audit head after reopen");
        TAP_OK(aseq == 6 && strcmp(ahash, want) == 0, "audit chain persisted");
    }

    TAP_IS_INT(mg_store_open(be.dsn, &b, &err), 0, "second handle on the same database");
    free(err);
    u = (struct mg_store_user){.email = "dave@example.com"};
    TAP_IS_INT(mg_store_user_create(a, &u, 9100, NULL), 0, "first handle writes");
    TAP_IS_INT(mg_store_user_get(b, "dave@example.com", &u), 0, "second handle sees it");
    mg_store_user_fini(&u);
    TAP_IS_INT(mg_store_token_revoke_subject(a, "bot", 9200, NULL), 0, "first handle revokes");
    TAP_IS_INT(mg_store_revocation_seq(b, &s), 0, "second handle reads the sequence");
    TAP_IS_INT(s, 5, "second handle sees the bump");
    hash_of(h, 7);
    TAP_IS_INT(mg_store_token_get(b, h, &t), 0, "second handle reads the token");
    TAP_IS_INT(t.revoked_at, 9200, "and sees it revoked");
    mg_store_token_fini(&t);
    mg_store_free(b);
    mg_store_free(a);
}

/* Another handle (another instance) revokes after delay_ms. */
struct revoker {
    pthread_t thread;
    int delay_ms;
    const char *subject;
    uint64_t done_ms; /* when the revoking call returned */
    int rc;
};

static void *revoke_thread(void *arg)
{
    struct revoker *r = arg;
    struct mg_store *st = open_ok(be.dsn);
    sleep_ms(r->delay_ms);
    r->rc = st ? mg_store_token_revoke_subject(st, r->subject, 10000, NULL) : MG_EIO;
    r->done_ms = mg_now_ms();
    mg_store_free(st);
    return NULL;
}

/* Waits on st while another handle revokes subject's tokens. Returns the
 * wait's status; *latency_ms gets how long after the revocation the wait
 * returned (negative: before the revoking call itself had returned). */
static int wait_for_revocation(struct mg_store *st, const char *subject, uint64_t known,
                               uint64_t *seq, int64_t *latency_ms)
{
    struct revoker r = {.delay_ms = 150, .subject = subject};
    int rc;
    MG_ASSERT(pthread_create(&r.thread, NULL, revoke_thread, &r) == 0);
    rc = mg_store_revocation_wait(st, known, 5000, seq);
    *latency_ms = (int64_t)mg_now_ms();
    pthread_join(r.thread, NULL);
    *latency_ms -= (int64_t)r.done_ms;
    if (r.rc != 0)
        rc = r.rc;
    return rc;
}

static void test_revocation_wait(struct mg_store *st)
{
    struct mg_store_token t = {.kind = MG_STORE_TOKEN_ACCESS, .expires_at = 99999};
    uint64_t known = seq_of(st), seq = 0, t0;
    int64_t latency = 0;

    t0 = mg_now_ms();
    TAP_IS_INT(mg_store_revocation_wait(st, known, 0, &seq), 0, "wait with timeout 0");
    TAP_IS_INT(seq, known, "gives the current value");
    TAP_IS_INT(mg_store_revocation_wait(st, known - 1, 5000, &seq), 0, "wait on a stale value");
    TAP_OK(mg_now_ms() - t0 < 100, "returns at once (%llu ms)",
           (unsigned long long)(mg_now_ms() - t0));
    TAP_IS_INT(seq, known, "with the current value");
    t0 = mg_now_ms();
    TAP_IS_INT(mg_store_revocation_wait(st, known, 300, &seq), 0, "wait with nothing happening");
    t0 = mg_now_ms() - t0;
    TAP_OK(t0 >= 300 && t0 < 800, "returns after the timeout (%llu ms)", (unsigned long long)t0);
    TAP_IS_INT(seq, known, "value unchanged");
    TAP_IS_INT(mg_store_revocation_wait(st, known, -1, &seq), MG_EINVAL,
               "negative timeout refused");

    for (int i = 0; i < 2; i++) {
        hash_of(t.hash, 100 + i);
        t.subject = i == 0 ? "waiter-1" : "waiter-2";
        TAP_IS_INT(mg_store_token_insert(st, &t), 0, "token for %s", t.subject);
        TAP_IS_INT(wait_for_revocation(st, t.subject, known, &seq, &latency), 0,
                   "another handle revokes while this one waits (%d)", i + 1);
        TAP_IS_INT(seq, known + 1, "the wait sees the new value (%d)", i + 1);
        TAP_OK(latency < 200, "woke %lld ms after the revocation (< 200)", (long long)latency);
        known = seq;
    }
}

static void run_suite(void)
{
    struct mg_store *st = NULL, *other = NULL;
    char *err = NULL;

    printf("# --- %s: %s\n", be.name, be.is_pg ? "PostgreSQL" : be.dsn);
    TAP_IS_INT(reset_db(), 0, "fresh database");
    test_concurrent_migrations();
    test_migrations();
    test_newer_schema();
    TAP_IS_INT(mg_store_open(be.dsn, &st, &err), 0, "open for data tests");
    free(err);
    TAP_IS_INT(mg_store_migrate(st, 4000), 0, "migrate after the refusal was undone");
    other = open_ok(be.dsn);
    test_users(st);
    test_clients(st);
    test_tokens(st);
    test_consents(st);
    test_secrets(st, other);
    test_audit(st, other);
    mg_store_free(other);
    mg_store_free(st);
    test_reopen_and_second_handle();
    st = open_ok(be.dsn);
    test_revocation_wait(st);
    mg_store_free(st);
    test_audit_concurrent();
}

/* SQLite only */

static void test_dsn(void)
{
    struct mg_store *st = (struct mg_store *)1;
    char *err = NULL;
    char p[192];
    uint64_t t0;

    t0 = mg_now_ms();
    TAP_IS_INT(mg_store_open("postgresql://postgres@127.0.0.1:1/x", &st, &err), MG_EIO,
               "postgresql:// selects PostgreSQL; connection refused: MG_EIO");
    TAP_OK(err && strstr(err, "postgres: connect") != NULL, "message says why (%s)",
           err ? err : "");
    TAP_OK(st == NULL, "no handle");
    free(err);
    err = NULL;
    TAP_IS_INT(mg_store_open("postgres://postgres@127.0.0.1:1/x", &st, &err), MG_EIO,
               "postgres:// too");
    TAP_OK(mg_now_ms() - t0 < 5000, "refused at once");
    free(err);
    err = NULL;
    TAP_IS_INT(mg_store_open("", &st, &err), MG_EINVAL, "empty DSN refused");
    TAP_OK(err && *err, "empty DSN: message");
    free(err);
    err = NULL;
    TAP_IS_INT(mg_store_open("sqlite:", &st, &err), MG_EINVAL, "sqlite: without a path refused");
    free(err);
    err = NULL;
    snprintf(p, sizeof(p), "%s/no/such/dir/x.db", dir);
    TAP_IS_INT(mg_store_open(p, &st, &err), MG_EIO, "missing directory: MG_EIO");
    TAP_OK(err && strstr(err, "no/such/dir"), "missing directory: message names the path (%s)",
           err ? err : "");
    free(err);
    err = NULL;

    snprintf(p, sizeof(p), "sqlite:%s/prefixed.db", dir);
    TAP_IS_INT(mg_store_open(p, &st, &err), 0, "sqlite:PATH opens");
    TAP_OK(err == NULL, "no error on success");
    TAP_IS_STR(st ? st->ops->name : NULL, "sqlite", "sqlite backend chosen");
    mg_store_free(st);
    snprintf(p, sizeof(p), "%s/prefixed.db", dir);
    TAP_IS_INT(file_mode(p), 0600, "sqlite:PATH created the file at PATH, mode 0600");
    mg_store_free(NULL);
}

static void test_sqlite_files(void)
{
    struct mg_store *st = open_ok(path); /* the -wal file exists while a handle is open */
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    const char *mode = NULL;
    char wal[160];

    TAP_IS_INT(file_mode(path), 0600, "database file mode 0600");
    snprintf(wal, sizeof(wal), "%s-wal", path);
    TAP_IS_INT(file_mode(wal), 0600, "-wal file mode 0600");
    /* PRAGMA journal_mode returns text; check it as text. */
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(stmt, 0);
    TAP_IS_STR(mode, "wal", "journal mode is WAL (persistent in the file)");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    mg_store_free(st);
}

/* A database written by the v1 code, frozen here as it was released. */
static const char v1_schema[] =
    "CREATE TABLE schema_migrations ("
    " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT;"
    "CREATE TABLE users ("
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
    "INSERT INTO revocation_seq (id, seq) VALUES (1, 3);"
    "INSERT INTO schema_migrations VALUES (1, 500);"
    "INSERT INTO users (email, created_at) VALUES ('old@example.com', 400);"
    "INSERT INTO tokens (hash, kind, family_id, client_id, subject, audience, scopes,"
    " expires_at, created_at, revoked_at) VALUES"
    " (x'0000000000000000000000000000000000000000000000000000000000000042', 'refresh', 'F9',"
    " 'c1', 'old', 'https://gw.example/x', 'a b', 9000, 450, 460);";

static void test_upgrade_v1(void)
{
    struct mg_store *st = NULL;
    struct mg_store_token t = {0};
    struct mg_store_consent c = {
        .subject = "old", .client_id = "c1", .audience = "x", .created_at = 1, .expires_at = 2000};
    uint8_t h[MG_STORE_HASH_LEN] = {0}, out[8];
    size_t len = 0;
    int64_t v = -1;

    h[31] = 0x42;
    TAP_IS_INT(reset_db(), 0, "fresh file for the v1 upgrade");
    TAP_IS_INT(raw_exec(v1_schema), 0, "a database as v1 wrote it, with a user and a token");
    st = open_ok(be.dsn);
    TAP_IS_INT(mg_store_schema_version(st, &v), 0, "version of the v1 database");
    TAP_IS_INT(v, 1, "is 1");
    TAP_IS_INT(mg_store_migrate(st, 1700), 0, "migrate v1 -> v3");
    TAP_IS_INT(mg_store_schema_version(st, &v), 0, "version after");
    TAP_IS_INT(v, 3, "is 3");
    TAP_IS_INT(raw_count("SELECT applied_at FROM schema_migrations WHERE version = 1"), 500,
               "v1's record kept");
    TAP_IS_INT(raw_count("SELECT applied_at FROM schema_migrations WHERE version = 2"), 1700,
               "v2 recorded now");
    TAP_IS_INT(mg_store_token_get(st, h, &t), 0, "the v1 token reads back");
    TAP_IS_STR(t.subject, "old", "its subject");
    TAP_IS_STR(t.family_id, "F9", "its family");
    TAP_OK(t.created_at == 450 && t.revoked_at == 460 && t.expires_at == 9000, "its times");
    TAP_IS_STR(t.identity_json, "{}", "new identity column is {}");
    TAP_IS_STR(t.extra_json, "{}", "new extra column is {}");
    mg_store_token_fini(&t);
    TAP_IS_INT(seq_of(st), 3, "revocation sequence kept");
    TAP_IS_INT(mg_store_token_revoke_family(st, "F9", 1800, NULL), 0, "old rows still revocable");
    TAP_IS_INT(mg_store_consent_put(st, &c), 0, "consents table usable");
    TAP_IS_INT(mg_store_secret_get_or_create(st, "k", (const uint8_t *)"12345678", 8, out,
                                             sizeof(out), &len),
               0, "secrets table usable");
    TAP_IS_INT(mg_store_migrate(st, 1900), 0, "migrate again: nothing to do");
    TAP_IS_INT(raw_count("SELECT count(*) FROM schema_migrations"), 3, "three versions recorded");
    TAP_IS_INT(raw_count("SELECT count(*) FROM audit"), 0, "audit table created, empty");
    mg_store_free(st);
}

/* PostgreSQL only */

static int terminate(const char *application_name)
{
    char q[256];
    /* pg_terminate_backend(pid, timeout) waits until the backend is gone. */
    snprintf(q, sizeof(q),
             "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
             "WHERE application_name = '%s'",
             application_name);
    return raw_exec(q);
}

struct killer {
    pthread_t thread;
    int delay_ms;
    int rc;
};

static void *kill_thread(void *arg)
{
    struct killer *k = arg;
    sleep_ms(k->delay_ms);
    k->rc = terminate("mg-test-wait");
    return NULL;
}

static void test_pg_connection_loss(void)
{
    struct mg_store *st = NULL;
    struct mg_store_user u = {0};
    struct mg_store_token t = {
        .kind = MG_STORE_TOKEN_ACCESS, .subject = "waiter-pg", .expires_at = 99999};
    struct killer k = {.delay_ms = 200};
    char dsn[600];
    uint64_t seq = 0, known, t0;
    int64_t latency = 0;

    dsn_with(dsn, sizeof(dsn), "application_name=mg-test-dead");
    st = open_ok(dsn);
    TAP_IS_INT(mg_store_user_get(st, "alice@example.com", &u), 0, "query on a live connection");
    mg_store_user_fini(&u);
    TAP_IS_INT(terminate("mg-test-dead"), 0, "the server kills the connection");
    TAP_IS_INT(mg_store_user_get(st, "alice@example.com", &u), MG_EIO, "next call: MG_EIO");
    TAP_OK(strstr(mg_store_last_error(st), "connection") != NULL, "message says so (%s)",
           mg_store_last_error(st));
    TAP_IS_INT(mg_store_user_get(st, "alice@example.com", &u), 0, "the call after reconnects");
    TAP_IS_STR(u.email, "Alice@Example.com", "and reads");
    mg_store_user_fini(&u);
    mg_store_free(st);

    /* The same inside revocation_wait: the poll sees the socket close. */
    dsn_with(dsn, sizeof(dsn), "application_name=mg-test-wait");
    st = open_ok(dsn);
    hash_of(t.hash, 110);
    TAP_IS_INT(mg_store_token_insert(st, &t), 0, "a token to revoke");
    known = seq_of(st);
    MG_ASSERT(pthread_create(&k.thread, NULL, kill_thread, &k) == 0);
    t0 = mg_now_ms();
    TAP_IS_INT(mg_store_revocation_wait(st, known, 5000, &seq), MG_EIO,
               "connection killed during revocation_wait: MG_EIO");
    t0 = mg_now_ms() - t0;
    pthread_join(k.thread, NULL);
    TAP_IS_INT(k.rc, 0, "killed it");
    TAP_OK(t0 < 2000, "at once, not at the timeout (%llu ms)", (unsigned long long)t0);
    t0 = mg_now_ms();
    TAP_IS_INT(mg_store_revocation_wait(st, known, 0, &seq), MG_EIO,
               "a wait with no time left does not block reconnecting: MG_EIO");
    TAP_OK(mg_now_ms() - t0 < 100, "at once (%llu ms)", (unsigned long long)(mg_now_ms() - t0));
    TAP_IS_INT(wait_for_revocation(st, "waiter-pg", known, &seq, &latency), 0,
               "next wait reconnects and LISTENs again");
    TAP_IS_INT(seq, known + 1, "sees the revocation");
    TAP_OK(latency < 200, "woken by NOTIFY %lld ms after it (< 200)", (long long)latency);
    mg_store_free(st);
}

/* Every revoking transaction notifies, at commit, with the new value. */
static void test_pg_notify_payload(void)
{
    struct mg_store *st = open_ok(be.dsn);
    struct mg_store_token t = {
        .kind = MG_STORE_TOKEN_ACCESS, .subject = "notified", .expires_at = 99999};
    PGconn *listener = pg_connect();
    PGnotify *n = NULL;
    char want[32];
    int rounds = 0;

    PQclear(PQexec(listener, "LISTEN mcpgate_revocation"));
    hash_of(t.hash, 120);
    TAP_IS_INT(mg_store_token_insert(st, &t), 0, "a token to revoke");
    TAP_IS_INT(mg_store_token_revoke(st, t.hash, 11000, NULL), 0, "revoke it");
    snprintf(want, sizeof(want), "%llu", (unsigned long long)seq_of(st));
    /* Bounded: 50 rounds of 20 ms. */
    while (!n && rounds++ < 50) {
        PQconsumeInput(listener);
        n = PQnotifies(listener);
        if (!n)
            sleep_ms(20);
    }
    TAP_IS_STR(n ? n->relname : NULL, "mcpgate_revocation", "a listener is notified");
    TAP_IS_STR(n ? n->extra : NULL, want, "payload is the new sequence value");
    PQfreemem(n);
    TAP_IS_INT(mg_store_token_revoke(st, t.hash, 11001, NULL), 0, "revoke again (no change)");
    sleep_ms(100);
    PQconsumeInput(listener);
    n = PQnotifies(listener);
    TAP_OK(n == NULL, "no change, no notification");
    PQfreemem(n);
    PQfinish(listener);
    mg_store_free(st);
}

static void test_pg_statement_timeout(void)
{
    struct mg_store *st = NULL;
    struct mg_store_user u = {0};
    PGconn *locker = pg_connect();
    PGresult *res = NULL;
    char dsn[600];
    uint64_t t0;

    /* A DSN may set its own statement_timeout; this one is short. */
    dsn_with(dsn, sizeof(dsn), "options=-c%20statement_timeout%3D300");
    st = open_ok(dsn);
    res = PQexec(locker, "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
    TAP_IS_INT(PQresultStatus(res), PGRES_COMMAND_OK, "another session locks users");
    PQclear(res);
    t0 = mg_now_ms();
    TAP_IS_INT(mg_store_user_get(st, "alice@example.com", &u), MG_ETIMEDOUT,
               "blocked query: MG_ETIMEDOUT");
    t0 = mg_now_ms() - t0;
    TAP_OK(t0 >= 250 && t0 < 3000, "after the statement timeout (%llu ms)", (unsigned long long)t0);
    TAP_OK(strstr(mg_store_last_error(st), "timed out") != NULL, "message (%s)",
           mg_store_last_error(st));
    PQclear(PQexec(locker, "ROLLBACK"));
    TAP_IS_INT(mg_store_user_get(st, "alice@example.com", &u), 0, "works once the lock is gone");
    mg_store_user_fini(&u);
    mg_store_free(st);
    PQfinish(locker);
}

static void test_kind_names(void)
{
    enum mg_store_token_kind tk;
    enum mg_store_client_kind ck;
    int ok = 1;
    for (int k = MG_STORE_TOKEN_ACCESS; k <= MG_STORE_TOKEN_SERVICE; k++)
        ok &= mg_store_token_kind_parse(mg_store_token_kind_name(k), &tk) == 0 && (int)tk == k;
    for (int k = MG_STORE_CLIENT_DYNAMIC; k <= MG_STORE_CLIENT_CONFIG; k++)
        ok &= mg_store_client_kind_parse(mg_store_client_kind_name(k), &ck) == 0 && (int)ck == k;
    TAP_OK(ok, "kind names round-trip");
    TAP_IS_INT(mg_store_token_kind_parse("bearer", &tk), MG_EINVAL, "unknown token kind name");
    TAP_IS_INT(mg_store_client_kind_parse(NULL, &ck), MG_EINVAL, "NULL client kind name");
    TAP_OK(mg_store_token_kind_name((enum mg_store_token_kind)9) == NULL, "out-of-range kind");
}

int main(void)
{
    const char *pg_dsn = getenv("MCPGATE_TEST_PG_DSN");
    char cmd[160];

    snprintf(dir, sizeof(dir), "/tmp/mg-store-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store.db", dir);

    test_kind_names();
    test_dsn();

    be.name = "sqlite";
    be.is_pg = false;
    snprintf(be.dsn, sizeof(be.dsn), "%s", path);
    run_suite();
    test_sqlite_files();
    test_upgrade_v1();

    if (pg_dsn && *pg_dsn) {
        be.name = "postgres";
        be.is_pg = true;
        snprintf(be.dsn, sizeof(be.dsn), "%s", pg_dsn);
        run_suite();
        test_pg_notify_payload();
        test_pg_connection_loss();
        test_pg_statement_timeout();
    } else {
        TAP_SKIP("PostgreSQL suite: MCPGATE_TEST_PG_DSN is not set (make unit sets it)");
    }

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}

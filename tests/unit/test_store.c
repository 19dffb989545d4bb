/* Unit tests for the store (src/store) on its SQLite backend, against a
 * temporary database file: DSN parsing, migrations (from empty, idempotent,
 * refusal of a newer schema), every user, client and token operation with
 * its not-found and duplicate cases, revocations touching only the right rows
 * and bumping the revocation sequence, expired-token cleanup, persistence
 * across reopen, file modes, and a second handle seeing committed writes. */
#include "store/store.h"
#include "tap.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char path[128];

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

/* Runs constant SQL on the file behind the store's back (a second process
 * or an older/newer mcpgate). */
static int raw_exec(const char *q)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_exec(db, q, NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return rc;
}

static long long raw_count(const char *q)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, q, -1, &stmt, NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

static void test_dsn(void)
{
    struct mg_store *st = (struct mg_store *)1;
    char *err = NULL;
    char p[192];

    TAP_IS_INT(mg_store_open("postgres://u@h/db", &st, &err), MG_EINVAL, "postgres DSN refused");
    TAP_IS_STR(err, "PostgreSQL backend not built yet", "postgres: clear message");
    TAP_OK(st == NULL, "postgres: no handle");
    free(err);
    err = NULL;
    TAP_IS_INT(mg_store_open("postgresql://h/db", &st, &err), MG_EINVAL, "postgresql:// refused");
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

static void test_migrations(void)
{
    struct mg_store *st = NULL;
    char *err = NULL;
    int64_t v = -1;

    TAP_IS_INT(mg_store_open(path, &st, &err), 0, "open plain path");
    free(err);
    TAP_IS_INT(file_mode(path), 0600, "database file mode 0600");
    TAP_IS_INT(mg_store_schema_version(st, &v), 0, "schema version of an empty database");
    TAP_IS_INT(v, 0, "empty database is version 0");
    TAP_IS_INT(mg_store_migrate(st, 1000), 0, "migrate from empty");
    TAP_IS_INT(mg_store_schema_version(st, &v), 0, "schema version after migrate");
    TAP_IS_INT(v, mg_store_schema_latest(), "at the latest version");
    TAP_IS_INT(mg_store_migrate(st, 2000), 0, "migrate again (idempotent)");
    TAP_IS_INT(raw_count("SELECT count(*) FROM schema_migrations"), mg_store_schema_latest(),
               "one schema_migrations row per version");
    TAP_IS_INT(raw_count("SELECT applied_at FROM schema_migrations WHERE version = 1"), 1000,
               "applied_at is the caller's time of the first run");
    {
        /* PRAGMA journal_mode returns text; check it as text. */
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        const char *mode = NULL;
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
        if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
            mode = (const char *)sqlite3_column_text(stmt, 0);
        TAP_IS_STR(mode, "wal", "journal mode is WAL (persistent in the file)");
        sqlite3_finalize(stmt);
        sqlite3_close(db);
    }
    {
        char wal[160];
        snprintf(wal, sizeof(wal), "%s-wal", path);
        TAP_IS_INT(file_mode(wal), 0600, "-wal file mode 0600");
    }
    TAP_OK(strcmp(mg_store_last_error(st), "") == 0, "no error after success");
    mg_store_free(st);
}

static void test_newer_schema(void)
{
    struct mg_store *st = NULL;
    char *err = NULL;
    int64_t v = 0;

    TAP_IS_INT(raw_exec("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 5)"),
               SQLITE_OK, "record a future version by hand");
    TAP_IS_INT(mg_store_open(path, &st, &err), 0, "open the newer database");
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
    TAP_IS_INT(raw_exec("DELETE FROM schema_migrations WHERE version = 99"), SQLITE_OK,
               "undo the future version");
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
    TAP_IS_INT(n, 2, "two users");
    TAP_IS_STR(n == 2 ? list[0].email : NULL, "Alice@Example.com", "ordered by email (1)");
    TAP_IS_STR(n == 2 ? list[1].email : NULL, "bob@example.com", "ordered by email (2)");
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
    mg_store_token_fini(&t);
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
        TAP_OK(list[0].has_hash && list[0].hash[0] == 1, "access token listed with its hash");
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

static void test_reopen_and_second_handle(void)
{
    struct mg_store *a = NULL, *b = NULL;
    struct mg_store_user u = {0};
    struct mg_store_token t = {0};
    uint8_t h[MG_STORE_HASH_LEN];
    char *err = NULL;
    uint64_t s = 0;

    TAP_IS_INT(mg_store_open(path, &a, &err), 0, "reopen");
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

    TAP_IS_INT(mg_store_open(path, &b, &err), 0, "second handle on the same file");
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
    struct mg_store *st = NULL;
    char *err = NULL;
    char cmd[160];

    snprintf(dir, sizeof(dir), "/tmp/mg-store-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store.db", dir);

    test_dsn();
    test_migrations();
    test_newer_schema();
    TAP_IS_INT(mg_store_open(path, &st, &err), 0, "open for data tests");
    free(err);
    TAP_IS_INT(mg_store_migrate(st, 4000), 0, "migrate after the refusal was undone");
    test_users(st);
    test_clients(st);
    test_tokens(st);
    mg_store_free(st);
    test_reopen_and_second_handle();
    test_kind_names();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}

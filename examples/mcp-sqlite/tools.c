/* The MCP dispatcher and the SQLite tools behind it (see tools.h). Everything
 * here is synchronous and transport-free: a JSON-RPC message goes in, a reply
 * comes out. All input is untrusted: every size is bounded, every SQL text
 * runs through one prepared statement with bound parameters, and the
 * connections are hardened so that a "read-only" statement cannot attach
 * files, open transactions or run forever. */
#include "tools.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

#define SERVER_NAME     "mcp-sqlite"
#define SERVER_VERSION  "0.1.0"
#define DEFAULT_VERSION "2025-06-18"
/* MCP 2025-03-26 is the only revision with JSON-RPC batching; 2025-06-18
 * removed it again. */
#define BATCH_VERSION "2025-03-26"

#define ROW_CAP       1000
#define RESULT_CAP    (2u << 20)  /* bytes of cell data in one query result */
#define VALUE_CAP     (1 << 20)   /* SQLITE_LIMIT_LENGTH: one string/blob/row */
#define SQL_CAP       (64 << 10)  /* bytes of SQL text in one tool call */
#define PARAMS_CAP    100         /* bound parameters in one tool call */
#define IDENT_CAP     128         /* bytes in a table name */
#define PROGRESS_OPS  1000        /* VM instructions between deadline checks */
#define BUSY_MS       1000        /* wait for another process's lock */
#define HEAP_LIMIT    (256 << 20) /* SQLite's own memory */
#define LOG_LINE_CAP  4096
#define LOG_FIELD_CAP 256

/* Wall clock one statement may run; the unit test shortens it. */
#ifndef STMT_TIME_MS
#define STMT_TIME_MS 5000
#endif

struct mg_msq_server {
    sqlite3 *rw; /* NULL with --readonly */
    sqlite3 *ro; /* SQLITE_OPEN_READONLY + query_only */
    char *db_path;
    bool readonly;
    int log_fd;
    json_t *tools;        /* the tools/list result, built once */
    uint64_t deadline_ms; /* for the statement running now */
};

static const char *const supported_versions[] = {"2024-11-05", "2025-03-26", "2025-06-18",
                                                 "2025-11-25"};

/* The tools/list result. Kept as JSON text so the schemas read like the
 * JSON Schema they are; parsed once at start-up. */
static const char tools_json[] =
    "{\"tools\":["
    "{\"name\":\"list_tables\",\"title\":\"List tables\","
    "\"description\":\"Lists the tables of the database.\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false},"
    "\"outputSchema\":{\"type\":\"object\",\"properties\":{\"tables\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\"}}},\"required\":[\"tables\"]},"
    "\"annotations\":{\"title\":\"List tables\",\"readOnlyHint\":true,"
    "\"destructiveHint\":false,\"idempotentHint\":true,\"openWorldHint\":false}},"

    "{\"name\":\"describe_table\",\"title\":\"Describe a table\","
    "\"description\":\"Lists the columns of a table: name, declared type, NOT NULL and "
    "primary-key position.\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"table\":{\"type\":\"string\","
    "\"minLength\":1,\"maxLength\":128,\"description\":\"Table name\"}},"
    "\"required\":[\"table\"],\"additionalProperties\":false},"
    "\"outputSchema\":{\"type\":\"object\",\"properties\":{\"table\":{\"type\":\"string\"},"
    "\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"type\":{\"type\":\"string\"},"
    "\"notnull\":{\"type\":\"boolean\"},\"pk\":{\"type\":\"integer\"}},"
    "\"required\":[\"name\",\"type\",\"notnull\",\"pk\"]}}},"
    "\"required\":[\"table\",\"columns\"]},"
    "\"annotations\":{\"title\":\"Describe a table\",\"readOnlyHint\":true,"
    "\"destructiveHint\":false,\"idempotentHint\":true,\"openWorldHint\":false}},"

    "{\"name\":\"query\",\"title\":\"Run a read-only query\","
    "\"description\":\"Runs one read-only SQL statement (SELECT, read-only PRAGMA ...) with "
    "optional positional parameters (?). At most 1000 rows are returned; `truncated` says "
    "whether more were cut off.\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{"
    "\"sql\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":65536,"
    "\"description\":\"One SQL statement\"},"
    "\"params\":{\"type\":\"array\",\"maxItems\":100,"
    "\"items\":{\"type\":[\"string\",\"number\",\"boolean\",\"null\"]},"
    "\"description\":\"Values for the statement's parameters, in order\"}},"
    "\"required\":[\"sql\"],\"additionalProperties\":false},"
    "\"outputSchema\":{\"type\":\"object\",\"properties\":{"
    "\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"rows\":{\"type\":\"array\",\"items\":{\"type\":\"array\"}},"
    "\"row_count\":{\"type\":\"integer\"},\"truncated\":{\"type\":\"boolean\"}},"
    "\"required\":[\"columns\",\"rows\",\"row_count\",\"truncated\"]},"
    "\"annotations\":{\"title\":\"Run a read-only query\",\"readOnlyHint\":true,"
    "\"destructiveHint\":false,\"idempotentHint\":true,\"openWorldHint\":false}},"

    "{\"name\":\"execute\",\"title\":\"Run a write statement\","
    "\"description\":\"Runs one SQL statement that changes the database (INSERT, UPDATE, "
    "DELETE, CREATE ...) and returns the number of changed rows and the last inserted "
    "rowid.\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{"
    "\"sql\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":65536,"
    "\"description\":\"One SQL statement\"},"
    "\"params\":{\"type\":\"array\",\"maxItems\":100,"
    "\"items\":{\"type\":[\"string\",\"number\",\"boolean\",\"null\"]},"
    "\"description\":\"Values for the statement's parameters, in order\"}},"
    "\"required\":[\"sql\"],\"additionalProperties\":false},"
    "\"outputSchema\":{\"type\":\"object\",\"properties\":{"
    "\"changes\":{\"type\":\"integer\"},\"last_insert_rowid\":{\"type\":\"integer\"}},"
    "\"required\":[\"changes\",\"last_insert_rowid\"]},"
    "\"annotations\":{\"title\":\"Run a write statement\",\"readOnlyHint\":false,"
    "\"destructiveHint\":true,\"idempotentHint\":false,\"openWorldHint\":false}},"

    "{\"name\":\"slow_count\",\"title\":\"Count slowly\","
    "\"description\":\"Counts to `steps`, waiting `interval_ms` between steps and reporting "
    "progress when the request carries a progress token. For testing streaming.\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{"
    "\"steps\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":50,\"default\":5},"
    "\"interval_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":5000,\"default\":1000}},"
    "\"additionalProperties\":false},"
    "\"annotations\":{\"title\":\"Count slowly\",\"readOnlyHint\":true,"
    "\"destructiveHint\":false,\"idempotentHint\":true,\"openWorldHint\":false}}"
    "]}";

/* Created only when customers is missing, so restarting with --init-demo
 * keeps whatever the previous run changed. Money is in integer cents so the
 * JSON never shows binary-float noise. */
static const char demo_sql[] =
    "CREATE TABLE customers ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  email TEXT NOT NULL UNIQUE,"
    "  country TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE orders ("
    "  id INTEGER PRIMARY KEY,"
    "  customer_id INTEGER NOT NULL REFERENCES customers(id),"
    "  product TEXT NOT NULL,"
    "  quantity INTEGER NOT NULL CHECK (quantity > 0),"
    "  total_cents INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('pending','shipped','delivered','cancelled')),"
    "  created_at TEXT NOT NULL);"
    "CREATE INDEX orders_customer ON orders(customer_id);"
    "INSERT INTO customers VALUES"
    "  (1,'Ada Lovelace','ada@example.com','GB','2024-01-05'),"
    "  (2,'Grace Hopper','grace@example.com','US','2024-02-11'),"
    "  (3,'Alan Turing','alan@example.com','GB','2024-03-02'),"
    "  (4,'Edsger Dijkstra','edsger@example.com','NL','2024-03-18'),"
    "  (5,'Barbara Liskov','barbara@example.com','US','2024-04-23'),"
    "  (6,'Margaret Hamilton','margaret@example.com','US','2024-05-30');"
    "INSERT INTO orders VALUES"
    "  (1,1,'Analytical Engine manual',1,4200,'delivered','2024-02-01'),"
    "  (2,2,'COBOL compiler',2,19900,'shipped','2024-02-20'),"
    "  (3,2,'Moth (framed)',1,2500,'delivered','2024-03-01'),"
    "  (4,3,'Enigma rotor set',3,8700,'pending','2024-03-10'),"
    "  (5,4,'Semaphore kit',5,1500,'shipped','2024-04-02'),"
    "  (6,5,'CLU textbook',1,5600,'delivered','2024-05-12'),"
    "  (7,6,'Apollo guidance listing',1,12000,'pending','2024-06-01'),"
    "  (8,1,'Bernoulli notes',2,3000,'cancelled','2024-06-15');";

/* ---- JSON helpers ------------------------------------------------------ */

/* A JSON string for bytes that may not be UTF-8 (SQLite TEXT can hold
 * anything): invalid bytes become U+FFFD, because jansson refuses to build
 * or dump invalid strings. */
static json_t *text_value(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (v != NULL)
        return v;
    struct mg_buf b;
    mg_buf_init(&b, n * 3 + 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = mg_utf8_seq_len(u + i, n - i);
        if (l == 0) {
            MG_ASSERT(mg_buf_append(&b, "\xef\xbf\xbd", 3) == 0);
            i++;
        } else {
            MG_ASSERT(mg_buf_append(&b, s + i, l) == 0);
            i += l;
        }
    }
    /* NUL bytes are valid UTF-8 and json_stringn accepts them; if it still
     * fails, memory is gone. */
    v = json_stringn(b.data ? b.data : "", b.len);
    mg_buf_fini(&b);
    MG_ASSERT(v != NULL);
    return v;
}

static json_t *text_valuef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *text_valuef(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    return text_value(msg, MG_MIN((size_t)n, sizeof msg - 1));
}

/* jansson's constructors only fail when memory does; the project's policy
 * is to stop then (common.h). */
static json_t *must(json_t *v)
{
    MG_ASSERT(v != NULL);
    return v;
}

json_t *mg_msq_error(const json_t *id, int code, const char *message)
{
    json_t *err = must(json_object());
    json_object_set_new(err, "code", must(json_integer(code)));
    json_object_set_new(err, "message", text_value(message, strlen(message)));
    json_t *r = must(json_object());
    json_object_set_new(r, "jsonrpc", must(json_string("2.0")));
    json_object_set_new(r, "id", id ? json_copy((json_t *)id) : json_null());
    json_object_set_new(r, "error", err);
    return r;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return mg_buf_append(data, buf, size) == 0 ? 0 : -1;
}

int mg_msq_dump(const json_t *v, struct mg_buf *b)
{
    return json_dump_callback(v, dump_cb, b, JSON_COMPACT) == 0 ? MG_OK : MG_ELIMIT;
}

/* Takes ownership of result. */
static json_t *make_result(const json_t *id, json_t *result)
{
    json_t *r = must(json_object());
    json_object_set_new(r, "jsonrpc", must(json_string("2.0")));
    json_object_set_new(r, "id", json_copy((json_t *)id));
    json_object_set_new(r, "result", result);
    return r;
}

/* A tool result with one text block (MCP "CallToolResult"). */
static json_t *tool_text(json_t *text, bool is_error)
{
    json_t *block = must(json_object());
    json_object_set_new(block, "type", must(json_string("text")));
    json_object_set_new(block, "text", text);
    json_t *content = must(json_array());
    json_array_append_new(content, block);
    json_t *r = must(json_object());
    json_object_set_new(r, "content", content);
    json_object_set_new(r, "isError", json_boolean(is_error));
    return r;
}

/* Tool failures are results with isError (MCP "Error Handling": the model
 * sees them and can correct itself), not JSON-RPC errors. */
static json_t *tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *tool_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    return tool_text(text_value(msg, MG_MIN((size_t)n, sizeof msg - 1)), true);
}

/* structuredContent plus the same JSON as text, which the spec asks for so
 * that clients predating structured output still see the data (MCP
 * 2025-06-18 "Structured Content"). Takes ownership of obj. */
static json_t *tool_structured(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    MG_ASSERT(s != NULL);
    json_t *r = tool_text(text_value(s, strlen(s)), false);
    free(s);
    json_object_set_new(r, "structuredContent", obj);
    return r;
}

/* ---- logging ----------------------------------------------------------- */

/* Appends at most LOG_FIELD_CAP bytes of a JSON string, cut on a character
 * boundary so the log stays valid UTF-8. */
static int log_str(struct mg_buf *b, const json_t *s)
{
    const char *p = json_string_value(s);
    size_t n = json_string_length(s);
    if (n > LOG_FIELD_CAP) {
        n = LOG_FIELD_CAP;
        while (n > 0 && ((unsigned char)p[n] & 0xc0) == 0x80)
            n--;
    }
    return mg_buf_append_json_str(b, p, n);
}

/* One JSON line per received message, so tests can prove what reached the
 * upstream. Written with one write(2) on an O_APPEND fd: lines from several
 * processes never interleave. */
static void log_message(struct mg_msq_server *srv, const json_t *msg, const char *note)
{
    if (srv->log_fd < 0)
        return;
    struct mg_buf b;
    mg_buf_init(&b, LOG_LINE_CAP);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int rc = mg_buf_appendf(&b, "{\"ts_ms\":%lld,\"method\":", ms);
    const json_t *method = json_is_object(msg) ? json_object_get(msg, "method") : NULL;
    const json_t *id = json_is_object(msg) ? json_object_get(msg, "id") : NULL;
    if (rc == 0 && json_is_string(method))
        rc = log_str(&b, method);
    else if (rc == 0)
        rc = mg_buf_appends(&b, "null");
    if (rc == 0)
        rc = mg_buf_appends(&b, ",\"id\":");
    if (rc == 0 && json_is_string(id))
        rc = log_str(&b, id);
    else if (rc == 0 && json_is_integer(id))
        rc = mg_buf_appendf(&b, "%lld", (long long)json_integer_value(id));
    else if (rc == 0)
        rc = mg_buf_appends(&b, "null");
    if (rc == 0 && json_is_string(method) && strcmp(json_string_value(method), "tools/call") == 0) {
        const json_t *name = json_object_get(json_object_get(msg, "params"), "name");
        if (json_is_string(name)) {
            rc = mg_buf_appends(&b, ",\"tool\":");
            if (rc == 0)
                rc = log_str(&b, name);
        }
    }
    if (rc == 0 && note != NULL)
        rc = mg_buf_appendf(&b, ",\"note\":\"%s\"", note);
    if (rc == 0)
        rc = mg_buf_appends(&b, "}\n");
    if (rc == 0) {
        ssize_t w;
        do
            w = write(srv->log_fd, b.data, b.len);
        while (w < 0 && errno == EINTR);
        if (w < 0 || (size_t)w != b.len)
            fprintf(stderr, "mcp-sqlite: log write failed: %s\n", strerror(errno));
    }
    mg_buf_fini(&b);
}

/* ---- database ---------------------------------------------------------- */

/* The statement-level guard for both connections (sqlite3_set_authorizer).
 * sqlite3_stmt_readonly() says yes to ATTACH, BEGIN and SAVEPOINT, so a
 * "read-only" query could otherwise open files (ATTACH, VACUUM INTO) or park
 * a read transaction that blocks every later write. */
static int authorize(void *ud, int action, const char *a1, const char *a2, const char *db,
                     const char *trigger)
{
    static const char *const info_pragmas[] = {"table_info", "table_xinfo", "index_list",
                                               "index_info", "index_xinfo", "foreign_key_list"};
    MG_UNUSED(ud);
    MG_UNUSED(a2);
    MG_UNUSED(db);
    MG_UNUSED(trigger);
    switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT: return SQLITE_DENY;
    case SQLITE_PRAGMA:
        /* Pragmas set connection state; only the schema-introspection ones,
         * whose argument names an object rather than a value, are let in. */
        for (size_t i = 0; i < MG_ARRAY_LEN(info_pragmas); i++)
            if (a1 != NULL && sqlite3_stricmp(a1, info_pragmas[i]) == 0)
                return SQLITE_OK;
        return SQLITE_DENY;
    default: return SQLITE_OK;
    }
}

static int on_progress(void *ud)
{
    const struct mg_msq_server *srv = ud;
    return mg_now_ms() > srv->deadline_ms;
}

static void set_deadline(struct mg_msq_server *srv)
{
    srv->deadline_ms = mg_now_ms() + STMT_TIME_MS;
}

static int open_db(struct mg_msq_server *srv, const char *path, int flags, sqlite3 **out, char *err,
                   size_t err_cap)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, err_cap, "cannot open %s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return MG_EIO;
    }
    /* Defensive mode forbids writable_schema and other ways of corrupting
     * the file from SQL; untrusted schema objects may not call functions
     * with side effects. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, VALUE_CAP);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, SQL_CAP);
    sqlite3_busy_timeout(db, BUSY_MS);
    sqlite3_progress_handler(db, PROGRESS_OPS, on_progress, srv);
    *out = db;
    return MG_OK;
}

static int init_demo(struct mg_msq_server *srv, sqlite3 *db, char *err, size_t err_cap)
{
    sqlite3_stmt *st = NULL;
    char *msg = NULL;
    int status = MG_OK;
    set_deadline(srv);
    int rc = sqlite3_prepare_v2(
        db, "SELECT 1 FROM sqlite_schema WHERE type='table' AND name='customers'", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        goto out; /* already there: keep the data */
    if (rc != SQLITE_DONE) {
        snprintf(err, err_cap, "demo schema check: %s", sqlite3_errmsg(db));
        status = MG_EIO;
        goto out;
    }
    /* One transaction: a crash never leaves half a demo, and one fsync. */
    char script[sizeof demo_sql + 32];
    snprintf(script, sizeof script, "BEGIN;%sCOMMIT;", demo_sql);
    if (sqlite3_exec(db, script, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_cap, "demo schema: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        status = MG_EIO;
    }
out:
    sqlite3_free(msg);
    sqlite3_finalize(st);
    return status;
}

int mg_msq_server_new(const struct mg_msq_options *opt, struct mg_msq_server **out, char *err,
                      size_t err_cap)
{
    struct mg_msq_server *srv = mg_xcalloc(1, sizeof *srv);
    int status = MG_OK;
    json_error_t jerr;
    srv->readonly = opt->readonly;
    srv->log_fd = opt->log_fd;
    srv->db_path = mg_xstrdup(opt->db_path);
    set_deadline(srv);
    srv->tools = json_loads(tools_json, JSON_REJECT_DUPLICATES, &jerr);
    MG_ASSERT(srv->tools != NULL);
    sqlite3_hard_heap_limit64(HEAP_LIMIT);

    /* The read-write connection first: it creates a missing file, which the
     * read-only one cannot. With --readonly it exists only for --init-demo. */
    if (!opt->readonly || opt->init_demo) {
        status = open_db(srv, opt->db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &srv->rw,
                         err, err_cap);
        if (status < 0)
            goto fail;
        if (opt->init_demo && (status = init_demo(srv, srv->rw, err, err_cap)) < 0)
            goto fail;
        if (opt->readonly) {
            sqlite3_close(srv->rw);
            srv->rw = NULL;
        } else {
            /* WAL lets reads run beside a write and cuts a read transaction
             * from nine system calls to three (it is the benchmark
             * upstream). A database that cannot switch (in memory, or on a
             * file system without shared memory) just keeps its mode. */
            sqlite3_exec(srv->rw, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL,
                         NULL);
            sqlite3_set_authorizer(srv->rw, authorize, NULL);
        }
    }
    status = open_db(srv, opt->db_path, SQLITE_OPEN_READONLY, &srv->ro, err, err_cap);
    if (status < 0)
        goto fail;
    /* query_only refuses writes even where the open flag does not reach,
     * e.g. a shared in-memory database. */
    if (sqlite3_exec(srv->ro, "PRAGMA query_only=1", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, err_cap, "query_only: %s", sqlite3_errmsg(srv->ro));
        status = MG_EIO;
        goto fail;
    }
    sqlite3_set_authorizer(srv->ro, authorize, NULL);
    *out = srv;
    return MG_OK;
fail:
    mg_msq_server_free(srv);
    *out = NULL;
    return status;
}

void mg_msq_server_free(struct mg_msq_server *srv)
{
    if (srv == NULL)
        return;
    bool tidy = srv->rw != NULL;
    sqlite3_close(srv->ro);
    sqlite3_close(srv->rw);
    /* A database once opened by a read-only connection keeps its -wal and
     * -shm files when the process's connections close. A last, lone
     * read-write connection checkpoints and removes them, so a stopped
     * server leaves just the database file. */
    if (tidy) {
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(srv->db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL) ==
            SQLITE_OK)
            sqlite3_exec(db, "SELECT 1 FROM sqlite_schema LIMIT 1", NULL, NULL, NULL);
        sqlite3_close(db);
    }
    free(srv->db_path);
    json_decref(srv->tools);
    free(srv);
}

bool mg_msq_is_supported_version(const char *v)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(supported_versions); i++)
        if (strcmp(v, supported_versions[i]) == 0)
            return true;
    return false;
}

/* ---- tools ------------------------------------------------------------- */

/* What a tool asks of the dispatcher besides its result. */
struct call {
    struct mg_msq_server *srv;
    const json_t *id;
    const json_t *params;
    struct mg_msq_out *out;
    size_t slot;
    bool deferred;
};

/* Unknown arguments are refused, as the schemas' additionalProperties:false
 * promise: a misspelt "param" must not silently run without parameters. */
static json_t *check_args(const json_t *args, const char *const *allowed, size_t n_allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)args, key, val)
    {
        bool ok = false;
        for (size_t i = 0; i < n_allowed && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return tool_error("unknown argument \"%.64s\"", key);
    }
    return NULL;
}

static json_t *sql_error(sqlite3 *db, const char *what)
{
    if (sqlite3_errcode(db) == SQLITE_INTERRUPT)
        return tool_error("%s: statement exceeded the %d ms time limit", what, STMT_TIME_MS);
    return tool_error("%s: %s", what, sqlite3_errmsg(db));
}

/* Prepares exactly one statement. The rest of the text is prepared too: if
 * SQLite finds another statement there (not just spaces, comments or
 * semicolons) the call is refused, so "SELECT 1; DROP TABLE t" cannot hide
 * a second statement behind a read-only first one. */
static json_t *prepare_one(struct mg_msq_server *srv, sqlite3 *db, const json_t *sql,
                           sqlite3_stmt **out)
{
    const char *text = json_string_value(sql);
    size_t len = json_string_length(sql);
    const char *tail = NULL;
    sqlite3_stmt *st = NULL, *extra = NULL;
    *out = NULL;
    set_deadline(srv);
    if (sqlite3_prepare_v3(db, text, (int)len, 0, &st, &tail) != SQLITE_OK)
        return sql_error(db, "SQL error");
    if (st == NULL)
        return tool_error("the SQL text holds no statement");
    size_t rest = len - (size_t)(tail - text);
    int rc = sqlite3_prepare_v3(db, tail, (int)rest, 0, &extra, NULL);
    if (rc != SQLITE_OK || extra != NULL) {
        sqlite3_finalize(extra);
        sqlite3_finalize(st);
        return tool_error("only one SQL statement is allowed per call");
    }
    *out = st;
    return NULL;
}

static json_t *bind_params(sqlite3_stmt *st, const json_t *params)
{
    size_t n = params ? json_array_size(params) : 0;
    int want = sqlite3_bind_parameter_count(st);
    if ((size_t)want != n)
        return tool_error("the statement has %d parameter(s) but %zu value(s) were given", want, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(params, i);
        int idx = (int)i + 1, rc;
        switch (json_typeof(v)) {
        case JSON_NULL: rc = sqlite3_bind_null(st, idx); break;
        case JSON_TRUE: rc = sqlite3_bind_int(st, idx, 1); break;
        case JSON_FALSE: rc = sqlite3_bind_int(st, idx, 0); break;
        case JSON_INTEGER: rc = sqlite3_bind_int64(st, idx, json_integer_value(v)); break;
        case JSON_REAL: rc = sqlite3_bind_double(st, idx, json_real_value(v)); break;
        case JSON_STRING:
            /* params outlives the statement, so SQLite need not copy. */
            rc = sqlite3_bind_text64(st, idx, json_string_value(v), json_string_length(v),
                                     SQLITE_STATIC, SQLITE_UTF8);
            break;
        default: return tool_error("params[%zu] must be a string, number, boolean or null", i);
        }
        if (rc != SQLITE_OK)
            return tool_error("params[%zu]: %s", i, sqlite3_errstr(rc));
    }
    return NULL;
}

/* Optional "params" argument: absent, or an array of at most PARAMS_CAP. */
static json_t *get_params(const json_t *args, const json_t **out)
{
    const json_t *p = json_object_get(args, "params");
    *out = NULL;
    if (p == NULL || json_is_null(p))
        return NULL;
    if (!json_is_array(p))
        return tool_error("\"params\" must be an array");
    if (json_array_size(p) > PARAMS_CAP)
        return tool_error("at most %d params are allowed", PARAMS_CAP);
    *out = p;
    return NULL;
}

static json_t *get_sql(const json_t *args, const json_t **out)
{
    const json_t *sql = json_object_get(args, "sql");
    *out = NULL;
    if (!json_is_string(sql) || json_string_length(sql) == 0)
        return tool_error("\"sql\" is required and must be a non-empty string");
    if (json_string_length(sql) > SQL_CAP)
        return tool_error("\"sql\" is longer than %d bytes", SQL_CAP);
    *out = sql;
    return NULL;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* BLOBs have no JSON type: they travel as {"base64": "..."} (RFC 4648 §4). */
static json_t *blob_value(const unsigned char *p, size_t n)
{
    size_t out_len = (n + 2) / 3 * 4;
    char *s = mg_xmalloc(out_len + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        s[o++] = b64_alphabet[(v >> 18) & 63];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        s[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    json_t *obj = must(json_object());
    json_object_set_new(obj, "base64", must(json_stringn(s, o)));
    free(s);
    return obj;
}

static json_t *column_value(sqlite3_stmt *st, int i, size_t *bytes)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: *bytes += 20; return must(json_integer(sqlite3_column_int64(st, i)));
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        *bytes += 24;
        /* JSON has no Infinity (RFC 8259 §6); SQLite returns NaN as NULL. */
        return isfinite(d) ? must(json_real(d)) : json_null();
    }
    case SQLITE_TEXT: {
        const char *p = (const char *)sqlite3_column_text(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        *bytes += n + 2;
        return text_value(p ? p : "", n);
    }
    case SQLITE_BLOB: {
        const unsigned char *p = sqlite3_column_blob(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        *bytes += n / 3 * 4 + 16;
        return blob_value(p, p ? n : 0);
    }
    default: *bytes += 4; return json_null();
    }
}

static json_t *tool_list_tables(struct call *c, const json_t *args)
{
    json_t *err = check_args(args, NULL, 0);
    if (err != NULL)
        return err;
    sqlite3 *db = c->srv->ro;
    sqlite3_stmt *st = NULL;
    set_deadline(c->srv);
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_schema WHERE type='table' "
                           "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_error(db, "list_tables");
    json_t *tables = must(json_array());
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(tables, text_value((const char *)sqlite3_column_text(st, 0),
                                                 (size_t)sqlite3_column_bytes(st, 0)));
    if (rc != SQLITE_DONE) {
        err = sql_error(db, "list_tables");
        sqlite3_finalize(st);
        json_decref(tables);
        return err;
    }
    sqlite3_finalize(st);
    json_t *obj = must(json_object());
    json_object_set_new(obj, "tables", tables);
    return tool_structured(obj);
}

static json_t *tool_describe_table(struct call *c, const json_t *args)
{
    static const char *const allowed[] = {"table"};
    json_t *err = check_args(args, allowed, MG_ARRAY_LEN(allowed));
    if (err != NULL)
        return err;
    const json_t *table = json_object_get(args, "table");
    if (!json_is_string(table) || json_string_length(table) == 0)
        return tool_error("\"table\" is required and must be a non-empty string");
    if (json_string_length(table) > IDENT_CAP)
        return tool_error("\"table\" is longer than %d bytes", IDENT_CAP);
    sqlite3 *db = c->srv->ro;
    sqlite3_stmt *st = NULL;
    set_deadline(c->srv);
    /* The table-valued form of PRAGMA table_info takes the name as a bound
     * parameter, so no identifier is ever spliced into SQL text. */
    if (sqlite3_prepare_v2(db,
                           "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) "
                           "ORDER BY cid",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_error(db, "describe_table");
    sqlite3_bind_text64(st, 1, json_string_value(table), json_string_length(table), SQLITE_STATIC,
                        SQLITE_UTF8);
    json_t *cols = must(json_array());
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *col = must(json_object());
        json_object_set_new(col, "name",
                            text_value((const char *)sqlite3_column_text(st, 0),
                                       (size_t)sqlite3_column_bytes(st, 0)));
        json_object_set_new(col, "type",
                            text_value((const char *)sqlite3_column_text(st, 1),
                                       (size_t)sqlite3_column_bytes(st, 1)));
        json_object_set_new(col, "notnull", json_boolean(sqlite3_column_int(st, 2) != 0));
        json_object_set_new(col, "pk", must(json_integer(sqlite3_column_int(st, 3))));
        json_array_append_new(cols, col);
    }
    if (rc != SQLITE_DONE) {
        err = sql_error(db, "describe_table");
    } else if (json_array_size(cols) == 0) {
        json_t *name = text_value(json_string_value(table), json_string_length(table));
        err = tool_error("no such table: %s", json_string_value(name));
        json_decref(name);
    }
    sqlite3_finalize(st);
    if (err != NULL) {
        json_decref(cols);
        return err;
    }
    json_t *obj = must(json_object());
    json_object_set_new(obj, "table", json_copy((json_t *)table));
    json_object_set_new(obj, "columns", cols);
    return tool_structured(obj);
}

static json_t *tool_query(struct call *c, const json_t *args)
{
    static const char *const allowed[] = {"sql", "params"};
    const json_t *sql = NULL, *params = NULL;
    sqlite3 *db = c->srv->ro;
    sqlite3_stmt *st = NULL;
    json_t *err = check_args(args, allowed, MG_ARRAY_LEN(allowed));
    if (err == NULL)
        err = get_sql(args, &sql);
    if (err == NULL)
        err = get_params(args, &params);
    if (err == NULL)
        err = prepare_one(c->srv, db, sql, &st);
    if (err != NULL)
        return err;
    json_t *columns = NULL, *rows = NULL;
    /* The read-only connection would refuse a write anyway; checking first
     * gives a clear message instead of "attempt to write a readonly
     * database" halfway through. */
    if (!sqlite3_stmt_readonly(st)) {
        err = tool_error("query runs read-only statements only; use the execute tool to "
                         "change data");
        goto out;
    }
    if ((err = bind_params(st, params)) != NULL)
        goto out;
    int n_cols = sqlite3_column_count(st);
    columns = must(json_array());
    for (int i = 0; i < n_cols; i++) {
        const char *name = sqlite3_column_name(st, i);
        json_array_append_new(columns, text_value(name ? name : "", name ? strlen(name) : 0));
    }
    rows = must(json_array());
    size_t bytes = 0;
    bool truncated = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_size(rows) == ROW_CAP || bytes > RESULT_CAP) {
            truncated = true;
            break;
        }
        json_t *row = must(json_array());
        for (int i = 0; i < n_cols && bytes <= RESULT_CAP; i++)
            json_array_append_new(row, column_value(st, i, &bytes));
        if (bytes > RESULT_CAP) {
            /* A partial row would misalign with the columns. */
            json_decref(row);
            truncated = true;
            break;
        }
        json_array_append_new(rows, row);
    }
    if (!truncated && rc != SQLITE_DONE) {
        err = sql_error(db, "SQL error");
        goto out;
    }
    json_t *obj = must(json_object());
    size_t n_rows = json_array_size(rows);
    json_object_set_new(obj, "columns", columns);
    json_object_set_new(obj, "rows", rows);
    json_object_set_new(obj, "row_count", must(json_integer((json_int_t)n_rows)));
    json_object_set_new(obj, "truncated", json_boolean(truncated));
    columns = rows = NULL;
    err = tool_structured(obj);
    if (truncated) {
        json_t *note = must(json_object());
        json_object_set_new(note, "type", must(json_string("text")));
        json_object_set_new(note, "text",
                            text_valuef("result truncated after %zu rows (limits: %d rows, %u "
                                        "bytes)",
                                        n_rows, ROW_CAP, RESULT_CAP));
        json_array_append_new(json_object_get(err, "content"), note);
    }
out:
    sqlite3_finalize(st);
    json_decref(columns);
    json_decref(rows);
    return err;
}

static json_t *tool_execute(struct call *c, const json_t *args)
{
    static const char *const allowed[] = {"sql", "params"};
    const json_t *sql = NULL, *params = NULL;
    sqlite3 *db = c->srv->rw;
    sqlite3_stmt *st = NULL;
    if (c->srv->readonly || db == NULL)
        return tool_error("the server runs with --readonly: execute is disabled");
    json_t *err = check_args(args, allowed, MG_ARRAY_LEN(allowed));
    if (err == NULL)
        err = get_sql(args, &sql);
    if (err == NULL)
        err = get_params(args, &params);
    if (err == NULL)
        err = prepare_one(c->srv, db, sql, &st);
    if (err != NULL)
        return err;
    if (sqlite3_stmt_readonly(st)) {
        err = tool_error("execute runs statements that change the database; use the query tool "
                         "to read");
        goto out;
    }
    if ((err = bind_params(st, params)) != NULL)
        goto out;
    int rc;
    /* RETURNING rows are stepped through and dropped: execute reports
     * counts, query reads. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        err = sql_error(db, "SQL error");
        goto out;
    }
    json_t *obj = must(json_object());
    json_object_set_new(obj, "changes", must(json_integer(sqlite3_changes64(db))));
    json_object_set_new(obj, "last_insert_rowid",
                        must(json_integer(sqlite3_last_insert_rowid(db))));
    err = tool_structured(obj);
out:
    sqlite3_finalize(st);
    return err;
}

static json_t *get_int_arg(const json_t *args, const char *name, int def, int min, int max,
                           int *out)
{
    const json_t *v = json_object_get(args, name);
    if (v == NULL) {
        *out = def;
        return NULL;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return tool_error("\"%s\" must be an integer from %d to %d", name, min, max);
    *out = (int)json_integer_value(v);
    return NULL;
}

static json_t *tool_slow_count(struct call *c, const json_t *args)
{
    static const char *const allowed[] = {"steps", "interval_ms"};
    int steps = 0, interval = 0;
    json_t *err = check_args(args, allowed, MG_ARRAY_LEN(allowed));
    if (err == NULL)
        err = get_int_arg(args, "steps", 5, 1, 50, &steps);
    if (err == NULL)
        err = get_int_arg(args, "interval_ms", 1000, 0, 5000, &interval);
    if (err != NULL)
        return err;
    /* MCP "Progress": the token is a string or an integer; anything else is
     * no token at all. */
    const json_t *token = json_object_get(json_object_get(c->params, "_meta"), "progressToken");
    if (!json_is_string(token) && !json_is_integer(token))
        token = NULL;
    struct mg_msq_out *out = c->out;
    out->jobs = mg_xrealloc(out->jobs, (out->n_jobs + 1) * sizeof *out->jobs);
    struct mg_msq_job *job = &out->jobs[out->n_jobs++];
    job->id = json_copy((json_t *)c->id);
    job->token = token ? json_copy((json_t *)token) : NULL;
    job->steps = steps;
    job->interval_ms = interval;
    job->slot = c->slot;
    c->deferred = true;
    return NULL;
}

struct tool {
    const char *name;
    json_t *(*run)(struct call *c, const json_t *args);
};

static const struct tool tools[] = {
    {"list_tables", tool_list_tables},
    {"describe_table", tool_describe_table},
    {"query", tool_query},
    {"execute", tool_execute},
    {"slow_count", tool_slow_count},
};

json_t *mg_msq_progress(const json_t *token, int step, int steps)
{
    json_t *params = must(json_object());
    json_object_set_new(params, "progressToken", json_copy((json_t *)token));
    json_object_set_new(params, "progress", must(json_integer(step)));
    json_object_set_new(params, "total", must(json_integer(steps)));
    json_object_set_new(params, "message", text_valuef("step %d of %d", step, steps));
    json_t *n = must(json_object());
    json_object_set_new(n, "jsonrpc", must(json_string("2.0")));
    json_object_set_new(n, "method", must(json_string("notifications/progress")));
    json_object_set_new(n, "params", params);
    return n;
}

json_t *mg_msq_slow_result(const json_t *id, int steps)
{
    return make_result(id, tool_text(text_valuef("counted %d", steps), false));
}

/* ---- dispatch ---------------------------------------------------------- */

static json_t *do_initialize(struct mg_msq_session *sess, const json_t *id, const json_t *params,
                             struct mg_msq_out *out)
{
    /* MCP "Version Negotiation": echo a version we speak, otherwise offer
     * ours and let the client decide. */
    const json_t *want = json_object_get(params, "protocolVersion");
    const char *version = DEFAULT_VERSION;
    if (json_is_string(want) && mg_msq_is_supported_version(json_string_value(want)))
        version = json_string_value(want);
    snprintf(sess->version, sizeof sess->version, "%s", version);
    out->initialized = true;

    json_t *tools_cap = must(json_object());
    json_object_set_new(tools_cap, "listChanged", json_false());
    json_t *caps = must(json_object());
    json_object_set_new(caps, "tools", tools_cap);
    json_t *info = must(json_object());
    json_object_set_new(info, "name", must(json_string(SERVER_NAME)));
    json_object_set_new(info, "version", must(json_string(SERVER_VERSION)));
    json_t *r = must(json_object());
    json_object_set_new(r, "protocolVersion", must(json_string(version)));
    json_object_set_new(r, "capabilities", caps);
    json_object_set_new(r, "serverInfo", info);
    json_object_set_new(r, "instructions",
                        must(json_string("SQLite database. Use list_tables and describe_table "
                                         "to explore, query to read, execute to write.")));
    return make_result(id, r);
}

static json_t *do_tools_call(struct mg_msq_server *srv, const json_t *id, const json_t *params,
                             struct mg_msq_out *out, size_t slot)
{
    const json_t *name = json_object_get(params, "name");
    if (!json_is_string(name))
        return mg_msq_error(id, MG_MSQ_INVALID_PARAMS, "params.name must be a string");
    const json_t *args = json_object_get(params, "arguments");
    if (args != NULL && !json_is_object(args))
        return mg_msq_error(id, MG_MSQ_INVALID_PARAMS, "params.arguments must be an object");
    const struct tool *tool = NULL;
    for (size_t i = 0; i < MG_ARRAY_LEN(tools) && tool == NULL; i++)
        if (strcmp(json_string_value(name), tools[i].name) == 0)
            tool = &tools[i];
    if (tool == NULL) /* MCP "Tools / Error Handling": unknown tool is a protocol error */
        return mg_msq_error(id, MG_MSQ_INVALID_PARAMS, "Unknown tool");

    json_t *empty = NULL;
    if (args == NULL)
        args = empty = must(json_object());
    struct call c = {.srv = srv, .id = id, .params = params, .out = out, .slot = slot};
    json_t *result = tool->run(&c, args);
    json_decref(empty);
    if (c.deferred)
        return NULL;
    return make_result(id, result);
}

/* Handles one JSON-RPC message. Returns the response, or NULL when there is
 * none now (a notification, a response, or a deferred job). */
static json_t *handle_one(struct mg_msq_server *srv, struct mg_msq_session *sess, const json_t *msg,
                          struct mg_msq_out *out, size_t slot, bool *deferred)
{
    *deferred = false;
    log_message(srv, msg, NULL);
    if (!json_is_object(msg))
        return mg_msq_error(NULL, MG_MSQ_INVALID_REQUEST, "Invalid Request");
    const json_t *id = json_object_get(msg, "id");
    /* MCP "Requests": the id is a string or an integer, never null. */
    if (id != NULL && !json_is_string(id) && !json_is_integer(id))
        return mg_msq_error(NULL, MG_MSQ_INVALID_REQUEST, "id must be a string or an integer");
    const json_t *jsonrpc = json_object_get(msg, "jsonrpc");
    if (!json_is_string(jsonrpc) || strcmp(json_string_value(jsonrpc), "2.0") != 0)
        return mg_msq_error(id, MG_MSQ_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    const json_t *method = json_object_get(msg, "method");
    if (method == NULL) {
        /* A response to a request we never sent: nothing to do. */
        if (id != NULL && (json_object_get(msg, "result") || json_object_get(msg, "error")))
            return NULL;
        return mg_msq_error(id, MG_MSQ_INVALID_REQUEST, "Invalid Request");
    }
    if (!json_is_string(method))
        return mg_msq_error(id, MG_MSQ_INVALID_REQUEST, "method must be a string");
    const char *m = json_string_value(method);
    const json_t *params = json_object_get(msg, "params");

    if (id == NULL) { /* notification: never answered (JSON-RPC §4.1) */
        if (strcmp(m, "notifications/cancelled") == 0 && json_is_object(params)) {
            const json_t *rid = json_object_get(params, "requestId");
            if ((json_is_string(rid) || json_is_integer(rid)) && out->cancel_id == NULL)
                out->cancel_id = json_copy((json_t *)rid);
        }
        return NULL;
    }
    out->has_request = true;
    if (params != NULL && !json_is_object(params))
        return mg_msq_error(id, MG_MSQ_INVALID_PARAMS, "params must be an object");

    if (strcmp(m, "initialize") == 0) {
        /* MCP 2025-03-26 "Lifecycle": initialize MUST NOT be part of a batch. */
        if (slot != MG_MSQ_NO_SLOT)
            return mg_msq_error(id, MG_MSQ_INVALID_REQUEST,
                                "initialize must not be part of a batch");
        return do_initialize(sess, id, params, out);
    }
    if (strcmp(m, "ping") == 0)
        return make_result(id, must(json_object()));
    if (strcmp(m, "tools/list") == 0)
        return make_result(id, json_incref(srv->tools));
    if (strcmp(m, "tools/call") == 0) {
        if (params == NULL)
            return mg_msq_error(id, MG_MSQ_INVALID_PARAMS, "tools/call needs params");
        size_t before = out->n_jobs;
        json_t *r = do_tools_call(srv, id, params, out, slot);
        *deferred = out->n_jobs > before;
        return r;
    }
    return mg_msq_error(id, MG_MSQ_METHOD_NOT_FOUND, "Method not found");
}

static void handle_batch(struct mg_msq_server *srv, struct mg_msq_session *sess, const json_t *msg,
                         struct mg_msq_out *out)
{
    size_t n = json_array_size(msg);
    const char *refusal = NULL;
    if (n == 0)
        refusal = "empty batch";
    else if (n > MG_MSQ_MAX_BATCH)
        refusal = "batch too large";
    else if (strcmp(sess->version, BATCH_VERSION) != 0)
        refusal = "batches are not supported";
    if (refusal != NULL) {
        /* JSON-RPC §6: a batch that cannot be processed gets one error. */
        for (size_t i = 0; i < MG_MIN(n, (size_t)MG_MSQ_MAX_BATCH); i++)
            log_message(srv, json_array_get(msg, i), "refused batch");
        out->reply = mg_msq_error(NULL, MG_MSQ_INVALID_REQUEST, refusal);
        out->kind = MG_MSQ_MALFORMED;
        return;
    }
    json_t *replies = must(json_array());
    for (size_t i = 0; i < n; i++) {
        bool deferred;
        json_t *r =
            handle_one(srv, sess, json_array_get(msg, i), out, json_array_size(replies), &deferred);
        if (deferred)
            json_array_append_new(replies, json_null()); /* placeholder for the job */
        else if (r != NULL)
            json_array_append_new(replies, r);
    }
    /* JSON-RPC §6: nothing at all is returned for an all-notification batch. */
    if (json_array_size(replies) == 0) {
        json_decref(replies);
        replies = NULL;
    }
    out->reply = replies;
}

void mg_msq_out_init(struct mg_msq_out *out)
{
    memset(out, 0, sizeof *out);
}

void mg_msq_out_fini(struct mg_msq_out *out)
{
    json_decref(out->reply);
    for (size_t i = 0; i < out->n_jobs; i++) {
        json_decref(out->jobs[i].id);
        json_decref(out->jobs[i].token);
    }
    free(out->jobs);
    json_decref(out->cancel_id);
    mg_msq_out_init(out);
}

json_t *mg_msq_parse(struct mg_msq_server *srv, const char *text, size_t len,
                     struct mg_msq_out *out)
{
    json_error_t jerr;
    if (len > MG_MSQ_MAX_MESSAGE) {
        log_message(srv, NULL, "too large");
        out->reply = mg_msq_error(NULL, MG_MSQ_INVALID_REQUEST, "message too large");
        out->kind = MG_MSQ_MALFORMED;
        return NULL;
    }
    /* Duplicate keys are refused: a gateway and this server must never
     * disagree about which "name" a message meant. */
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (msg == NULL) {
        log_message(srv, NULL, "parse error");
        out->reply = mg_msq_error(NULL, MG_MSQ_PARSE_ERROR, "Parse error");
        json_object_set_new(json_object_get(out->reply, "error"), "data",
                            text_value(jerr.text, strlen(jerr.text)));
        out->kind = MG_MSQ_MALFORMED;
    }
    return msg;
}

bool mg_msq_is_initialize(const json_t *msg)
{
    const json_t *m = json_object_get(msg, "method");
    return json_is_object(msg) && json_is_string(m) &&
           strcmp(json_string_value(m), "initialize") == 0 && json_object_get(msg, "id") != NULL;
}

void mg_msq_handle(struct mg_msq_server *srv, struct mg_msq_session *sess, const json_t *msg,
                   struct mg_msq_out *out)
{
    if (json_is_array(msg)) {
        handle_batch(srv, sess, msg, out);
        return;
    }
    bool deferred;
    out->reply = handle_one(srv, sess, msg, out, MG_MSQ_NO_SLOT, &deferred);
    /* A lone value that is not a JSON-RPC message at all. */
    if (!json_is_object(msg))
        out->kind = MG_MSQ_MALFORMED;
}

void mg_msq_handle_text(struct mg_msq_server *srv, struct mg_msq_session *sess, const char *text,
                        size_t len, struct mg_msq_out *out)
{
    json_t *msg = mg_msq_parse(srv, text, len, out);
    if (msg != NULL)
        mg_msq_handle(srv, sess, msg, out);
    json_decref(msg);
}

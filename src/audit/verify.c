/* Verification and queries of the audit trail; see verify.h. Files are
 * read one line at a time into a buffer bounded by the longest record
 * mcpgate writes; the store is read in pages of rows by seq. */
#include "audit/verify.h"

#include <errno.h>
#include <stdarg.h>

#define PAGE_ROWS 1000

const char *mg_audit_problem_name(enum mg_audit_problem p)
{
    static const char *const names[] = {"intact", "edited", "inserted", "deleted"};
    return (size_t)p < MG_ARRAY_LEN(names) ? names[p] : "?";
}

/* ---------------------------------------------------------------------------
 * Reading files line by line.
 */

/* fn gets each line without its newline; complete is false for a line
 * longer than any record (cut at the bound) or a last line without a
 * newline. A non-zero return from fn stops the walk and is returned. */
typedef int (*line_fn)(void *arg, int64_t line, const char *text, size_t len, bool complete);

static int each_line(const char *path, line_fn fn, void *arg, char *err, size_t cap)
{
    FILE *f = fopen(path, "re");
    struct mg_buf b;
    int64_t line = 0;
    int rc = 0;

    if (!f) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return MG_EIO;
    }
    mg_buf_init(&b, MG_AUDIT_MAX_RECORD_BYTES);
    for (;;) {
        bool over = false;
        int c = EOF;
        mg_buf_reset(&b);
        while ((c = getc_unlocked(f)) != EOF && c != '\n') {
            char ch = (char)c;
            if (!over && mg_buf_append(&b, &ch, 1) != 0)
                over = true;
        }
        if (c == EOF && b.len == 0 && !over)
            break;
        line++;
        rc = fn(arg, line, b.data ? b.data : "", b.len, c == '\n' && !over);
        if (rc != 0 || c == EOF)
            break;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, cap, "%s: read error", path);
        rc = MG_EIO;
    }
    mg_buf_fini(&b);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------------------
 * The chain.
 */

struct chain {
    struct mg_audit_verify *out;
    int64_t next_seq;  /* the seq the next record must have */
    int64_t prev_line; /* where the last good record was */
    bool store;        /* locations are rows, not lines */
    json_t *rec;       /* the record just fed, parsed (for the store's column checks) */
};

__attribute__((format(printf, 5, 6))) static int
broken(struct chain *c, enum mg_audit_problem p, int64_t seq, int64_t line, const char *fmt, ...)
{
    va_list ap;
    c->out->problem = p;
    c->out->seq = seq;
    c->out->line = c->store ? 0 : line;
    va_start(ap, fmt);
    vsnprintf(c->out->message, sizeof c->out->message, fmt, ap);
    va_end(ap);
    return MG_EPROTO;
}

static bool is_hex64(const char *s)
{
    if (!s || strlen(s) != MG_AUDIT_HASH_HEX)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* One record, at line (file) or row seq (store), against the chain so far. */
static int feed(struct chain *c, const char *text, size_t len, bool complete, int64_t where)
{
    struct mg_audit_verify *o = c->out;
    const char *what = c->store ? "row" : "line";
    json_t *rec;
    json_int_t seq;
    const char *prev;
    char *canon;
    bool canonical;
    char hash[MG_AUDIT_HASH_HEX + 1];

    json_decref(c->rec);
    c->rec = NULL;
    if (!complete)
        return broken(c, MG_AUDIT_EDITED, c->next_seq, where,
                      "%s %lld is cut short (no newline, or longer than any record): written "
                      "over, or a write in progress",
                      what, (long long)where);
    rec = json_loadb(text, len, MG_AUDIT_JSON_FLAGS, NULL);
    seq = json_integer_value(json_object_get(rec, "seq"));
    prev = json_string_value(json_object_get(rec, "prev"));
    if (!json_is_object(rec) || !json_is_integer(json_object_get(rec, "seq")) || seq < 1 ||
        !is_hex64(prev)) {
        json_decref(rec);
        return broken(c, MG_AUDIT_EDITED, c->next_seq, where,
                      "%s %lld is not an audit record (expected seq %lld there)", what,
                      (long long)where, (long long)c->next_seq);
    }
    /* Bytes that parse to the same record but are not its canonical text
     * were rewritten (re-indented, keys reordered, escapes changed). */
    canon = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    canonical = canon && strlen(canon) == len && memcmp(canon, text, len) == 0;
    free(canon);
    c->rec = rec;
    if (!canonical)
        return broken(c, MG_AUDIT_EDITED, seq, where,
                      "record seq %lld (%s %lld) is not in canonical form: it was rewritten",
                      (long long)seq, what, (long long)where);
    if (seq == c->next_seq && strcmp(prev, o->head_hash) != 0) {
        if (o->records == 0)
            return broken(c, MG_AUDIT_EDITED, seq, where,
                          "record seq %lld (%s %lld) does not chain to the start (prev is not "
                          "64 zeros): edited, or earlier records were removed",
                          (long long)seq, what, (long long)where);
        o->records--; /* the record before was accepted, but it is the edited one */
        return broken(c, MG_AUDIT_EDITED, seq - 1, c->prev_line,
                      "record seq %lld (%s %lld) was edited: its hash is not the prev that "
                      "seq %lld (%s %lld) records",
                      (long long)(seq - 1), what, (long long)c->prev_line, (long long)seq, what,
                      (long long)where);
    }
    if (seq > c->next_seq) {
        if (o->records > 0 && strcmp(prev, o->head_hash) == 0)
            return broken(c, MG_AUDIT_EDITED, seq, where,
                          "record seq %lld (%s %lld) chains to seq %lld but says seq %lld: its "
                          "seq was edited",
                          (long long)seq, what, (long long)where, (long long)(c->next_seq - 1),
                          (long long)seq);
        if (seq - 1 == c->next_seq)
            return broken(c, MG_AUDIT_DELETED, c->next_seq, where,
                          "record seq %lld is missing before %s %lld: deleted",
                          (long long)c->next_seq, what, (long long)where);
        return broken(c, MG_AUDIT_DELETED, c->next_seq, where,
                      "records seq %lld to %lld are missing before %s %lld: deleted",
                      (long long)c->next_seq, (long long)(seq - 1), what, (long long)where);
    }
    if (seq < c->next_seq)
        return broken(c, MG_AUDIT_INSERTED, seq, where,
                      "%s %lld holds seq %lld, but seq %lld came before it: a record was "
                      "inserted (or copied)",
                      what, (long long)where, (long long)seq, (long long)(c->next_seq - 1));
    mg_audit_hash_hex(text, len, hash);
    memcpy(o->head_hash, hash, sizeof hash);
    o->head_seq = seq;
    o->records++;
    c->next_seq = seq + 1;
    c->prev_line = where;
    return 0;
}

static void chain_init(struct chain *c, struct mg_audit_verify *out, bool store)
{
    memset(out, 0, sizeof *out);
    memcpy(out->head_hash, mg_audit_zero_hash, sizeof out->head_hash);
    memset(c, 0, sizeof *c);
    c->out = out;
    c->next_seq = 1;
    c->store = store;
}

static int file_line(void *arg, int64_t line, const char *text, size_t len, bool complete)
{
    return feed(arg, text, len, complete, line);
}

int mg_audit_verify_file(const char *path, struct mg_audit_verify *out)
{
    struct chain c;
    int rc;
    chain_init(&c, out, false);
    rc = each_line(path, file_line, &c, out->message, sizeof out->message);
    json_decref(c.rec);
    if (rc == 0)
        snprintf(out->message, sizeof out->message, "%lld records, chain intact",
                 (long long)out->records);
    return rc;
}

/* The store's columns are what queries filter on: each must say what the
 * hashed record says, or a query could hide what the record proves. */
static int check_columns(struct chain *c, const struct mg_store_audit_row *r)
{
    const json_t *rec = c->rec, *id = json_object_get(rec, "identity");
    const char *t = json_string_value(json_object_get(rec, "time"));
    const struct {
        const char *col, *have, *want;
    } cols[] = {
        {"route", r->route, json_string_value(json_object_get(rec, "route"))},
        {"subject", r->subject, json_string_value(json_object_get(id, "subject"))},
        {"email", r->email, json_string_value(json_object_get(id, "email"))},
        {"method", r->method, json_string_value(json_object_get(rec, "method"))},
        {"name", r->name, json_string_value(json_object_get(rec, "name"))},
        {"decision", r->decision, json_string_value(json_object_get(rec, "decision"))},
        {"prev", r->prev, json_string_value(json_object_get(rec, "prev"))},
    };
    int64_t seq = json_integer_value(json_object_get(rec, "seq")), ms = 0;
    char hash[MG_AUDIT_HASH_HEX + 1];

    if (r->seq != seq)
        return broken(c, MG_AUDIT_EDITED, seq, 0,
                      "row %lld holds the record of seq %lld: its seq column was edited",
                      (long long)r->seq, (long long)seq);
    mg_audit_hash_hex(r->record, strlen(r->record), hash);
    if (strcmp(hash, r->hash ? r->hash : "") != 0)
        return broken(c, MG_AUDIT_EDITED, seq, 0,
                      "row %lld: the hash column is not the record's hash: edited",
                      (long long)r->seq);
    for (size_t i = 0; i < MG_ARRAY_LEN(cols); i++)
        if (strcmp(cols[i].have ? cols[i].have : "", cols[i].want ? cols[i].want : "") != 0)
            return broken(c, MG_AUDIT_EDITED, seq, 0,
                          "row %lld: the %s column does not match the record: edited",
                          (long long)r->seq, cols[i].col);
    if (!t || mg_audit_parse_since(t, 0, &ms) != 0 || ms != r->time_ms)
        return broken(c, MG_AUDIT_EDITED, seq, 0,
                      "row %lld: the time_ms column does not match the record: edited",
                      (long long)r->seq);
    return 0;
}

int mg_audit_verify_store(struct mg_store *st, struct mg_audit_verify *out)
{
    struct chain c;
    int64_t after = 0;
    int rc = 0;

    chain_init(&c, out, true);
    while (rc == 0) {
        struct mg_store_audit_filter f = {.after_seq = after, .limit = PAGE_ROWS};
        struct mg_store_audit_row *rows = NULL;
        size_t n = 0;
        rc = mg_store_audit_query(st, &f, &rows, &n);
        if (rc != 0) {
            snprintf(out->message, sizeof out->message, "%s", mg_store_last_error(st));
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = feed(&c, rows[i].record, strlen(rows[i].record), true, rows[i].seq);
            if (rc == 0)
                rc = check_columns(&c, &rows[i]);
        }
        if (n > 0)
            after = rows[n - 1].seq;
        mg_store_audit_list_free(rows, n);
        if (n < PAGE_ROWS)
            break;
    }
    json_decref(c.rec);
    if (rc == 0)
        snprintf(out->message, sizeof out->message, "%lld records, chain intact",
                 (long long)out->records);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Queries.
 */

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

static bool field_is(const json_t *o, const char *key, const char *want)
{
    const char *s = json_string_value(json_object_get(o, key));
    return !want || (s && strcmp(s, want) == 0);
}

bool mg_audit_record_matches(const json_t *rec, const struct mg_store_audit_filter *f)
{
    const json_t *id = json_object_get(rec, "identity");
    if (f->user) {
        const char *sub = json_string_value(json_object_get(id, "subject"));
        const char *email = json_string_value(json_object_get(id, "email"));
        if (!(sub && strcmp(sub, f->user) == 0) && !(email && ascii_ieq(email, f->user)))
            return false;
    }
    if (!field_is(rec, "name", f->tool) || !field_is(rec, "decision", f->decision) ||
        !field_is(rec, "route", f->route) || !field_is(rec, "method", f->method))
        return false;
    if (f->since_ms) {
        const char *t = json_string_value(json_object_get(rec, "time"));
        int64_t ms = 0;
        if (!t || mg_audit_parse_since(t, 0, &ms) != 0 || ms < f->since_ms)
            return false;
    }
    return true;
}

/* The last `limit` matches (newest) or the first ones, as a ring. */
struct collect {
    const struct mg_store_audit_filter *f;
    size_t limit;
    json_t **ring;
    size_t n, start;
};

static int collect_line(void *arg, int64_t line, const char *text, size_t len, bool complete)
{
    struct collect *c = arg;
    json_t *rec;
    MG_UNUSED(line);
    if (!complete)
        return 0;
    rec = json_loadb(text, len, MG_AUDIT_JSON_FLAGS, NULL);
    if (!json_is_object(rec) || !mg_audit_record_matches(rec, c->f)) {
        json_decref(rec);
        return 0;
    }
    if (c->n < c->limit) {
        c->ring[(c->start + c->n++) % c->limit] = rec;
        return 0;
    }
    if (!c->f->newest) {
        json_decref(rec);
        return 1; /* the first `limit` are all in */
    }
    json_decref(c->ring[c->start]);
    c->ring[c->start] = rec;
    c->start = (c->start + 1) % c->limit;
    return 0;
}

int mg_audit_query_file(const char *path, const struct mg_store_audit_filter *f, json_t **out,
                        char *err, size_t cap)
{
    struct collect c = {.f = f};
    json_t *arr;
    int rc;

    *out = NULL;
    c.limit = f->limit && f->limit <= MG_STORE_AUDIT_MAX_ROWS ? f->limit : MG_STORE_AUDIT_MAX_ROWS;
    c.ring = mg_xcalloc(c.limit, sizeof *c.ring);
    rc = each_line(path, collect_line, &c, err, cap);
    if (rc == 1)
        rc = 0;
    arr = json_array();
    for (size_t i = 0; i < c.n; i++)
        json_array_append_new(arr, c.ring[(c.start + i) % c.limit]);
    free(c.ring);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int mg_audit_query_store(struct mg_store *st, const struct mg_store_audit_filter *f, json_t **out,
                         char *err, size_t cap)
{
    struct mg_store_audit_row *rows = NULL;
    size_t n = 0;
    json_t *arr;
    int rc = mg_store_audit_query(st, f, &rows, &n);

    *out = NULL;
    if (rc != 0) {
        snprintf(err, cap, "%s", mg_store_last_error(st));
        return rc;
    }
    arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_loads(rows[i].record, MG_AUDIT_JSON_FLAGS, NULL);
        if (json_is_object(rec))
            json_array_append_new(arr, rec);
        else
            json_decref(rec);
    }
    mg_store_audit_list_free(rows, n);
    *out = arr;
    return 0;
}

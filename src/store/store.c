/* The backend-independent half of the store: choosing a backend from the DSN,
 * checking arguments once for every backend, the last-error message, the
 * enum names shared by all backends, and freeing results. Each operation is a
 * thin wrapper over struct mg_store_ops (see store.h). */
#include "store/store.h"

#include <stdarg.h>

/* DSN prefixes. A backend that is not built has NULL ops and a reason. A DSN
 * that matches no prefix is a plain SQLite path. */
static const struct {
    const char *prefix;
    bool strip; /* pass the DSN without the prefix to open */
    const struct mg_store_ops *ops;
    const char *missing;
} backends[] = {
    {"sqlite:", true, &mg_store__sqlite_ops, NULL},
    {"postgres://", false, &mg_store__postgres_ops, NULL},
    {"postgresql://", false, &mg_store__postgres_ops, NULL},
};

void mg_store__set_error(struct mg_store *st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(st->last_error);
    st->last_error = mg_xstrdup(msg);
}

static void clear_error(struct mg_store *st)
{
    free(st->last_error);
    st->last_error = NULL;
}

const char *mg_store_last_error(const struct mg_store *st)
{
    return st && st->last_error ? st->last_error : "";
}

int mg_store_open(const char *dsn, struct mg_store **out, char **err)
{
    const struct mg_store_ops *ops = &mg_store__sqlite_ops;
    const char *target = dsn;
    struct mg_store *st = NULL;
    int rc;

    *out = NULL;
    if (err)
        *err = NULL;
    if (!dsn || !*dsn) {
        if (err)
            *err = mg_xstrdup("store: empty DSN");
        return MG_EINVAL;
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(backends); i++) {
        size_t n = strlen(backends[i].prefix);
        if (strncmp(dsn, backends[i].prefix, n) != 0)
            continue;
        if (!backends[i].ops) {
            if (err)
                *err = mg_xstrdup(backends[i].missing);
            return MG_EINVAL;
        }
        ops = backends[i].ops;
        target = backends[i].strip ? dsn + n : dsn;
        break;
    }
    if (!*target) {
        if (err)
            *err = mg_xstrdup("store: DSN names no database");
        return MG_EINVAL;
    }
    st = mg_xcalloc(1, sizeof(*st));
    st->ops = ops;
    rc = ops->open(st, target);
    if (rc != 0) {
        if (err)
            *err = mg_xstrdup(st->last_error ? st->last_error : mg_strstatus(rc));
        free(st->last_error);
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void mg_store_free(struct mg_store *st)
{
    if (!st)
        return;
    if (st->backend)
        st->ops->close(st);
    free(st->last_error);
    free(st);
}

static int bad(struct mg_store *st, const char *what)
{
    mg_store__set_error(st, "store: %s", what);
    return MG_EINVAL;
}

#define ENTER(st)                                                                                  \
    do {                                                                                           \
        MG_ASSERT((st) != NULL && (st)->backend != NULL);                                          \
        clear_error(st);                                                                           \
    } while (0)

int64_t mg_store_schema_latest(void)
{
    return MG_STORE__SCHEMA_LATEST;
}

int mg_store_migrate(struct mg_store *st, int64_t now)
{
    ENTER(st);
    return st->ops->migrate(st, now);
}

int mg_store_schema_version(struct mg_store *st, int64_t *version)
{
    ENTER(st);
    if (!version)
        return bad(st, "version out-parameter is required");
    return st->ops->schema_version(st, version);
}

/* Users */

int mg_store_user_create(struct mg_store *st, const struct mg_store_user *u, int64_t now,
                         int64_t *id)
{
    ENTER(st);
    if (!u || !u->email || !*u->email)
        return bad(st, "user email is required");
    return st->ops->user_create(st, u, now, id);
}

int mg_store_user_get(struct mg_store *st, const char *email, struct mg_store_user *out)
{
    ENTER(st);
    if (!out)
        return bad(st, "out-parameter is required");
    memset(out, 0, sizeof(*out));
    if (!email)
        return bad(st, "email is required");
    return st->ops->user_get(st, email, out);
}

int mg_store_user_list(struct mg_store *st, struct mg_store_user **out, size_t *n)
{
    ENTER(st);
    if (!out || !n)
        return bad(st, "out-parameters are required");
    *out = NULL;
    *n = 0;
    return st->ops->user_list(st, out, n);
}

int mg_store_user_set_disabled(struct mg_store *st, const char *email, bool disabled)
{
    ENTER(st);
    if (!email)
        return bad(st, "email is required");
    return st->ops->user_set_disabled(st, email, disabled);
}

int mg_store_user_set_password(struct mg_store *st, const char *email, const char *password_hash)
{
    ENTER(st);
    if (!email)
        return bad(st, "email is required");
    return st->ops->user_set_password(st, email, password_hash);
}

int mg_store_user_record_failure(struct mg_store *st, const char *email, int64_t now,
                                 int64_t *count)
{
    ENTER(st);
    if (!email)
        return bad(st, "email is required");
    return st->ops->user_record_failure(st, email, now, count);
}

int mg_store_user_reset_failures(struct mg_store *st, const char *email)
{
    ENTER(st);
    if (!email)
        return bad(st, "email is required");
    return st->ops->user_reset_failures(st, email);
}

void mg_store_user_fini(struct mg_store_user *u)
{
    if (!u)
        return;
    free(u->email);
    free(u->name);
    free(u->groups_json);
    if (u->password_hash) {
        explicit_bzero(u->password_hash, strlen(u->password_hash));
        free(u->password_hash);
    }
    memset(u, 0, sizeof(*u));
}

void mg_store_user_list_free(struct mg_store_user *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        mg_store_user_fini(&list[i]);
    free(list);
}

/* Clients */

int mg_store_client_insert(struct mg_store *st, const struct mg_store_client *c)
{
    ENTER(st);
    if (!c || !c->client_id || !*c->client_id)
        return bad(st, "client_id is required");
    if (!mg_store_client_kind_name(c->kind))
        return bad(st, "unknown client kind");
    return st->ops->client_insert(st, c);
}

int mg_store_client_get(struct mg_store *st, const char *client_id, struct mg_store_client *out)
{
    ENTER(st);
    if (!out)
        return bad(st, "out-parameter is required");
    memset(out, 0, sizeof(*out));
    if (!client_id)
        return bad(st, "client_id is required");
    return st->ops->client_get(st, client_id, out);
}

int mg_store_client_list(struct mg_store *st, struct mg_store_client **out, size_t *n)
{
    ENTER(st);
    if (!out || !n)
        return bad(st, "out-parameters are required");
    *out = NULL;
    *n = 0;
    return st->ops->client_list(st, out, n);
}

int mg_store_client_count_dynamic_since(struct mg_store *st, int64_t since, int64_t *n)
{
    ENTER(st);
    if (!n)
        return bad(st, "out-parameter is required");
    return st->ops->client_count_dynamic_since(st, since, n);
}

int mg_store_client_delete(struct mg_store *st, const char *client_id)
{
    ENTER(st);
    if (!client_id)
        return bad(st, "client_id is required");
    return st->ops->client_delete(st, client_id);
}

void mg_store_client_fini(struct mg_store_client *c)
{
    if (!c)
        return;
    free(c->client_id);
    free(c->name);
    free(c->redirect_uris_json);
    free(c->metadata_json);
    memset(c, 0, sizeof(*c));
}

void mg_store_client_list_free(struct mg_store_client *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        mg_store_client_fini(&list[i]);
    free(list);
}

/* Tokens */

int mg_store_token_insert(struct mg_store *st, const struct mg_store_token *t)
{
    ENTER(st);
    if (!t || !t->subject)
        return bad(st, "token subject is required");
    if (!mg_store_token_kind_name(t->kind))
        return bad(st, "unknown token kind");
    return st->ops->token_insert(st, t);
}

int mg_store_token_get(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN],
                       struct mg_store_token *out)
{
    ENTER(st);
    if (!out)
        return bad(st, "out-parameter is required");
    memset(out, 0, sizeof(*out));
    if (!hash)
        return bad(st, "hash is required");
    return st->ops->token_get(st, hash, out);
}

static size_t *or_scratch(size_t *p, size_t *scratch)
{
    *scratch = 0;
    return p ? p : scratch;
}

int mg_store_token_revoke(struct mg_store *st, const uint8_t hash[MG_STORE_HASH_LEN], int64_t now,
                          size_t *n_revoked)
{
    size_t scratch;
    ENTER(st);
    if (!hash)
        return bad(st, "hash is required");
    return st->ops->token_revoke(st, hash, now, or_scratch(n_revoked, &scratch));
}

int mg_store_token_revoke_family(struct mg_store *st, const char *family_id, int64_t now,
                                 size_t *n_revoked)
{
    size_t scratch;
    ENTER(st);
    if (!family_id)
        return bad(st, "family_id is required");
    return st->ops->token_revoke_family(st, family_id, now, or_scratch(n_revoked, &scratch));
}

int mg_store_token_revoke_client(struct mg_store *st, const char *client_id, int64_t now,
                                 size_t *n_revoked)
{
    size_t scratch;
    ENTER(st);
    if (!client_id)
        return bad(st, "client_id is required");
    return st->ops->token_revoke_client(st, client_id, now, or_scratch(n_revoked, &scratch));
}

int mg_store_token_revoke_subject(struct mg_store *st, const char *subject, int64_t now,
                                  size_t *n_revoked)
{
    size_t scratch;
    ENTER(st);
    if (!subject)
        return bad(st, "subject is required");
    return st->ops->token_revoke_subject(st, subject, now, or_scratch(n_revoked, &scratch));
}

int mg_store_token_list(struct mg_store *st, const char *subject, const char *client_id,
                        struct mg_store_token **out, size_t *n)
{
    ENTER(st);
    if (!out || !n)
        return bad(st, "out-parameters are required");
    *out = NULL;
    *n = 0;
    return st->ops->token_list(st, subject, client_id, out, n);
}

int mg_store_token_delete_expired(struct mg_store *st, int64_t now, size_t *n_deleted)
{
    size_t scratch;
    ENTER(st);
    return st->ops->token_delete_expired(st, now, or_scratch(n_deleted, &scratch));
}

void mg_store_token_fini(struct mg_store_token *t)
{
    if (!t)
        return;
    free(t->family_id);
    free(t->client_id);
    free(t->subject);
    free(t->audience);
    free(t->scopes);
    free(t->identity_json);
    free(t->extra_json);
    explicit_bzero(t, sizeof(*t));
}

void mg_store_token_list_free(struct mg_store_token *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        mg_store_token_fini(&list[i]);
    free(list);
}

int mg_store_revocation_seq(struct mg_store *st, uint64_t *seq)
{
    ENTER(st);
    if (!seq)
        return bad(st, "out-parameter is required");
    return st->ops->revocation_seq(st, seq);
}

int mg_store_revocation_wait(struct mg_store *st, uint64_t known, int64_t timeout_ms, uint64_t *seq)
{
    ENTER(st);
    if (!seq)
        return bad(st, "out-parameter is required");
    if (timeout_ms < 0)
        return bad(st, "timeout must not be negative");
    return st->ops->revocation_wait(st, known, timeout_ms, seq);
}

/* Consents */

int mg_store_consent_put(struct mg_store *st, const struct mg_store_consent *c)
{
    ENTER(st);
    if (!c || !c->subject || !c->client_id || !c->audience)
        return bad(st, "consent subject, client_id and audience are required");
    return st->ops->consent_put(st, c);
}

int mg_store_consent_get(struct mg_store *st, const char *subject, const char *client_id,
                         const char *audience, int64_t now, struct mg_store_consent *out)
{
    ENTER(st);
    if (!out)
        return bad(st, "out-parameter is required");
    memset(out, 0, sizeof(*out));
    if (!subject || !client_id || !audience)
        return bad(st, "subject, client_id and audience are required");
    return st->ops->consent_get(st, subject, client_id, audience, now, out);
}

int mg_store_consent_delete_subject(struct mg_store *st, const char *subject, size_t *n_deleted)
{
    size_t scratch;
    ENTER(st);
    if (!subject)
        return bad(st, "subject is required");
    return st->ops->consent_delete_subject(st, subject, or_scratch(n_deleted, &scratch));
}

void mg_store_consent_fini(struct mg_store_consent *c)
{
    if (!c)
        return;
    free(c->subject);
    free(c->client_id);
    free(c->audience);
    free(c->scopes);
    memset(c, 0, sizeof(*c));
}

/* Secrets */

int mg_store_secret_get_or_create(struct mg_store *st, const char *name, const uint8_t *candidate,
                                  size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    ENTER(st);
    if (!out || !out_len)
        return bad(st, "out-parameters are required");
    *out_len = 0;
    if (!name || !*name)
        return bad(st, "secret name is required");
    /* A candidate the caller could not read back is a bug, refused before
     * it could be stored. */
    if (!candidate || len == 0 || len > cap)
        return bad(st, "secret candidate must be 1 to cap bytes");
    return st->ops->secret_get_or_create(st, name, candidate, len, out, cap, out_len);
}

/* Audit */

static bool is_hash_hex(const char *s)
{
    if (!s || strlen(s) != MG_STORE_AUDIT_HASH_HEX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int mg_store_audit_append(struct mg_store *st, const struct mg_store_audit_row *rows, size_t n)
{
    ENTER(st);
    if (!rows || n == 0 || n > MG_STORE_AUDIT_MAX_ROWS)
        return bad(st, "audit append takes 1 to MG_STORE_AUDIT_MAX_ROWS rows");
    for (size_t i = 0; i < n; i++) {
        const struct mg_store_audit_row *r = &rows[i];
        if (r->seq < 1 || (i > 0 && r->seq != rows[i - 1].seq + 1))
            return bad(st, "audit rows must have consecutive sequence numbers from 1");
        if (!is_hash_hex(r->prev) || !is_hash_hex(r->hash))
            return bad(st, "audit prev and hash must be 64 lower-case hex digits");
        if (i > 0 && strcmp(r->prev, rows[i - 1].hash) != 0)
            return bad(st, "audit rows must chain: prev is the previous row's hash");
        if (!r->decision || (strcmp(r->decision, "allow") != 0 && strcmp(r->decision, "deny") != 0))
            return bad(st, "audit decision must be allow or deny");
        if (!r->record || !*r->record)
            return bad(st, "audit record text is required");
    }
    return st->ops->audit_append(st, rows, n);
}

int mg_store_audit_last(struct mg_store *st, int64_t *seq, char hash[MG_STORE_AUDIT_HASH_HEX + 1])
{
    ENTER(st);
    if (!seq || !hash)
        return bad(st, "out-parameters are required");
    *seq = 0;
    memset(hash, '0', MG_STORE_AUDIT_HASH_HEX);
    hash[MG_STORE_AUDIT_HASH_HEX] = '\0';
    return st->ops->audit_last(st, seq, hash);
}

int mg_store_audit_query(struct mg_store *st, const struct mg_store_audit_filter *f,
                         struct mg_store_audit_row **out, size_t *n)
{
    struct mg_store_audit_filter all = {0};
    ENTER(st);
    if (!out || !n)
        return bad(st, "out-parameters are required");
    *out = NULL;
    *n = 0;
    if (f)
        all = *f;
    if (all.limit == 0 || all.limit > MG_STORE_AUDIT_MAX_ROWS)
        all.limit = MG_STORE_AUDIT_MAX_ROWS;
    return st->ops->audit_query(st, &all, out, n);
}

void mg_store_audit_row_fini(struct mg_store_audit_row *r)
{
    if (!r)
        return;
    free(r->route);
    free(r->subject);
    free(r->email);
    free(r->method);
    free(r->name);
    free(r->decision);
    free(r->prev);
    free(r->hash);
    free(r->record);
    memset(r, 0, sizeof(*r));
}

void mg_store_audit_list_free(struct mg_store_audit_row *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        mg_store_audit_row_fini(&list[i]);
    free(list);
}

/* Names stored in the database: changing one needs a migration. */
static const char *const client_kinds[] = {
    [MG_STORE_CLIENT_DYNAMIC] = "dynamic",
    [MG_STORE_CLIENT_METADATA_DOCUMENT] = "metadata_document",
    [MG_STORE_CLIENT_CONFIG] = "config",
};
static const char *const token_kinds[] = {
    [MG_STORE_TOKEN_ACCESS] = "access",
    [MG_STORE_TOKEN_REFRESH] = "refresh",
    [MG_STORE_TOKEN_CODE] = "code",
    [MG_STORE_TOKEN_SERVICE] = "service",
};

const char *mg_store_client_kind_name(enum mg_store_client_kind k)
{
    return (unsigned)k < MG_ARRAY_LEN(client_kinds) ? client_kinds[k] : NULL;
}

const char *mg_store_token_kind_name(enum mg_store_token_kind k)
{
    return (unsigned)k < MG_ARRAY_LEN(token_kinds) ? token_kinds[k] : NULL;
}

int mg_store_client_kind_parse(const char *s, enum mg_store_client_kind *out)
{
    for (size_t i = 0; s && i < MG_ARRAY_LEN(client_kinds); i++) {
        if (strcmp(s, client_kinds[i]) == 0) {
            *out = (enum mg_store_client_kind)i;
            return 0;
        }
    }
    return MG_EINVAL;
}

int mg_store_token_kind_parse(const char *s, enum mg_store_token_kind *out)
{
    for (size_t i = 0; s && i < MG_ARRAY_LEN(token_kinds); i++) {
        if (strcmp(s, token_kinds[i]) == 0) {
            *out = (enum mg_store_token_kind)i;
            return 0;
        }
    }
    return MG_EINVAL;
}

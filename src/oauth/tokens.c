/* The token, revocation and registration endpoints: the authorization-code
 * grant with PKCE S256 (OAuth 2.1 §4.1, RFC 7636), refresh-token rotation
 * with reuse detection (OAuth 2.1 §4.3.1, BCP 240 §4.14), client_credentials
 * for confidential clients, RFC 7009 revocation and RFC 7591 registration. */
#include "oauth/oauth_int.h"

#include "authn/pkce.h"
#include "core/log.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#define MAX_REDIRECT_URIS      10
#define MAX_URI_LEN            2048
#define MAX_REGISTRATION_BYTES (16 * 1024)

/* --- client authentication (OAuth 2.1 §2.4) ---------------------------------------- */

struct client_auth {
    char *client_id;
    char *secret; /* NULL for public clients */
    bool basic;
};

static void client_auth_fini(struct client_auth *ca)
{
    free(ca->client_id);
    if (ca->secret) {
        OPENSSL_cleanse(ca->secret, strlen(ca->secret));
        free(ca->secret);
    }
    memset(ca, 0, sizeof *ca);
}

static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    /* RFC 6749 §2.3.1: Basic credentials are form-urlencoded first. */
    struct mg_form f;
    struct mg_buf b;
    mg_buf_init(&b, 2 * n + 8);
    mg_buf_appends(&b, "v=");
    mg_buf_append(&b, s, n);
    int rc = mg_form_parse(&f, NULL, b.data, b.len);
    const char *v = NULL;
    if (rc == 0)
        rc = mg_form_get(&f, "v", &v);
    if (rc == 0 && strlen(v) + 1 > cap)
        rc = MG_ELIMIT;
    if (rc == 0)
        memcpy(out, v, strlen(v) + 1);
    mg_form_fini(&f);
    mg_buf_fini(&b);
    return rc;
}

static const char *parse_client_auth(struct oreq *o, struct client_auth *ca)
{
    const struct mg_http_head *h = o->p->req->head;
    const char *form_id = NULL, *form_secret = NULL;
    int r1 = mg_form_get(&o->form, "client_id", &form_id);
    int r2 = mg_form_get(&o->form, "client_secret", &form_secret);
    if (r1 == MG_EINVAL || r2 == MG_EINVAL)
        return "client_id or client_secret given more than once";
    size_t n_auth = mg_http_head_count(h, "authorization");
    if (n_auth > 1)
        return "more than one Authorization header";
    if (n_auth == 1) {
        const struct mg_http_header *a = mg_http_head_find(h, "authorization");
        if (a->value_len < 7 || !mg_str_ieq(a->value, 6, "basic "))
            return "only Basic client authentication is supported";
        if (form_secret)
            return "use one client authentication method, not two";
        uint8_t raw[1024];
        size_t rn = 0;
        /* Basic uses standard base64 with padding. */
        int dn = EVP_DecodeBlock(raw, (const unsigned char *)a->value + 6, (int)(a->value_len - 6));
        if (a->value_len - 6 > 1300 || dn < 0)
            return "malformed Basic credentials";
        rn = (size_t)dn;
        for (size_t i = a->value_len; i > 6 && a->value[i - 1] == '='; i--)
            rn--;
        uint8_t *colon = memchr(raw, ':', rn);
        if (colon == NULL)
            return "malformed Basic credentials";
        char id[512], sec[512];
        if (pct_decode((const char *)raw, (size_t)(colon - raw), id, sizeof id) < 0 ||
            pct_decode((const char *)colon + 1, rn - (size_t)(colon - raw) - 1, sec, sizeof sec) <
                0) {
            OPENSSL_cleanse(raw, sizeof raw);
            return "malformed Basic credentials";
        }
        OPENSSL_cleanse(raw, sizeof raw);
        if (form_id && strcmp(form_id, id) != 0)
            return "client_id does not match the Basic credentials";
        ca->client_id = mg_xstrdup(id);
        ca->secret = mg_xstrdup(sec);
        ca->basic = true;
        OPENSSL_cleanse(sec, sizeof sec);
        return NULL;
    }
    if (form_id == NULL)
        return "client_id is required";
    ca->client_id = mg_xstrdup(form_id);
    if (form_secret)
        ca->secret = mg_xstrdup(form_secret);
    return NULL;
}

/* Checks the looked-up client against the presented credentials. */
static bool client_authenticated(const struct oreq *o, const struct client_auth *ca)
{
    if (!o->have_client)
        return false;
    if (!o->client.confidential)
        return ca->secret == NULL;
    if (ca->secret == NULL)
        return false;
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)ca->secret, strlen(ca->secret), h);
    return mg_ct_equal(h, o->client.secret_hash, sizeof h);
}

/* --- token endpoint -------------------------------------------------------------- */

struct tok {
    struct client_auth ca;
    char *grant;
    char *code_or_refresh;
    char *verifier;
    char *redirect_uri;
    char *resource;
    char *scope;
    const struct mg_route_rt *route;
};

static void tok_free(void *p)
{
    struct tok *t = p;
    if (t == NULL)
        return;
    client_auth_fini(&t->ca);
    free(t->grant);
    if (t->code_or_refresh) {
        OPENSSL_cleanse(t->code_or_refresh, strlen(t->code_or_refresh));
        free(t->code_or_refresh);
    }
    if (t->verifier) {
        OPENSSL_cleanse(t->verifier, strlen(t->verifier));
        free(t->verifier);
    }
    free(t->redirect_uri);
    free(t->resource);
    free(t->scope);
    free(t);
}

static char *form_dup(struct oreq *o, const char *name, int *rc)
{
    const char *v = NULL;
    int r = mg_form_get(&o->form, name, &v);
    if (r == MG_EINVAL)
        *rc = MG_EINVAL;
    return v ? mg_xstrdup(v) : NULL;
}

static void family_id(char out[33])
{
    uint8_t r[16];
    RAND_bytes(r, sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* Inserts an access token (and a refresh token unless refresh is NULL) for
 * identity_json in family fam. Threadpool. */
static int issue_pair(struct mg_store *st, struct oreq *o, const char *subject,
                      const char *identity_json, const char *fam, const char *audience,
                      const char *scope, bool with_refresh)
{
    const struct mg_conf_oauth *oc = &o->p->gw->conf->oauth;
    uint8_t h[MG_TOKEN_HASH_LEN];
    int rc = mg_token_new(MG_TOKEN_ACCESS, o->access, sizeof o->access);
    if (rc == 0)
        rc = mg_token_hash(o->access, h);
    if (rc < 0)
        return rc;
    o->expires_in = (int64_t)(oc->access_token_ttl_ms / 1000);
    struct mg_store_token t = {
        .kind = MG_STORE_TOKEN_ACCESS,
        .family_id = (char *)fam,
        .client_id = o->client.client_id,
        .subject = (char *)subject,
        .audience = (char *)audience,
        .scopes = (char *)scope,
        .expires_at = o->now + o->expires_in,
        .created_at = o->now,
        .identity_json = (char *)identity_json,
    };
    memcpy(t.hash, h, sizeof h);
    rc = mg_store_token_insert(st, &t);
    if (rc < 0 || !with_refresh)
        return rc;
    rc = mg_token_new(MG_TOKEN_REFRESH, o->refresh, sizeof o->refresh);
    if (rc == 0)
        rc = mg_token_hash(o->refresh, h);
    if (rc < 0)
        return rc;
    t.kind = MG_STORE_TOKEN_REFRESH;
    t.expires_at = o->now + (int64_t)(oc->refresh_token_ttl_ms / 1000);
    memcpy(t.hash, h, sizeof h);
    return mg_store_token_insert(st, &t);
}

static void grant_error(struct oreq *o, const char *desc)
{
    o->job_error = "invalid_grant";
    o->job_desc = desc;
}

/* The words a single-use grant's refusals use. */
struct grant_words {
    enum mg_store_token_kind kind;
    const char *invalid, *other_client, *replayed, *expired;
};

static const struct grant_words code_words = {
    MG_STORE_TOKEN_CODE,
    "the authorization code is invalid",
    "the authorization code was issued to another client",
    "the authorization code was already used; its tokens are revoked",
    "the authorization code has expired",
};

static const struct grant_words refresh_words = {
    MG_STORE_TOKEN_REFRESH,
    "the refresh token is invalid",
    "the refresh token was issued to another client",
    "the refresh token was already used; every token of this grant is now revoked",
    "the refresh token has expired",
};

/* Consumes a single-use grant (an authorization code or a refresh token):
 * looks it up, checks its kind and client, and revokes it with a
 * conditional update so exactly one caller wins. A grant presented again
 * revokes its whole family (RFC 6749 §4.1.2 for codes, BCP 240 §4.14.2 for
 * rotated refresh tokens). Returns 0 with *ok true and *row filled when this
 * call consumed a live grant; 0 with *ok false after recording the refusal
 * in o; a negative status when the store failed. Threadpool. */
static int consume_grant(struct mg_store *st, struct oreq *o, const struct grant_words *w,
                         struct mg_store_token *row, bool *ok)
{
    struct tok *t = o->ext;
    uint8_t h[MG_TOKEN_HASH_LEN];
    *ok = false;
    int rc = mg_token_hash(t->code_or_refresh, h);
    if (rc < 0)
        return rc;
    rc = mg_store_token_get(st, h, row);
    if (rc == MG_ENOTFOUND || (rc == 0 && row->kind != w->kind)) {
        grant_error(o, w->invalid);
        return 0;
    }
    if (rc < 0)
        return rc;
    if (row->client_id == NULL || strcmp(row->client_id, o->client.client_id) != 0) {
        grant_error(o, w->other_client);
        return 0;
    }
    size_t n = 0;
    if (row->revoked_at == 0 && (rc = mg_store_token_revoke(st, h, o->now, &n)) < 0)
        return rc;
    if (n != 1) {
        size_t m = 0;
        if (row->family_id)
            mg_store_token_revoke_family(st, row->family_id, o->now, &m);
        grant_error(o, w->replayed);
        o->job_rc = 1; /* tell the loop to drop cached tokens */
        return 0;
    }
    if (row->expires_at <= o->now) {
        grant_error(o, w->expired);
        return 0;
    }
    *ok = true;
    return 0;
}

static int code_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    struct tok *t = o->ext;
    struct mg_store_token row = {0};
    json_t *extra = NULL;
    bool ok = false;
    int rc = consume_grant(st, o, &code_words, &row, &ok);
    if (rc < 0 || !ok)
        goto out;
    json_error_t je;
    extra = json_loads(row.extra_json ? row.extra_json : "{}", 0, &je);
    const char *ru = json_string_value(json_object_get(extra, "redirect_uri"));
    const char *cc = json_string_value(json_object_get(extra, "code_challenge"));
    const char *why = NULL;
    if (ru && (t->redirect_uri == NULL || strcmp(ru, t->redirect_uri) != 0)) {
        grant_error(o, "redirect_uri does not match the authorization request");
        goto out;
    }
    if (t->verifier == NULL) {
        o->job_error = "invalid_request";
        o->job_desc = "code_verifier is required (PKCE)";
        goto out;
    }
    if (cc == NULL || mg_pkce_verify("S256", cc, t->verifier, &why) != 0) {
        grant_error(o, "PKCE verification failed: the code_verifier does not match");
        goto out;
    }
    rc = issue_pair(st, o, row.subject, row.identity_json, row.family_id, row.audience, row.scopes,
                    o->client.allow_refresh);
    o->scope_out = mg_xstrdup(row.scopes ? row.scopes : "");
out:
    json_decref(extra);
    mg_store_token_fini(&row);
    return rc;
}

static int refresh_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    struct tok *t = o->ext;
    struct mg_store_token row = {0};
    bool live = false;
    int rc = consume_grant(st, o, &refresh_words, &row, &live);
    if (rc < 0 || !live)
        goto out;
    const char *scope = row.scopes ? row.scopes : "";
    if (t->scope) {
        /* A narrower scope may be asked for, never a wider one. */
        for (const char *s = t->scope; *s;) {
            size_t len = strcspn(s, " ");
            bool ok = false;
            for (const char *g = scope; *g && !ok;) {
                size_t gl = strcspn(g, " ");
                ok = gl == len && memcmp(g, s, len) == 0;
                g += gl;
                while (*g == ' ')
                    g++;
            }
            if (len && !ok) {
                o->job_error = "invalid_scope";
                o->job_desc = "the requested scope exceeds the original grant";
                goto out;
            }
            s += len;
            while (*s == ' ')
                s++;
        }
        scope = t->scope;
    }
    rc =
        issue_pair(st, o, row.subject, row.identity_json, row.family_id, row.audience, scope, true);
    o->scope_out = mg_xstrdup(scope);
out:
    mg_store_token_fini(&row);
    return rc;
}

static int cc_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    struct tok *t = o->ext;
    struct mg_identity *id = mg_identity_new();
    struct mg_buf sub, js;
    mg_buf_init(&sub, 4096);
    mg_buf_init(&js, 65536);
    mg_buf_appendf(&sub, "client:%s", o->client.client_id);
    free(id->subject);
    id->subject = mg_xstrdup(sub.data);
    free(id->name);
    id->name = mg_xstrdup(o->client.name);
    free(id->idp);
    id->idp = mg_xstrdup("client_credentials");
    id->method = MG_AUTH_CLIENT;
    mg_identity_set_groups_json(id, o->client.groups);
    int rc = mg_identity_to_json(id, &js);
    char fam[33];
    family_id(fam);
    const char *scope = t->scope ? t->scope : t->route->scope_str;
    if (rc == 0)
        rc = issue_pair(st, o, sub.data, js.data, fam, t->route->resource, scope, false);
    o->scope_out = mg_xstrdup(scope);
    mg_identity_unref(id);
    mg_buf_fini(&sub);
    mg_buf_fini(&js);
    return rc;
}

static void token_done(struct oreq *o, int status)
{
    if (o->job_rc == 1)
        mg_tokcache_invalidate(o->a->cache);
    if (status < 0) {
        mg_log_warn("token endpoint: store failed: %s", mg_strstatus(status));
        mg_oauth__reply_oerror(o, 503, "temporarily_unavailable",
                               "the identity store is unavailable; try again");
        return;
    }
    if (o->job_error) {
        mg_oauth__reply_oerror(o, 400, o->job_error, o->job_desc);
        return;
    }
    json_t *d = json_pack("{s:s, s:s, s:I}", "access_token", o->access, "token_type", "Bearer",
                          "expires_in", (json_int_t)o->expires_in);
    if (o->refresh[0])
        json_object_set_new(d, "refresh_token", json_string(o->refresh));
    if (o->scope_out && o->scope_out[0])
        json_object_set_new(d, "scope", json_string(o->scope_out));
    mg_oauth__reply_json(o, 200, d, NULL);
}

static void token_have_client(struct oreq *o, int status)
{
    struct tok *t = o->ext;
    if (status < 0 && status != MG_EDENIED) {
        token_done(o, status);
        return;
    }
    if (!client_authenticated(o, &t->ca)) {
        /* RFC 6749 §5.2: invalid_client, 401 when the client tried Basic. */
        mg_oauth__reply_oerror(o, t->ca.basic ? 401 : 400, "invalid_client",
                               o->have_client ? "client authentication failed" : "unknown client");
        return;
    }
    if (strcmp(t->grant, "authorization_code") == 0) {
        if (t->code_or_refresh == NULL) {
            mg_oauth__reply_oerror(o, 400, "invalid_request", "code is required");
            return;
        }
        mg_oauth__run(o, code_work, token_done);
    } else if (strcmp(t->grant, "refresh_token") == 0) {
        if (!o->client.allow_refresh) {
            mg_oauth__reply_oerror(o, 400, "unauthorized_client",
                                   "this client may not use refresh tokens");
            return;
        }
        if (t->code_or_refresh == NULL) {
            mg_oauth__reply_oerror(o, 400, "invalid_request", "refresh_token is required");
            return;
        }
        mg_oauth__run(o, refresh_work, token_done);
    } else {
        if (!o->client.allow_cc || !o->client.confidential) {
            mg_oauth__reply_oerror(o, 400, "unauthorized_client",
                                   "client_credentials is for confidential clients allowed to "
                                   "use it");
            return;
        }
        if (t->resource == NULL ||
            (t->route = mg_oauth__route_for_resource(o->p->gw, t->resource)) == NULL) {
            mg_oauth__reply_oerror(o, 400, "invalid_target",
                                   "resource must name a route of this gateway (RFC 8707)");
            return;
        }
        if (t->scope && !mg_oauth__scope_ok(t->route, t->scope)) {
            mg_oauth__reply_oerror(o, 400, "invalid_scope", "unknown scope for this resource");
            return;
        }
        mg_oauth__run(o, cc_work, token_done);
    }
}

void mg_oauth__token(struct oreq *o)
{
    struct tok *t = mg_xcalloc(1, sizeof *t);
    o->ext = t;
    o->ext_free = tok_free;
    int rc = 0;
    t->grant = form_dup(o, "grant_type", &rc);
    const char *why = parse_client_auth(o, &t->ca);
    if (why) {
        mg_oauth__reply_oerror(o, 400, "invalid_request", why);
        return;
    }
    if (t->grant == NULL) {
        mg_oauth__reply_oerror(o, 400, "invalid_request", "grant_type is required");
        return;
    }
    if (strcmp(t->grant, "authorization_code") == 0)
        t->code_or_refresh = form_dup(o, "code", &rc);
    else if (strcmp(t->grant, "refresh_token") == 0)
        t->code_or_refresh = form_dup(o, "refresh_token", &rc);
    else if (strcmp(t->grant, "client_credentials") != 0) {
        mg_oauth__reply_oerror(o, 400, "unsupported_grant_type",
                               "grant_type must be authorization_code, refresh_token or "
                               "client_credentials");
        return;
    }
    t->verifier = form_dup(o, "code_verifier", &rc);
    t->redirect_uri = form_dup(o, "redirect_uri", &rc);
    t->scope = form_dup(o, "scope", &rc);
    t->resource = form_dup(o, "resource", &rc);
    if (rc < 0) {
        mg_oauth__reply_oerror(o, 400, "invalid_request", "a parameter was given more than once");
        return;
    }
    mg_oauth__client_lookup(o, t->ca.client_id, token_have_client);
}

/* --- revocation (RFC 7009) -------------------------------------------------------- */

static int revoke_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    struct tok *t = o->ext;
    uint8_t h[MG_TOKEN_HASH_LEN];
    struct mg_store_token row = {0};
    int rc = mg_token_hash(t->code_or_refresh, h);
    if (rc < 0)
        return rc;
    rc = mg_store_token_get(st, h, &row);
    if (rc == MG_ENOTFOUND)
        return 0; /* §2.2: invalid tokens do not cause an error */
    if (rc < 0)
        return rc;
    if (row.client_id == NULL || strcmp(row.client_id, o->client.client_id) != 0) {
        o->job_error = "unauthorized_client";
        o->job_desc = "the token was not issued to this client";
    } else {
        size_t n = 0;
        /* A refresh token ends its whole grant; an access token only itself. */
        if (row.kind == MG_STORE_TOKEN_REFRESH && row.family_id)
            rc = mg_store_token_revoke_family(st, row.family_id, o->now, &n);
        else
            rc = mg_store_token_revoke(st, h, o->now, &n);
        o->job_rc = 1;
    }
    mg_store_token_fini(&row);
    return rc;
}

static void revoke_done(struct oreq *o, int status)
{
    if (o->job_rc == 1)
        mg_tokcache_invalidate(o->a->cache);
    if (status < 0) {
        mg_oauth__reply_oerror(o, 503, "temporarily_unavailable",
                               "the identity store is unavailable; try again");
        return;
    }
    if (o->job_error) {
        mg_oauth__reply_oerror(o, 400, o->job_error, o->job_desc);
        return;
    }
    mg_http_reply(o->p->req, 200, "application/json", "Cache-Control: no-store\r\n", "{}", 2);
}

static void revoke_have_client(struct oreq *o, int status)
{
    struct tok *t = o->ext;
    if (status < 0 && status != MG_EDENIED) {
        revoke_done(o, status);
        return;
    }
    if (!client_authenticated(o, &t->ca)) {
        mg_oauth__reply_oerror(o, t->ca.basic ? 401 : 400, "invalid_client",
                               o->have_client ? "client authentication failed" : "unknown client");
        return;
    }
    mg_oauth__run(o, revoke_work, revoke_done);
}

void mg_oauth__revoke(struct oreq *o)
{
    struct tok *t = mg_xcalloc(1, sizeof *t);
    o->ext = t;
    o->ext_free = tok_free;
    int rc = 0;
    t->code_or_refresh = form_dup(o, "token", &rc);
    const char *why = parse_client_auth(o, &t->ca);
    if (why || rc < 0 || t->code_or_refresh == NULL) {
        mg_oauth__reply_oerror(o, 400, "invalid_request", why ? why : "token is required, once");
        return;
    }
    mg_oauth__client_lookup(o, t->ca.client_id, revoke_have_client);
}

/* --- dynamic registration (RFC 7591) ---------------------------------------------- */

static const char *check_redirect_uri(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > MAX_URI_LEN)
        return "redirect_uris must be 1 to 2048 characters";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            return "redirect_uris must not contain spaces, controls or non-ASCII";
    if (strchr(u, '#'))
        return "redirect_uris must not contain a fragment";
    if (strncmp(u, "https://", 8) == 0)
        return u[8] && u[8] != '/' ? NULL : "redirect_uris need a host";
    if (strncmp(u, "http://", 7) == 0) {
        const char *a, *b;
        static const char *const hosts[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
        (void)a;
        (void)b;
        for (size_t i = 0; i < MG_ARRAY_LEN(hosts); i++) {
            size_t hn = strlen(hosts[i]);
            if (strncmp(u, hosts[i], hn) == 0 && (u[hn] == ':' || u[hn] == '/' || u[hn] == '\0'))
                return NULL;
        }
        return "http redirect_uris are allowed only for loopback hosts (RFC 8252 §7.3)";
    }
    /* RFC 8252 §7.1: private-use schemes are reverse domain names. */
    const char *colon = strchr(u, ':');
    if (colon == NULL || memchr(u, '.', (size_t)(colon - u)) == NULL)
        return "redirect_uris must be https, loopback http, or a private-use scheme such as "
               "com.example.app:/callback";
    for (const char *c = u; c < colon; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' ||
              *c == '+'))
            return "invalid redirect URI scheme";
    if (strncmp(u, "javascript", 10) == 0 || strncmp(u, "data", 4) == 0)
        return "invalid redirect URI scheme";
    return NULL;
}

struct reg {
    json_t *doc;
    char client_id[40];
    char secret[MG_TOKEN_BUF];
    bool confidential;
    int64_t n_recent, n_total;
};

static void reg_free(void *p)
{
    struct reg *r = p;
    if (r == NULL)
        return;
    json_decref(r->doc);
    OPENSSL_cleanse(r->secret, sizeof r->secret);
    free(r);
}

static int reg_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    struct reg *r = o->ext;
    const struct mg_conf_oauth *oc = &o->p->gw->conf->oauth;
    int rc = mg_store_client_count_dynamic_since(st, o->now - 60, &r->n_recent);
    if (rc == 0)
        rc = mg_store_client_count_dynamic_since(st, 0, &r->n_total);
    if (rc < 0)
        return rc;
    if ((size_t)r->n_recent >= oc->registrations_per_minute) {
        o->job_error = "rate";
        return 0;
    }
    if ((size_t)r->n_total >= oc->max_clients) {
        o->job_error = "full";
        return 0;
    }
    json_t *meta = json_deep_copy(r->doc);
    if (r->confidential) {
        char hex[MG_TOKEN_HASH_HEX_BUF];
        mg_token_hash_hex(r->secret, hex);
        json_object_set_new(meta, "client_secret_hash", json_string(hex));
    }
    char *meta_s = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    char *ru = json_dumps(json_object_get(r->doc, "redirect_uris"), JSON_COMPACT);
    json_decref(meta);
    const char *name = json_string_value(json_object_get(r->doc, "client_name"));
    struct mg_store_client c = {
        .client_id = r->client_id,
        .name = (char *)(name ? name : ""),
        .redirect_uris_json = ru,
        .metadata_json = meta_s,
        .kind = MG_STORE_CLIENT_DYNAMIC,
        .created_at = o->now,
    };
    rc = mg_store_client_insert(st, &c);
    free(meta_s);
    free(ru);
    return rc;
}

static void reg_done(struct oreq *o, int status)
{
    struct reg *r = o->ext;
    if (status < 0) {
        mg_oauth__reply_oerror(o, 503, "temporarily_unavailable",
                               "the identity store is unavailable; try again");
        return;
    }
    if (o->job_error && strcmp(o->job_error, "rate") == 0) {
        o->p->error = "registration rate limit";
        mg_oauth__reply_json(o, 429,
                             json_pack("{s:s,s:s}", "error", "invalid_client_metadata",
                                       "error_description",
                                       "too many registrations; try again in a minute"),
                             "Retry-After: 60\r\n");
        return;
    }
    if (o->job_error) {
        mg_oauth__reply_oerror(o, 400, "invalid_client_metadata",
                               "this gateway has reached its limit of registered clients");
        return;
    }
    json_t *d = json_deep_copy(r->doc);
    json_object_set_new(d, "client_id", json_string(r->client_id));
    json_object_set_new(d, "client_id_issued_at", json_integer(o->now));
    if (r->confidential) {
        json_object_set_new(d, "client_secret", json_string(r->secret));
        json_object_set_new(d, "client_secret_expires_at", json_integer(0));
    }
    mg_oauth__reply_json(o, 201, d, NULL);
}

void mg_oauth__register(struct oreq *o)
{
    const struct mg_conf_oauth *oc = &o->p->gw->conf->oauth;
    struct mg_http_req *req = o->p->req;
    if (!oc->dynamic_registration) {
        mg_oauth__reply_oerror(o, 403, "access_denied", "dynamic registration is disabled");
        return;
    }
    if (req->body.len > MAX_REGISTRATION_BYTES) {
        mg_oauth__reply_oerror(o, 413, "invalid_client_metadata",
                               "the registration request is over 16 KiB");
        return;
    }
    json_error_t je;
    json_t *in = json_loadb(req->body.data ? req->body.data : "", req->body.len,
                            JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(in)) {
        json_decref(in);
        mg_oauth__reply_oerror(o, 400, "invalid_client_metadata", "the body must be a JSON object");
        return;
    }
    struct reg *r = mg_xcalloc(1, sizeof *r);
    o->ext = r;
    o->ext_free = reg_free;
    const char *why = NULL, *err = "invalid_client_metadata";
    json_t *ru = json_object_get(in, "redirect_uris");
    json_t *gt = json_object_get(in, "grant_types");
    json_t *rt = json_object_get(in, "response_types");
    json_t *am = json_object_get(in, "token_endpoint_auth_method");
    json_t *name = json_object_get(in, "client_name");
    json_t *scope = json_object_get(in, "scope");
    json_t *out = json_object();
    size_t i;
    json_t *v;
    const char *method = am ? json_string_value(am) : "client_secret_basic";
    if (am && method == NULL)
        why = "token_endpoint_auth_method must be a string";
    else if (strcmp(method, "none") != 0 && strcmp(method, "client_secret_basic") != 0 &&
             strcmp(method, "client_secret_post") != 0)
        why = "token_endpoint_auth_method must be none, client_secret_basic or "
              "client_secret_post";
    r->confidential = why == NULL && strcmp(method, "none") != 0;
    bool want_cc = false, want_code = false;
    if (!why && gt) {
        if (!json_is_array(gt) || json_array_size(gt) == 0 || json_array_size(gt) > 3)
            why = "grant_types must be a list";
        json_array_foreach(gt, i, v)
        {
            const char *g = json_string_value(v);
            if (why)
                break;
            if (g && strcmp(g, "authorization_code") == 0)
                want_code = true;
            else if (g && strcmp(g, "client_credentials") == 0)
                want_cc = true;
            else if (!g || strcmp(g, "refresh_token") != 0)
                why = "grant_types may hold authorization_code, refresh_token and "
                      "client_credentials only";
        }
    } else {
        want_code = true;
    }
    if (!why && want_cc && !r->confidential)
        why = "client_credentials needs a confidential client (a client secret)";
    if (!why && rt) {
        if (!json_is_array(rt) || json_array_size(rt) != 1 ||
            !json_is_string(json_array_get(rt, 0)) ||
            strcmp(json_string_value(json_array_get(rt, 0)), "code") != 0)
            why = "response_types must be [\"code\"]";
    }
    if (!why && want_code) {
        if (!json_is_array(ru) || json_array_size(ru) == 0) {
            why = "redirect_uris is required";
            err = "invalid_redirect_uri";
        } else if (json_array_size(ru) > MAX_REDIRECT_URIS) {
            why = "at most 10 redirect_uris";
            err = "invalid_redirect_uri";
        }
        json_array_foreach(ru, i, v)
        {
            if (why)
                break;
            if (!json_is_string(v) || (why = check_redirect_uri(json_string_value(v))) != NULL) {
                why = why ? why : "redirect_uris must be strings";
                err = "invalid_redirect_uri";
            }
        }
    }
    if (!why && name &&
        (!json_is_string(name) || json_string_length(name) > 200 || json_string_length(name) == 0))
        why = "client_name must be a string of 1 to 200 characters";
    if (!why && name) {
        for (const char *c = json_string_value(name); *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                why = "client_name must not contain control characters";
    }
    if (!why && scope && !json_is_string(scope))
        why = "scope must be a string";
    if (why) {
        json_decref(in);
        json_decref(out);
        mg_oauth__reply_oerror(o, 400, err, why);
        return;
    }
    json_object_set(out, "redirect_uris", ru ? ru : json_array());
    json_object_set_new(out, "grant_types",
                        gt ? json_incref(gt)
                           : json_pack("[s,s]", "authorization_code", "refresh_token"));
    json_object_set_new(out, "response_types", json_pack("[s]", "code"));
    json_object_set_new(out, "token_endpoint_auth_method", json_string(method));
    if (name)
        json_object_set(out, "client_name", name);
    if (scope)
        json_object_set(out, "scope", scope);
    static const char *const keep[] = {"client_uri", "logo_uri", "software_id", "software_version",
                                       "contacts"};
    for (size_t k = 0; k < MG_ARRAY_LEN(keep); k++) {
        json_t *x = json_object_get(in, keep[k]);
        if (x && (json_is_string(x) ? json_string_length(x) <= 2048 : json_is_array(x)))
            json_object_set(out, keep[k], x);
    }
    json_decref(in);
    r->doc = out;
    uint8_t rnd[16];
    char b64[32];
    RAND_bytes(rnd, sizeof rnd);
    mg_authn_b64url_encode(rnd, sizeof rnd, b64, sizeof b64);
    snprintf(r->client_id, sizeof r->client_id, "mcpg_c_%s", b64);
    if (r->confidential && mg_token_new(MG_TOKEN_SERVICE, r->secret, sizeof r->secret) == 0)
        memcpy(r->secret, "mcpg_cs", 7); /* client secrets have their own prefix */
    mg_oauth__run(o, reg_work, reg_done);
}

/* --- authorization codes --------------------------------------------------------- */

int mg_oauth__issue_code(struct mg_store *st, struct oreq *o, const struct mg_identity *id)
{
    const struct mg_conf_oauth *oc = &o->p->gw->conf->oauth;
    uint8_t h[MG_TOKEN_HASH_LEN];
    struct mg_buf js;
    char fam[33];
    int rc = mg_token_new(MG_TOKEN_CODE, o->code, sizeof o->code);
    if (rc == 0)
        rc = mg_token_hash(o->code, h);
    if (rc < 0)
        return rc;
    mg_buf_init(&js, 65536);
    rc = mg_identity_to_json(id, &js);
    json_t *extra = json_pack("{s:s, s:s}", "redirect_uri", o->ar.redirect_uri, "code_challenge",
                              o->ar.challenge);
    char *extra_s = json_dumps(extra, JSON_COMPACT);
    json_decref(extra);
    family_id(fam);
    struct mg_store_token t = {
        .kind = MG_STORE_TOKEN_CODE,
        .family_id = fam,
        .client_id = o->ar.client_id,
        .subject = id->subject,
        .audience = o->ar.resource,
        .scopes = o->ar.scope,
        .expires_at = o->now + (int64_t)(oc->code_ttl_ms / 1000),
        .created_at = o->now,
        .identity_json = js.data,
        .extra_json = extra_s,
    };
    memcpy(t.hash, h, sizeof h);
    if (rc == 0)
        rc = mg_store_token_insert(st, &t);
    free(extra_s);
    mg_buf_fini(&js);
    return rc;
}

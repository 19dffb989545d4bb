/* The browser side of the authorization server: the authorization endpoint,
 * sign-in (built-in accounts; providers in provider.c), consent and sign-out.
 * Browser state is two cookies: the sealed session, and a random CSRF value
 * whose MAC every form carries (double submit, bound to the key). The
 * pending authorization request travels sealed in the pages' "req" field,
 * so any instance sharing the store can continue it. The MCP spec's
 * confused-deputy rule: consent for a client and route is asked before any
 * redirect to an upstream provider, and before a code is issued. */
#include "oauth/oauth_int.h"

#include "authn/password.h"
#include "authn/pkce.h"
#include "core/log.h"
#include "web/tmpl.h"

#include <openssl/rand.h>

#define PAGE_CAP (256 * 1024)

void mg_oauth__authreq_fini(struct authreq *ar)
{
    free(ar->client_id);
    free(ar->client_name);
    free(ar->redirect_uri);
    free(ar->state);
    free(ar->challenge);
    free(ar->resource);
    free(ar->scope);
    free(ar->route_name);
    memset(ar, 0, sizeof *ar);
}

static struct mg_seal_key key_of(struct oreq *o)
{
    struct mg_seal_key k;
    mg_seal_key_init(&k, o->a->seal_key);
    return k;
}

static bool tls_listener(const struct oreq *o)
{
    return o->p->req->conn->srv->is_tls;
}

/* --- rendering ------------------------------------------------------------------- */

static void render(struct oreq *o, int status, const char *page, const struct mg_tmpl_var *vars,
                   size_t n, const char *extra_headers)
{
    const struct mg_tmpl *t = mg_tmpl_set_get(mg_oauth__pages_set(o->a), page);
    struct mg_buf b;
    char *err = NULL;
    mg_buf_init(&b, PAGE_CAP);
    struct mg_tmpl_ctx ctx = {vars, n};
    if (t == NULL || mg_tmpl_render(t, &ctx, &b, &err) < 0) {
        mg_log_error("page %s cannot be rendered: %s", page, err ? err : "missing template");
        free(err);
        mg_buf_fini(&b);
        mg_http_reply(o->p->req, 500, "text/plain; charset=utf-8", NULL,
                      "internal error: page template\n", 30);
        return;
    }
    struct mg_buf h;
    mg_buf_init(&h, 8192);
    /* Pages must never be framed (clickjacking a consent button) nor cached. */
    mg_buf_appends(&h, "Cache-Control: no-store\r\nX-Frame-Options: DENY\r\n"
                       "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
                       "img-src data:; frame-ancestors 'none'\r\n"
                       "Referrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n");
    if (extra_headers)
        mg_buf_appends(&h, extra_headers);
    mg_http_reply(o->p->req, status, "text/html; charset=utf-8", h.data, b.data, b.len);
    mg_buf_fini(&h);
    mg_buf_fini(&b);
}

void mg_oauth__page_error(struct oreq *o, int status, const char *title, const char *message)
{
    o->p->error = message;
    const struct mg_tmpl_var v[] = {
        MG_TMPL_STR("title", title),
        MG_TMPL_STR("message", message),
        MG_TMPL_STR("hint", ""),
    };
    render(o, status, "error.html", v, MG_ARRAY_LEN(v), NULL);
}

/* RFC 6749 §4.1.2.1: once the redirect URI is trusted, errors go back to the
 * client, with state and (RFC 9207) iss. */
void mg_oauth__redirect_back(struct oreq *o, const char *code, const char *error, const char *desc,
                             const char *extra_headers)
{
    struct mg_form_param ps[4];
    size_t n = 0;
    if (code)
        ps[n++] = (struct mg_form_param){"code", code};
    if (error) {
        ps[n++] = (struct mg_form_param){"error", error};
        if (desc)
            ps[n++] = (struct mg_form_param){"error_description", desc};
        o->p->error = desc ? desc : error;
    }
    struct mg_form_param all[6];
    memcpy(all, ps, n * sizeof *ps);
    if (o->ar.state)
        all[n++] = (struct mg_form_param){"state", o->ar.state};
    all[n++] = (struct mg_form_param){"iss", o->p->gw->issuer};
    struct mg_buf loc;
    mg_buf_init(&loc, 16384);
    mg_buf_appends(&loc, "Location: ");
    if (mg_form_url_append(&loc, o->ar.redirect_uri, all, n) < 0) {
        mg_buf_fini(&loc);
        mg_oauth__page_error(o, 400, "Invalid redirect URI",
                             "The application's redirect URI cannot carry the answer.");
        return;
    }
    mg_buf_appends(&loc, "\r\nCache-Control: no-store\r\n");
    if (extra_headers)
        mg_buf_appends(&loc, extra_headers);
    mg_http_reply(o->p->req, 303, "text/plain; charset=utf-8", loc.data, "", 0);
    mg_buf_fini(&loc);
}

static void redirect_local(struct oreq *o, const char *path, const char *sealed,
                           const char *extra_headers)
{
    struct mg_buf loc;
    mg_buf_init(&loc, 16384);
    mg_buf_appendf(&loc, "Location: %s" OAUTH_PREFIX "%s", o->p->gw->issuer, path);
    if (sealed)
        mg_buf_appendf(&loc, "?req=%s", sealed); /* base64url: no escaping needed */
    mg_buf_appends(&loc, "\r\nCache-Control: no-store\r\n");
    if (extra_headers)
        mg_buf_appends(&loc, extra_headers);
    mg_http_reply(o->p->req, 303, "text/plain; charset=utf-8", loc.data, "", 0);
    mg_buf_fini(&loc);
}

/* --- the sealed authorization request ---------------------------------------------- */

static int seal_authreq(struct oreq *o)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "c", o->ar.client_id, "n",
                          o->ar.client_name, "r", o->ar.redirect_uri, "cc", o->ar.challenge, "res",
                          o->ar.resource, "sc", o->ar.scope, "rn", o->ar.route_name);
    if (o->ar.state)
        json_object_set_new(j, "s", json_string(o->ar.state));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *out = mg_xmalloc(MG_SEAL_BUF);
    struct mg_seal_key k = key_of(o);
    int rc =
        mg_seal_seal(&k, "authreq", o->now + AUTHREQ_TTL_SEC, text, strlen(text), out, MG_SEAL_BUF);
    mg_seal_key_fini(&k);
    free(text);
    if (rc < 0) {
        free(out);
        return rc;
    }
    free(o->sealed_req);
    o->sealed_req = out;
    return 0;
}

static char *jdup(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? mg_xstrdup(v) : NULL;
}

bool mg_oauth__open_authreq(struct oreq *o, const char *sealed)
{
    uint8_t *buf = mg_xmalloc(MG_SEAL_MAX_DATA + 1);
    size_t n = 0;
    struct mg_seal_key k = key_of(o);
    int rc = mg_seal_open(&k, "authreq", o->now, sealed, strlen(sealed), buf, MG_SEAL_MAX_DATA, &n,
                          NULL, NULL);
    mg_seal_key_fini(&k);
    json_t *j = NULL;
    if (rc == 0) {
        json_error_t je;
        j = json_loadb((const char *)buf, n, 0, &je);
    }
    free(buf);
    if (!json_is_object(j)) {
        json_decref(j);
        return false;
    }
    mg_oauth__authreq_fini(&o->ar);
    o->ar.client_id = jdup(j, "c");
    o->ar.client_name = jdup(j, "n");
    o->ar.redirect_uri = jdup(j, "r");
    o->ar.challenge = jdup(j, "cc");
    o->ar.resource = jdup(j, "res");
    o->ar.scope = jdup(j, "sc");
    o->ar.route_name = jdup(j, "rn");
    o->ar.state = jdup(j, "s");
    json_decref(j);
    free(o->sealed_req);
    o->sealed_req = mg_xstrdup(sealed);
    return o->ar.client_id && o->ar.redirect_uri && o->ar.challenge && o->ar.resource &&
           o->ar.scope && o->ar.client_name && o->ar.route_name;
}

/* --- session and CSRF cookies --------------------------------------------------- */

static struct mg_identity *session_of(struct oreq *o)
{
    size_t len = 0;
    const char *c = mg_oauth__cookie(o->p->req->head, SESSION_COOKIE, &len);
    if (c == NULL || len > MG_SEAL_MAX_LEN)
        return NULL;
    uint8_t *buf = mg_xmalloc(MG_SEAL_MAX_DATA + 1);
    size_t n = 0;
    struct mg_seal_key k = key_of(o);
    int rc = mg_seal_open(&k, "session", o->now, c, len, buf, MG_SEAL_MAX_DATA, &n, NULL, NULL);
    mg_seal_key_fini(&k);
    struct mg_identity *id = NULL;
    if (rc == 0 && mg_identity_from_json((const char *)buf, n, &id) < 0)
        id = NULL;
    free(buf);
    return id;
}

/* A Set-Cookie line for the session (value NULL: delete it). */
static void session_cookie(struct oreq *o, const char *value, int64_t max_age, struct mg_buf *h)
{
    mg_buf_appendf(h,
                   "Set-Cookie: " SESSION_COOKIE "=%s; Path=" OAUTH_PREFIX
                   "; HttpOnly; SameSite=Lax; Max-Age=%lld%s\r\n",
                   value ? value : "", (long long)(value ? max_age : 0),
                   tls_listener(o) ? "; Secure" : "");
}

static int make_session(struct oreq *o, const struct mg_identity *id, struct mg_buf *h)
{
    struct mg_buf js;
    mg_buf_init(&js, MG_SEAL_MAX_DATA);
    int rc = mg_identity_to_json(id, &js);
    int64_t ttl = (int64_t)(o->p->gw->conf->oauth.session_ttl_ms / 1000);
    char *sealed = mg_xmalloc(MG_SEAL_BUF);
    struct mg_seal_key k = key_of(o);
    if (rc == 0)
        rc = mg_seal_seal(&k, "session", o->now + ttl, js.data, js.len, sealed, MG_SEAL_BUF);
    mg_seal_key_fini(&k);
    if (rc == 0)
        session_cookie(o, sealed, ttl, h);
    free(sealed);
    mg_buf_fini(&js);
    return rc;
}

/* The CSRF token for this browser; sets the cookie if it has none. */
static void csrf_token(struct oreq *o, char out[MG_SEAL_MAC_BUF], struct mg_buf *h)
{
    size_t len = 0;
    const char *c = mg_oauth__cookie(o->p->req->head, CSRF_COOKIE, &len);
    char fresh[48];
    if (c == NULL || len < 22 || len > 64) {
        uint8_t r[24];
        RAND_bytes(r, sizeof r);
        mg_authn_b64url_encode(r, sizeof r, fresh, sizeof fresh);
        c = fresh;
        len = strlen(fresh);
        mg_buf_appendf(h,
                       "Set-Cookie: " CSRF_COOKIE "=%s; Path=" OAUTH_PREFIX
                       "; HttpOnly; SameSite=Lax%s\r\n",
                       fresh, tls_listener(o) ? "; Secure" : "");
    }
    struct mg_seal_key k = key_of(o);
    mg_seal_mac(&k, "csrf", c, len, out);
    mg_seal_key_fini(&k);
}

static bool csrf_ok(struct oreq *o)
{
    size_t len = 0;
    const char *c = mg_oauth__cookie(o->p->req->head, CSRF_COOKIE, &len);
    const char *field = NULL;
    if (c == NULL || mg_form_get(&o->form, "csrf", &field) < 0)
        return false;
    struct mg_seal_key k = key_of(o);
    int rc = mg_seal_mac_verify(&k, "csrf", c, len, field, strlen(field));
    mg_seal_key_fini(&k);
    return rc == 0;
}

/* --- pages ----------------------------------------------------------------------- */

static void show_signin(struct oreq *o, int status, const char *error, const char *email)
{
    const struct mg_conf *conf = o->p->gw->conf;
    struct mg_buf h;
    char csrf[MG_SEAL_MAC_BUF];
    mg_buf_init(&h, 4096);
    csrf_token(o, csrf, &h);
    struct mg_tmpl_var *pv = mg_xcalloc(conf->n_idps ? 2 * conf->n_idps : 1, sizeof *pv);
    struct mg_tmpl_ctx *pc = mg_xcalloc(conf->n_idps ? conf->n_idps : 1, sizeof *pc);
    for (size_t i = 0; i < conf->n_idps; i++) {
        pv[2 * i] = (struct mg_tmpl_var)MG_TMPL_STR("provider", conf->idps[i].name);
        pv[2 * i + 1] = (struct mg_tmpl_var)MG_TMPL_STR("label", conf->idps[i].display_name);
        pc[i] = (struct mg_tmpl_ctx){&pv[2 * i], 2};
    }
    static const struct mg_tmpl_ctx one = {NULL, 0};
    const struct mg_tmpl_var v[] = {
        MG_TMPL_STR("client_name", o->ar.client_name),
        MG_TMPL_STR("resource", o->ar.resource),
        MG_TMPL_STR("route_name", o->ar.route_name),
        MG_TMPL_STR("req", o->sealed_req),
        MG_TMPL_STR("csrf", csrf),
        MG_TMPL_STR("error", error ? error : ""),
        MG_TMPL_STR("email", email ? email : ""),
        MG_TMPL_LIST("builtin", &one, conf->oauth.builtin_accounts ? 1 : 0),
        MG_TMPL_LIST("providers", pc, conf->n_idps),
    };
    render(o, status, "signin.html", v, MG_ARRAY_LEN(v), h.data);
    free(pv);
    free(pc);
    mg_buf_fini(&h);
}

static void show_consent(struct oreq *o, const char *provider)
{
    struct mg_buf h;
    char csrf[MG_SEAL_MAC_BUF];
    mg_buf_init(&h, 4096);
    csrf_token(o, csrf, &h);
    /* Show where the browser will be sent: the redirect URI's host. */
    char host[256] = "";
    const char *r = strstr(o->ar.redirect_uri, "://");
    if (r) {
        size_t n = strcspn(r + 3, "/?#");
        snprintf(host, sizeof host, "%.*s", (int)MG_MIN(n, sizeof host - 1), r + 3);
    } else {
        snprintf(host, sizeof host, "%.*s", (int)strcspn(o->ar.redirect_uri, ":"),
                 o->ar.redirect_uri);
    }
    size_t n_sc = 0;
    char *scopes = mg_xstrdup(o->ar.scope);
    struct mg_tmpl_var sv[64];
    struct mg_tmpl_ctx sc[64];
    for (char *s = scopes; *s && n_sc < 64;) {
        size_t len = strcspn(s, " ");
        bool more = s[len] != '\0';
        s[len] = '\0';
        if (len > 0) {
            sv[n_sc] = (struct mg_tmpl_var)MG_TMPL_STR("scope", s);
            sc[n_sc] = (struct mg_tmpl_ctx){&sv[n_sc], 1};
            n_sc++;
        }
        s += len + (more ? 1 : 0);
    }
    const char *who = "";
    if (o->session)
        who = o->session->email[0] ? o->session->email : o->session->subject;
    const struct mg_tmpl_var v[] = {
        MG_TMPL_STR("client_name", o->ar.client_name),
        MG_TMPL_STR("client_id", o->ar.client_id),
        MG_TMPL_STR("redirect_host", host),
        MG_TMPL_STR("resource", o->ar.resource),
        MG_TMPL_STR("route_name", o->ar.route_name),
        MG_TMPL_LIST("scopes", sc, n_sc),
        MG_TMPL_STR("user", who),
        MG_TMPL_STR("req", o->sealed_req),
        MG_TMPL_STR("csrf", csrf),
        MG_TMPL_STR("provider", provider ? provider : ""),
    };
    render(o, 200, "consent.html", v, MG_ARRAY_LEN(v), h.data);
    free(scopes);
    mg_buf_fini(&h);
}

/* --- authorize ------------------------------------------------------------------- */

static const char *qget(struct oreq *o, const char *name, bool *dup)
{
    const char *v = NULL;
    if (mg_form_get(&o->form, name, &v) == MG_EINVAL)
        *dup = true;
    return v;
}

static int consent_check_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    struct mg_store_consent c = {0};
    int rc =
        mg_store_consent_get(st, o->session->subject, o->ar.client_id, o->ar.resource, o->now, &c);
    if (rc == MG_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    /* Remembered only if it covered every scope asked for now. */
    bool covers = true;
    for (const char *s = o->ar.scope; *s && covers;) {
        size_t len = strcspn(s, " ");
        bool found = false;
        for (const char *g = c.scopes; *g && !found;) {
            size_t gl = strcspn(g, " ");
            found = gl == len && memcmp(g, s, len) == 0;
            g += gl;
            while (*g == ' ')
                g++;
        }
        covers = len == 0 || found;
        s += len;
        while (*s == ' ')
            s++;
    }
    mg_store_consent_fini(&c);
    if (!covers)
        return 0;
    o->job_rc = 1;
    return mg_oauth__issue_code(st, o, o->session);
}

static void consent_check_done(struct oreq *o, int status)
{
    if (status < 0) {
        mg_oauth__page_error(o, 503, "Sign-in unavailable",
                             "The identity store does not answer. Try again in a moment.");
        return;
    }
    if (o->job_rc == 1)
        mg_oauth__redirect_back(o, o->code, NULL, NULL, NULL);
    else
        redirect_local(o, "consent", o->sealed_req, NULL);
}

static void authorize_have_client(struct oreq *o, int status)
{
    bool dup = false;
    const char *ru = qget(o, "redirect_uri", &dup);
    if (status < 0 && status != MG_EDENIED) {
        mg_oauth__page_error(o, 503, "Sign-in unavailable",
                             "The identity store does not answer. Try again in a moment.");
        return;
    }
    if (!o->have_client) {
        mg_oauth__page_error(o, 400, "Unknown application",
                             o->job_desc ? o->job_desc
                                         : "The application asking you to sign in is not "
                                           "registered with this gateway.");
        return;
    }
    if (!o->client.allow_code) {
        mg_oauth__page_error(o, 400, "Application not allowed",
                             "This application may not sign people in.");
        return;
    }
    /* OAuth 2.1 §4.1.1: exact match; loopback ports may differ (RFC 8252). */
    if (ru == NULL && json_array_size(o->client.redirect_uris) == 1)
        ru = json_string_value(json_array_get(o->client.redirect_uris, 0));
    if (dup || ru == NULL || !mg_oauth__redirect_ok(&o->client, ru)) {
        mg_oauth__page_error(o, 400, "Redirect URI mismatch",
                             "The application's redirect_uri is missing or is not one it "
                             "registered. Nothing was sent back to it.");
        return;
    }
    o->ar.client_id = mg_xstrdup(o->client.client_id);
    o->ar.client_name = mg_xstrdup(o->client.name);
    o->ar.redirect_uri = mg_xstrdup(ru);
    const char *state = qget(o, "state", &dup);
    if (state && strlen(state) <= 2048)
        o->ar.state = mg_xstrdup(state);
    const char *rt = qget(o, "response_type", &dup);
    const char *cc = qget(o, "code_challenge", &dup);
    const char *ccm = qget(o, "code_challenge_method", &dup);
    const char *scope = qget(o, "scope", &dup);
    size_t n_res = mg_form_count_of(&o->form, "resource");
    const char *res = NULL;
    if (n_res == 1)
        mg_form_get(&o->form, "resource", &res);
    if (dup) {
        mg_oauth__redirect_back(o, NULL, "invalid_request", "a parameter was given more than once",
                                NULL);
        return;
    }
    if (rt == NULL || strcmp(rt, "code") != 0) {
        mg_oauth__redirect_back(o, NULL, "unsupported_response_type", "response_type must be code",
                                NULL);
        return;
    }
    if (cc == NULL) {
        mg_oauth__redirect_back(o, NULL, "invalid_request", "PKCE is required: send code_challenge",
                                NULL);
        return;
    }
    if (ccm == NULL || !mg_pkce_method_valid(ccm)) {
        mg_oauth__redirect_back(o, NULL, "invalid_request",
                                "code_challenge_method must be S256 (plain is not accepted)", NULL);
        return;
    }
    if (!mg_pkce_challenge_valid(cc)) {
        mg_oauth__redirect_back(o, NULL, "invalid_request",
                                "code_challenge is not a valid S256 challenge", NULL);
        return;
    }
    const struct mg_route_rt *route = NULL;
    if (n_res != 1 || (route = mg_oauth__route_for_resource(o->p->gw, res)) == NULL) {
        mg_oauth__redirect_back(o, NULL, "invalid_target",
                                n_res == 0 ? "resource is required: tokens are bound to one route "
                                             "(RFC 8707)"
                                           : "resource must name exactly one route of this gateway",
                                NULL);
        return;
    }
    if (scope && !mg_oauth__scope_ok(route, scope)) {
        mg_oauth__redirect_back(o, NULL, "invalid_scope",
                                "a requested scope is not offered by this route", NULL);
        return;
    }
    o->ar.challenge = mg_xstrdup(cc);
    o->ar.resource = mg_xstrdup(route->resource);
    o->ar.scope = mg_xstrdup(scope && *scope ? scope : route->scope_str);
    o->ar.route_name = mg_xstrdup(route->conf->name);
    if (seal_authreq(o) < 0) {
        mg_oauth__redirect_back(o, NULL, "invalid_request",
                                "the authorization request is too large", NULL);
        return;
    }
    o->session = session_of(o);
    if (o->session == NULL) {
        redirect_local(o, "signin", o->sealed_req, NULL);
        return;
    }
    mg_oauth__run(o, consent_check_work, consent_check_done);
}

static void authorize(struct oreq *o)
{
    bool dup = false;
    const char *cid = qget(o, "client_id", &dup);
    if (cid == NULL || dup) {
        mg_oauth__page_error(o, 400, "Invalid request",
                             "The application did not say who it is (client_id).");
        return;
    }
    mg_oauth__client_lookup(o, cid, authorize_have_client);
}

/* --- sign-in with a built-in account ------------------------------------------------ */

static int signin_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    const struct mg_conf_oauth *oc = &o->p->gw->conf->oauth;
    struct mg_store_user u = {0};
    int rc = mg_store_user_get(st, o->email, &u);
    if (rc == MG_ENOTFOUND) {
        /* Same work for unknown accounts: no timing oracle. */
        mg_password_dummy_verify(o->password);
        o->job_error = "bad";
        return 0;
    }
    if (rc < 0)
        return rc;
    if (u.failed_logins >= (int64_t)oc->max_failed_logins &&
        o->now - u.last_failure_at < (int64_t)(oc->lockout_ms / 1000)) {
        o->job_error = "locked";
        goto out;
    }
    if (u.disabled || u.password_hash == NULL) {
        mg_password_dummy_verify(o->password);
        o->job_error = "bad";
        goto out;
    }
    if (mg_password_verify(u.password_hash, o->password) != 0) {
        int64_t n = 0;
        mg_store_user_record_failure(st, u.email, o->now, &n);
        o->job_error = "bad";
        goto out;
    }
    if (u.failed_logins > 0)
        mg_store_user_reset_failures(st, u.email);
    struct mg_identity *id = mg_identity_new();
    struct mg_buf sub;
    mg_buf_init(&sub, 1024);
    mg_buf_appendf(&sub, "user:%s", u.email);
    free(id->subject);
    id->subject = mg_buf_steal(&sub, NULL);
    free(id->email);
    id->email = mg_xstrdup(u.email);
    free(id->name);
    id->name = mg_xstrdup(u.name ? u.name : "");
    free(id->idp);
    id->idp = mg_xstrdup("builtin");
    id->method = MG_AUTH_OAUTH;
    json_error_t je;
    json_t *g = json_loads(u.groups_json ? u.groups_json : "[]", 0, &je);
    if (g)
        mg_identity_set_groups_json(id, g);
    json_decref(g);
    o->id_out = id;
out:
    mg_store_user_fini(&u);
    return 0;
}

static void signin_done(struct oreq *o, int status)
{
    if (o->password) {
        OPENSSL_cleanse(o->password, strlen(o->password));
        free(o->password);
        o->password = NULL;
    }
    if (status < 0) {
        mg_oauth__page_error(o, 503, "Sign-in unavailable",
                             "The identity store does not answer. Try again in a moment.");
        return;
    }
    if (o->job_error && strcmp(o->job_error, "locked") == 0) {
        show_signin(o, 429, "Too many failed attempts. Wait a few minutes and try again.",
                    o->email);
        return;
    }
    if (o->job_error || o->id_out == NULL) {
        mg_log_info("built-in sign-in failed for %s", o->email);
        show_signin(o, 401, "The email or password is not correct.", o->email);
        return;
    }
    struct mg_buf h;
    mg_buf_init(&h, 8192);
    if (make_session(o, o->id_out, &h) < 0) {
        mg_buf_fini(&h);
        mg_oauth__page_error(o, 500, "Sign-in failed",
                             "Your account has too many groups to keep in a session.");
        return;
    }
    redirect_local(o, "consent", o->sealed_req, h.data);
    mg_buf_fini(&h);
}

static void signin_post(struct oreq *o)
{
    const char *req = NULL, *email = NULL, *pw = NULL;
    if (mg_form_get(&o->form, "req", &req) < 0 || !mg_oauth__open_authreq(o, req)) {
        mg_oauth__page_error(o, 400, "Sign-in expired",
                             "This sign-in request is invalid or has expired. Go back to the "
                             "application and start again.");
        return;
    }
    if (!csrf_ok(o)) {
        mg_oauth__page_error(o, 403, "Form expired",
                             "The form could not be verified (CSRF). Reload the page and try "
                             "again.");
        return;
    }
    if (!o->p->gw->conf->oauth.builtin_accounts) {
        mg_oauth__page_error(o, 403, "Not available", "Built-in accounts are disabled here.");
        return;
    }
    if (mg_form_get(&o->form, "email", &email) < 0 || mg_form_get(&o->form, "password", &pw) < 0 ||
        *email == '\0' || *pw == '\0' || strlen(email) > 320 || strlen(pw) > 1024) {
        show_signin(o, 400, "Enter your email and password.", email);
        return;
    }
    o->email = mg_xstrdup(email);
    o->password = mg_xstrdup(pw);
    mg_oauth__run(o, signin_work, signin_done);
}

/* --- consent ---------------------------------------------------------------------- */

static int consent_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    struct mg_store_consent c = {
        .subject = o->session->subject,
        .client_id = o->ar.client_id,
        .audience = o->ar.resource,
        .scopes = o->ar.scope,
        .created_at = o->now,
        .expires_at = o->now + (int64_t)(o->p->gw->conf->oauth.consent_ttl_ms / 1000),
    };
    int rc = mg_store_consent_put(st, &c);
    if (rc == 0)
        rc = mg_oauth__issue_code(st, o, o->session);
    return rc;
}

static void consent_done(struct oreq *o, int status)
{
    if (status < 0) {
        mg_oauth__page_error(o, 503, "Sign-in unavailable",
                             "The identity store does not answer. Try again in a moment.");
        return;
    }
    mg_oauth__redirect_back(o, o->code, NULL, NULL, o->set_cookie);
}

/* After sign-in at a provider (provider.c) or with a session: remember the
 * consent given before the redirect and issue the code. */
void mg_oauth__consent_granted(struct oreq *o)
{
    mg_oauth__run(o, consent_work, consent_done);
}

static void consent_page(struct oreq *o)
{
    const char *req = NULL;
    if (mg_form_get(&o->form, "req", &req) < 0 || !mg_oauth__open_authreq(o, req)) {
        mg_oauth__page_error(o, 400, "Sign-in expired",
                             "This sign-in request is invalid or has expired. Go back to the "
                             "application and start again.");
        return;
    }
    o->session = session_of(o);
    if (o->session == NULL) {
        redirect_local(o, "signin", o->sealed_req, NULL);
        return;
    }
    show_consent(o, NULL);
}

static void consent_post(struct oreq *o)
{
    const char *req = NULL, *decision = NULL, *provider = NULL;
    if (mg_form_get(&o->form, "req", &req) < 0 || !mg_oauth__open_authreq(o, req)) {
        mg_oauth__page_error(o, 400, "Sign-in expired",
                             "This sign-in request is invalid or has expired. Go back to the "
                             "application and start again.");
        return;
    }
    if (!csrf_ok(o)) {
        mg_oauth__page_error(o, 403, "Form expired",
                             "The form could not be verified (CSRF). Reload the page and try "
                             "again.");
        return;
    }
    if (mg_form_get(&o->form, "decision", &decision) < 0 ||
        (strcmp(decision, "allow") != 0 && strcmp(decision, "deny") != 0)) {
        mg_oauth__page_error(o, 400, "Invalid form", "Choose Allow or Deny.");
        return;
    }
    if (strcmp(decision, "deny") == 0) {
        mg_oauth__redirect_back(o, NULL, "access_denied", "the user denied the request", NULL);
        return;
    }
    if (mg_form_get(&o->form, "provider", &provider) == 0 && *provider) {
        o->provider = mg_xstrdup(provider);
        mg_oauth__provider_begin(o);
        return;
    }
    o->session = session_of(o);
    if (o->session == NULL) {
        redirect_local(o, "signin", o->sealed_req, NULL);
        return;
    }
    mg_oauth__consent_granted(o);
}

static void provider_post(struct oreq *o)
{
    const char *req = NULL, *provider = NULL;
    if (mg_form_get(&o->form, "req", &req) < 0 || !mg_oauth__open_authreq(o, req)) {
        mg_oauth__page_error(o, 400, "Sign-in expired",
                             "This sign-in request is invalid or has expired. Go back to the "
                             "application and start again.");
        return;
    }
    if (!csrf_ok(o)) {
        mg_oauth__page_error(o, 403, "Form expired",
                             "The form could not be verified (CSRF). Reload the page and try "
                             "again.");
        return;
    }
    const struct mg_conf *conf = o->p->gw->conf;
    bool known = false;
    if (mg_form_get(&o->form, "provider", &provider) == 0)
        for (size_t i = 0; i < conf->n_idps; i++)
            known = known || strcmp(conf->idps[i].name, provider) == 0;
    if (!known) {
        mg_oauth__page_error(o, 400, "Unknown provider", "Choose one of the sign-in options.");
        return;
    }
    /* Consent first: nothing goes to the provider before the person has
     * approved this client for this route (confused-deputy rule). */
    show_consent(o, provider);
}

static void signin_page(struct oreq *o)
{
    const char *req = NULL;
    if (mg_form_get(&o->form, "req", &req) < 0 || !mg_oauth__open_authreq(o, req)) {
        mg_oauth__page_error(o, 400, "Sign-in expired",
                             "This sign-in request is invalid or has expired. Go back to the "
                             "application and start again.");
        return;
    }
    show_signin(o, 200, NULL, NULL);
}

static void signout(struct oreq *o)
{
    struct mg_buf h;
    mg_buf_init(&h, 1024);
    session_cookie(o, NULL, 0, &h);
    const struct mg_tmpl_var v[] = {MG_TMPL_STR("issuer", o->p->gw->issuer)};
    render(o, 200, "signedout.html", v, MG_ARRAY_LEN(v), h.data);
    mg_buf_fini(&h);
}

/* Sets the session for an identity a provider vouched for, then issues the
 * code (consent was given before the redirect). */
void mg_oauth__provider_signed_in(struct oreq *o, struct mg_identity *id)
{
    struct mg_buf h;
    mg_buf_init(&h, 8192);
    mg_identity_unref(o->session);
    o->session = id;
    if (make_session(o, id, &h) < 0) {
        mg_buf_fini(&h);
        mg_oauth__page_error(o, 500, "Sign-in failed",
                             "Your account has too many groups to keep in a session.");
        return;
    }
    /* The provider flow's cookie has done its job. */
    mg_buf_appendf(&h, "Set-Cookie: _mcpgate_oidc=; Path=" OAUTH_PREFIX "; Max-Age=0\r\n");
    /* The cookies ride on the final redirect. */
    free(o->set_cookie);
    o->set_cookie = mg_buf_steal(&h, NULL);
    mg_oauth__run(o, consent_work, consent_done);
}

bool mg_oauth__pages(struct oreq *o, const char *ep)
{
    int m = o->p->req->method;
    if (strcmp(ep, "oauth/authorize") == 0 && (m == HTTP_GET || m == HTTP_HEAD))
        authorize(o);
    else if (strcmp(ep, "signin") == 0 && m == HTTP_GET)
        signin_page(o);
    else if (strcmp(ep, "signin") == 0 && m == HTTP_POST)
        signin_post(o);
    else if (strcmp(ep, "signin/provider") == 0 && m == HTTP_POST)
        provider_post(o);
    else if (strcmp(ep, "consent") == 0 && m == HTTP_GET)
        consent_page(o);
    else if (strcmp(ep, "consent") == 0 && m == HTTP_POST)
        consent_post(o);
    else if (strcmp(ep, "oidc/callback") == 0 && m == HTTP_GET)
        mg_oauth__provider_callback(o);
    else if (strcmp(ep, "signout") == 0 && (m == HTTP_GET || m == HTTP_POST))
        signout(o);
    else
        return false;
    return true;
}

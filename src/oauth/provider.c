/* Sign-in through OpenID Connect providers: after the person has consented
 * (pages.c), the browser goes to the provider with state, nonce and PKCE;
 * the callback redeems the code (authn/oidc.c verifies the ID token) and
 * the flow continues as after a built-in sign-in. The flow's secrets (the
 * pending authorization request, nonce, PKCE verifier) travel sealed in a
 * short-lived cookie bound to a random `state`, so the callback may land on
 * any instance and `state` stays short (providers limit its length). */
#include "oauth/oauth_int.h"

#include "authn/oidc.h"
#include "core/log.h"
#include "net/fetch.h"

#define OIDC_STATE_TTL_SEC 600
#define LIVE_CHECK_MS      3000
#define OIDC_COOKIE        "_mcpgate_oidc"

static struct mg_oidc_provider *find_provider(struct oreq *o, const char *name)
{
    struct oauth_ext *x = mg_oauth__ext(o->a);
    for (size_t i = 0; i < mg_oauth__n_providers(x); i++) {
        struct mg_oidc_provider *p = mg_oauth__provider(x, i);
        if (strcmp(mg_oidc_provider_name(p), name) == 0)
            return p;
    }
    return NULL;
}

static void callback_url(struct oreq *o, struct mg_buf *b)
{
    mg_buf_appendf(b, "%s" OAUTH_PREFIX "oidc/callback", o->p->gw->issuer);
}

static void unreachable(struct oreq *o, const char *name, const char *why)
{
    mg_log_warn("identity provider %s: %s", name, why ? why : "unavailable");
    struct mg_buf m;
    mg_buf_init(&m, 2048);
    mg_buf_appendf(&m,
                   "The sign-in provider %s cannot be used right now. Try again later, or "
                   "choose another way to sign in.",
                   name);
    mg_oauth__page_error(o, 502, "Sign-in provider unavailable", m.data);
    mg_buf_fini(&m);
}

struct pstate {
    char nonce[MG_OIDC_SECRET_BUF];
    char verifier[MG_OIDC_SECRET_BUF];
    char state[MG_OIDC_SECRET_BUF];
    char *sealed_flow; /* the cookie's value */
};

static void pstate_free(void *v)
{
    struct pstate *ps = v;
    if (ps == NULL)
        return;
    OPENSSL_cleanse(ps, offsetof(struct pstate, sealed_flow));
    free(ps->sealed_flow);
    free(ps);
}

static void discovered(void *ud, int status, struct mg_oidc_discovery *d, const char *error)
{
    struct oreq *o = ud;
    o->oidc_req = NULL;
    if (!mg_gw__req_resume(o->p)) {
        mg_oidc_discovery_unref(d);
        return;
    }
    struct pstate *ps = o->ext;
    struct mg_oidc_provider *prov = find_provider(o, o->provider);
    if (status < 0 || prov == NULL) {
        unreachable(o, o->provider, error);
        return;
    }
    struct mg_buf cb, loc;
    mg_buf_init(&cb, 4096);
    mg_buf_init(&loc, 16384);
    callback_url(o, &cb);
    mg_buf_appends(&loc, "Location: ");
    int rc = mg_oidc_authorize_url(prov, d, cb.data, ps->state, ps->nonce, ps->verifier, &loc);
    mg_oidc_discovery_unref(d);
    if (rc < 0) {
        mg_buf_fini(&cb);
        mg_buf_fini(&loc);
        mg_oauth__page_error(o, 500, "Sign-in failed", "The provider request is too large.");
        return;
    }
    mg_buf_appendf(&loc,
                   "\r\nCache-Control: no-store\r\nSet-Cookie: " OIDC_COOKIE
                   "=%s; Path=" OAUTH_PREFIX "; HttpOnly; SameSite=Lax; Max-Age=%d%s\r\n",
                   ps->sealed_flow, OIDC_STATE_TTL_SEC,
                   o->p->req->conn->srv->is_tls ? "; Secure" : "");
    mg_http_reply(o->p->req, 303, "text/plain; charset=utf-8", loc.data, "", 0);
    mg_buf_fini(&cb);
    mg_buf_fini(&loc);
}

static void live_checked(void *ud, const struct mg_fetch_result *res)
{
    struct oreq *o = ud;
    o->fetch = NULL;
    if (!mg_gw__req_resume(o->p))
        return;
    if (res->status < 0 || res->http_status != 200) {
        unreachable(o, o->provider,
                    res->status < 0 ? res->error : "the discovery document did not answer 200");
        return;
    }
    struct mg_oidc_provider *prov = find_provider(o, o->provider);
    o->p->pending++;
    if (prov == NULL || mg_oidc_discover(prov, &o->p->w->pool, discovered, o, &o->oidc_req) < 0) {
        o->p->pending--;
        unreachable(o, o->provider, "cannot start discovery");
    }
}

void mg_oauth__provider_begin(struct oreq *o)
{
    struct mg_oidc_provider *prov = find_provider(o, o->provider);
    if (prov == NULL) {
        mg_oauth__page_error(o, 400, "Unknown provider", "Choose one of the sign-in options.");
        return;
    }
    struct pstate *ps = mg_xcalloc(1, sizeof *ps);
    o->ext = ps;
    o->ext_free = pstate_free;
    char unused[MG_OIDC_SECRET_BUF];
    if (mg_oidc_new_secrets(ps->nonce, ps->verifier) < 0 ||
        mg_oidc_new_secrets(ps->state, unused) < 0) {
        mg_oauth__page_error(o, 500, "Sign-in failed", "No randomness available.");
        return;
    }
    OPENSSL_cleanse(unused, sizeof unused);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "st", ps->state, "q", o->sealed_req, "p",
                          o->provider, "n", ps->nonce, "v", ps->verifier);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    ps->sealed_flow = mg_xmalloc(MG_SEAL_BUF);
    struct mg_seal_key k;
    mg_seal_key_init(&k, o->a->seal_key);
    int rc = mg_seal_seal(&k, "oidc", o->now + OIDC_STATE_TTL_SEC, text, strlen(text),
                          ps->sealed_flow, MG_SEAL_BUF);
    mg_seal_key_fini(&k);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (rc < 0) {
        mg_oauth__page_error(o, 400, "Sign-in failed",
                             "The sign-in request is too large to pass to the provider.");
        return;
    }
    /* A live check first: the discovery document is cached for an hour, and
     * a provider that is down must give a clear page here, not a browser
     * error at the provider's door. Sign-ins are rare; one short request
     * each is cheap. */
    const struct mg_conf_idp *ci = NULL;
    for (size_t i = 0; i < o->p->gw->conf->n_idps; i++)
        if (strcmp(o->p->gw->conf->idps[i].name, o->provider) == 0)
            ci = &o->p->gw->conf->idps[i];
    struct mg_fetch_opts fo = {
        .timeout_ms = LIVE_CHECK_MS,
        .max_bytes = MG_OIDC_MAX_RESPONSE,
        .ca_file = ci ? ci->ca_file : NULL,
        .allow_http = strncmp(mg_oidc_provider_discovery_url(prov), "http://", 7) == 0,
    };
    const char *why = NULL;
    o->p->pending++;
    if (mg_fetch(&o->p->w->pool, mg_oidc_provider_discovery_url(prov), &fo, live_checked, o,
                 &o->fetch, &why) < 0) {
        o->p->pending--;
        unreachable(o, o->provider, why);
    }
}

static void exchanged(void *ud, int status, struct mg_identity *id, const char *error)
{
    struct oreq *o = ud;
    o->oidc_req = NULL;
    if (!mg_gw__req_resume(o->p)) {
        mg_identity_unref(id);
        return;
    }
    if (status < 0 || id == NULL) {
        mg_log_warn("identity provider %s: sign-in failed: %s", o->provider,
                    error ? error : mg_strstatus(status));
        if (status == MG_EDENIED || status == MG_EPROTO)
            mg_oauth__page_error(o, 400, "Sign-in failed",
                                 "The sign-in provider's answer could not be verified.");
        else
            unreachable(o, o->provider, error);
        return;
    }
    id->method = MG_AUTH_OAUTH;
    mg_oauth__provider_signed_in(o, id);
}

void mg_oauth__provider_callback(struct oreq *o)
{
    const char *state = NULL, *code = NULL, *err = NULL;
    if (mg_form_get(&o->form, "state", &state) < 0) {
        mg_oauth__page_error(o, 400, "Sign-in failed", "The provider's answer has no state.");
        return;
    }
    size_t clen = 0;
    const char *flow = mg_oauth__cookie(o->p->req->head, OIDC_COOKIE, &clen);
    uint8_t *buf = mg_xmalloc(MG_SEAL_MAX_DATA + 1);
    size_t n = 0;
    struct mg_seal_key k;
    mg_seal_key_init(&k, o->a->seal_key);
    int rc =
        flow ? mg_seal_open(&k, "oidc", o->now, flow, clen, buf, MG_SEAL_MAX_DATA, &n, NULL, NULL)
             : MG_EDENIED;
    mg_seal_key_fini(&k);
    json_t *j = NULL;
    if (rc == 0) {
        json_error_t je;
        j = json_loadb((const char *)buf, n, 0, &je);
    }
    OPENSSL_cleanse(buf, MG_SEAL_MAX_DATA + 1);
    free(buf);
    const char *q = json_string_value(json_object_get(j, "q"));
    const char *pname = json_string_value(json_object_get(j, "p"));
    const char *nonce = json_string_value(json_object_get(j, "n"));
    const char *verifier = json_string_value(json_object_get(j, "v"));
    const char *want = json_string_value(json_object_get(j, "st"));
    /* The state must be the one this browser's flow sent (RFC 6749 §10.12). */
    bool state_ok =
        want && strlen(want) == strlen(state) && mg_ct_equal(want, state, strlen(state));
    if (!q || !pname || !nonce || !verifier || !state_ok || !mg_oauth__open_authreq(o, q)) {
        mg_log_info("provider callback refused: %s",
                    flow == NULL ? "no flow cookie"
                    : rc != 0    ? "the flow cookie does not open (altered or expired)"
                    : !state_ok  ? "state does not match this browser's flow"
                                 : "the pending authorization request expired");
        json_decref(j);
        mg_oauth__page_error(o, 400, "Sign-in expired",
                             "This sign-in is invalid or has expired. Go back to the application "
                             "and start again.");
        return;
    }
    o->provider = mg_xstrdup(pname);
    if (mg_form_get(&o->form, "error", &err) == 0) {
        json_decref(j);
        /* The person cancelled at the provider, or it refused: tell the client. */
        mg_oauth__redirect_back(o, NULL, "access_denied", "the sign-in provider refused", NULL);
        return;
    }
    struct mg_oidc_provider *prov = find_provider(o, pname);
    if (prov == NULL || mg_form_get(&o->form, "code", &code) < 0) {
        json_decref(j);
        mg_oauth__page_error(o, 400, "Sign-in failed", "The provider's answer has no code.");
        return;
    }
    struct mg_buf cb;
    mg_buf_init(&cb, 4096);
    callback_url(o, &cb);
    struct mg_oidc_exchange_params x = {
        .code = code, .redirect_uri = cb.data, .code_verifier = verifier, .nonce = nonce};
    o->p->pending++;
    rc = mg_oidc_exchange(prov, &o->p->w->pool, &x, exchanged, o, &o->oidc_req);
    json_decref(j);
    mg_buf_fini(&cb);
    if (rc < 0) {
        o->p->pending--;
        unreachable(o, pname, "cannot start the code exchange");
    }
}

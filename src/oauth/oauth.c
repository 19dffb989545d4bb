/* The authorization server's entry point and shared machinery: dispatch on the
 * issuer's host, RFC 8414 metadata, client lookup (configuration, dynamic
 * registrations in the store, client ID metadata documents fetched behind the
 * SSRF guard), and the store-job plumbing every endpoint uses. */
#include "oauth/oauth_int.h"

#include "authn/oidc.h"
#include "core/log.h"
#include "net/fetch.h"
#include "web/tmpl.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define DOC_CACHE_SLOTS   256
#define DOC_CACHE_TTL_SEC 3600

struct doc_entry {
    char *url;
    char *json; /* the validated document */
    int64_t fetched_at;
};

struct oauth_ext {
    struct oclient *clients; /* from the configuration */
    size_t n_clients;
    struct mg_tmpl_set *pages;
    pthread_mutex_t doc_mu;
    struct doc_entry docs[DOC_CACHE_SLOTS];
    struct mg_fetch_cache *discovery;
    struct mg_oidc_provider **providers;
    size_t n_providers;
};

static char *read_secret(const char *file, const char *env, struct mg_buf *err);

size_t mg_oauth__n_providers(const struct oauth_ext *x)
{
    return x->n_providers;
}

struct mg_oidc_provider *mg_oauth__provider(const struct oauth_ext *x, size_t i)
{
    return x->providers[i];
}

static bool host_is_loopback(const char *url)
{
    static const char *const pre[] = {"http://127.", "http://localhost", "http://[::1]"};
    for (size_t i = 0; i < MG_ARRAY_LEN(pre); i++)
        if (strncmp(url, pre[i], strlen(pre[i])) == 0)
            return true;
    return false;
}

static int load_providers(struct mg_authsvc *a, struct oauth_ext *x, const struct mg_conf *conf,
                          struct mg_buf *err)
{
    x->discovery = mg_oidc_discovery_cache_new(NULL);
    x->providers = mg_xcalloc(conf->n_idps ? conf->n_idps : 1, sizeof *x->providers);
    for (size_t i = 0; i < conf->n_idps; i++) {
        const struct mg_conf_idp *ci = &conf->idps[i];
        char *secret = read_secret(ci->client_secret_file, ci->client_secret_env, err);
        if (secret == NULL) {
            mg_buf_appendf(err, " (identity provider %s)", ci->name);
            return MG_EINVAL;
        }
        struct mg_buf scopes;
        mg_buf_init(&scopes, 4096);
        for (size_t j = 0; j < ci->n_scopes; j++)
            mg_buf_appendf(&scopes, "%s%s", j ? " " : "", ci->scopes[j]);
        struct mg_oidc_provider_conf pc = {
            .name = ci->name,
            .display_name = ci->display_name,
            .issuer = ci->issuer,
            .client_id = ci->client_id,
            .client_secret = secret,
            .scopes = scopes.data,
            .email_claim = ci->claim_email,
            .name_claim = ci->claim_name,
            .groups_claim = ci->claim_groups,
            .token_auth = ci->client_secret_post ? MG_OIDC_AUTH_POST : MG_OIDC_AUTH_BASIC,
            .ca_file = ci->ca_file,
            .allow_http = host_is_loopback(ci->issuer),
            .timeout_ms = conf->connect_timeout_ms * 2,
        };
        int rc = mg_oidc_provider_new(&pc, x->discovery, a->jwks, &x->providers[i], err);
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
        mg_buf_fini(&scopes);
        if (rc < 0) {
            mg_buf_appendf(err, " (identity provider %s)", ci->name);
            return rc;
        }
        x->n_providers++;
    }
    return 0;
}

struct oauth_ext *mg_oauth__ext(struct mg_authsvc *a)
{
    return a->ext;
}

int64_t mg_oauth__now(void)
{
    return (int64_t)time(NULL);
}

void mg_oauth__client_fini(struct oclient *c)
{
    free(c->client_id);
    free(c->name);
    json_decref(c->redirect_uris);
    json_decref(c->groups);
    OPENSSL_cleanse(c->secret_hash, sizeof c->secret_hash);
    memset(c, 0, sizeof *c);
}

static char *read_secret(const char *file, const char *env, struct mg_buf *err)
{
    if (env) {
        const char *v = getenv(env);
        if (v == NULL || *v == '\0') {
            mg_buf_appendf(err, "environment variable %s is not set", env);
            return NULL;
        }
        return mg_xstrdup(v);
    }
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        mg_buf_appendf(err, "cannot read %s: %s", file, strerror(errno));
        return NULL;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    if (n == 0) {
        mg_buf_appendf(err, "%s is empty", file);
        return NULL;
    }
    char *s = mg_xstrdup(buf);
    OPENSSL_cleanse(buf, sizeof buf);
    return s;
}

/* web_dir unset: $MCPGATE_WEB_DIR, else web/ beside the directory holding
 * the binary (build/mcpgate -> web/ in a checkout), else ./web. */
static char *web_dir_default(void)
{
    const char *env = getenv("MCPGATE_WEB_DIR");
    if (env && *env)
        return mg_xstrdup(env);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            struct mg_buf b;
            mg_buf_init(&b, sizeof exe + 16);
            mg_buf_appendf(&b, "%s/../web/signin.html", exe);
            bool ok = access(b.data, R_OK) == 0;
            mg_buf_reset(&b);
            mg_buf_appendf(&b, "%s/../web", exe);
            if (ok)
                return mg_buf_steal(&b, NULL);
            mg_buf_fini(&b);
        }
    }
    return mg_xstrdup("web");
}

static const char *const page_names[] = {"signin.html", "consent.html", "signedout.html",
                                         "error.html"};

int mg_oauth_init(struct mg_authsvc *a, const struct mg_conf *conf, struct mg_buf *err)
{
    struct oauth_ext *x = mg_xcalloc(1, sizeof *x);
    pthread_mutex_init(&x->doc_mu, NULL);
    a->ext = x;
    const struct mg_conf_oauth *oc = &conf->oauth;
    x->clients = mg_xcalloc(oc->n_clients ? oc->n_clients : 1, sizeof *x->clients);
    for (size_t i = 0; i < oc->n_clients; i++) {
        const struct mg_conf_oauth_client *cc = &oc->clients[i];
        struct oclient *c = &x->clients[x->n_clients++];
        c->client_id = mg_xstrdup(cc->client_id);
        c->name = mg_xstrdup(cc->name ? cc->name : cc->client_id);
        c->redirect_uris = json_array();
        for (size_t j = 0; j < cc->n_redirect_uris; j++)
            json_array_append_new(c->redirect_uris, json_string(cc->redirect_uris[j]));
        c->groups = json_array();
        for (size_t j = 0; j < cc->n_groups; j++)
            json_array_append_new(c->groups, json_string(cc->groups[j]));
        c->allow_code = c->allow_refresh = cc->n_redirect_uris > 0;
        c->allow_cc = cc->client_credentials;
        if (cc->secret_file || cc->secret_env) {
            char *s = read_secret(cc->secret_file, cc->secret_env, err);
            if (s == NULL) {
                mg_buf_appendf(err, " (oauth client %s)", cc->client_id);
                return MG_EINVAL;
            }
            SHA256((const unsigned char *)s, strlen(s), c->secret_hash);
            OPENSSL_cleanse(s, strlen(s));
            free(s);
            c->confidential = true;
        }
    }
    a->jwks = mg_jwks_cache_new(NULL);
    int prc = load_providers(a, x, conf, err);
    if (prc < 0)
        return prc;
    char *dir = conf->web_dir ? mg_xstrdup(conf->web_dir) : web_dir_default();
    char *terr = NULL;
    int rc = mg_tmpl_set_load(dir, 0, &x->pages, &terr);
    if (rc < 0) {
        mg_buf_appendf(err, "web pages in %s: %s", dir, terr ? terr : mg_strstatus(rc));
        free(terr);
        free(dir);
        return MG_EINVAL;
    }
    free(dir);
    for (size_t i = 0; i < MG_ARRAY_LEN(page_names); i++) {
        if (mg_tmpl_set_get(x->pages, page_names[i]) == NULL) {
            mg_buf_appendf(err, "web pages: %s is missing", page_names[i]);
            return MG_EINVAL;
        }
    }
    return 0;
}

void mg_oauth_fini(struct mg_authsvc *a)
{
    struct oauth_ext *x = a ? a->ext : NULL;
    if (x == NULL)
        return;
    for (size_t i = 0; i < x->n_clients; i++)
        mg_oauth__client_fini(&x->clients[i]);
    free(x->clients);
    for (size_t i = 0; i < DOC_CACHE_SLOTS; i++) {
        free(x->docs[i].url);
        free(x->docs[i].json);
    }
    mg_tmpl_set_free(x->pages);
    for (size_t i = 0; i < x->n_providers; i++)
        mg_oidc_provider_unref(x->providers[i]);
    free(x->providers);
    mg_fetch_cache_free(x->discovery);
    mg_jwks_cache_free(a->jwks);
    a->jwks = NULL;
    pthread_mutex_destroy(&x->doc_mu);
    free(x);
    a->ext = NULL;
}

struct mg_tmpl_set *mg_oauth__pages_set(struct mg_authsvc *a)
{
    return mg_oauth__ext(a)->pages;
}

/* --- replies ---------------------------------------------------------------------- */

void mg_oauth__reply_json(struct oreq *o, int status, json_t *doc, const char *extra_headers)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct mg_buf h;
    mg_buf_init(&h, 4096);
    /* RFC 6749 §5.1: token responses must not be cached; nothing here should be. */
    mg_buf_appends(&h, "Cache-Control: no-store\r\nPragma: no-cache\r\n");
    if (extra_headers)
        mg_buf_appends(&h, extra_headers);
    mg_http_reply(o->p->req, status, "application/json", h.data, body, strlen(body));
    mg_buf_fini(&h);
    free(body);
}

void mg_oauth__reply_oerror(struct oreq *o, int status, const char *error, const char *desc)
{
    o->p->error = desc;
    json_t *doc = json_pack("{s:s, s:s}", "error", error, "error_description", desc);
    const char *hdr = NULL;
    if (status == 401)
        hdr = "WWW-Authenticate: Basic realm=\"mcpgate\"\r\n";
    mg_oauth__reply_json(o, status, doc, hdr);
}

/* --- store jobs ------------------------------------------------------------------ */

static void job_done(void *arg, int status)
{
    struct oreq *o = arg;
    if (!mg_gw__req_resume(o->p))
        return; /* the client left; o was freed with the request */
    o->next(o, status);
}

void mg_oauth__run(struct oreq *o, int (*work)(struct mg_store *, void *), ostep next)
{
    o->next = next;
    o->p->pending++;
    if (mg_store_pool_submit(o->a->pool, &o->p->w->loop, work, job_done, o) < 0) {
        o->p->pending--;
        next(o, MG_ELIMIT);
    }
}

/* --- clients --------------------------------------------------------------------- */

static bool is_loopback_http(const char *uri, const char **host_end, const char **host_start)
{
    static const char *const hosts[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
    for (size_t i = 0; i < MG_ARRAY_LEN(hosts); i++) {
        size_t n = strlen(hosts[i]);
        if (strncmp(uri, hosts[i], n) == 0 && (uri[n] == ':' || uri[n] == '/' || uri[n] == '\0')) {
            *host_start = uri;
            *host_end = uri + n;
            return true;
        }
    }
    return false;
}

/* RFC 8252 §7.3: for loopback redirect URIs the port is chosen at run time
 * and any port must be accepted; everything else must match exactly. */
static bool redirect_matches(const char *reg, const char *uri)
{
    if (strcmp(reg, uri) == 0)
        return true;
    const char *re, *rs, *ue, *us;
    if (!is_loopback_http(reg, &re, &rs) || !is_loopback_http(uri, &ue, &us))
        return false;
    if (re - rs != ue - us || memcmp(rs, us, (size_t)(re - rs)) != 0)
        return false;
    if (*re == ':')
        re += strspn(re + 1, "0123456789") + 1;
    if (*ue == ':') {
        size_t d = strspn(ue + 1, "0123456789");
        if (d == 0 || d > 5)
            return false;
        ue += d + 1;
    }
    return strcmp(re, ue) == 0;
}

bool mg_oauth__redirect_ok(const struct oclient *c, const char *uri)
{
    size_t i;
    json_t *v;
    json_array_foreach(c->redirect_uris, i, v)
    {
        if (json_is_string(v) && redirect_matches(json_string_value(v), uri))
            return true;
    }
    return false;
}

const struct mg_route_rt *mg_oauth__route_for_resource(const struct mg_gw *gw, const char *res)
{
    /* Exact match first, then the route that would serve that URL (a client
     * may name the endpoint under the route, e.g. .../sql/mcp). */
    for (size_t i = 0; i < gw->n_routes; i++) {
        const char *r = gw->routes[i].resource;
        size_t n = strlen(r);
        if (strcmp(r, res) == 0 || (n > 1 && r[n - 1] != '/' && strncmp(r, res, n) == 0 &&
                                    (res[n] == '\0' || (res[n] == '/' && res[n + 1] == '\0'))))
            return &gw->routes[i];
    }
    const struct mg_route_rt *best = NULL;
    for (size_t i = 0; i < gw->n_routes; i++) {
        const struct mg_route_rt *rt = &gw->routes[i];
        size_t on = strlen(rt->origin);
        if (strncmp(res, rt->origin, on) != 0 || (res[on] != '/' && res[on] != '\0'))
            continue;
        const char *path = res[on] ? res + on : "/";
        const char *pre = rt->conf->from.path;
        size_t pn = strlen(pre);
        if (strncmp(path, pre, pn) == 0 && (path[pn] == '/' || path[pn] == '\0') &&
            (best == NULL || pn > best->prefix_len))
            best = rt;
    }
    return best;
}

bool mg_oauth__scope_ok(const struct mg_route_rt *rt, const char *scope)
{
    for (const char *s = scope; *s;) {
        size_t len = strcspn(s, " ");
        bool found = false;
        for (size_t i = 0; i < rt->conf->n_scopes && !found; i++)
            found = strlen(rt->conf->scopes[i]) == len && memcmp(rt->conf->scopes[i], s, len) == 0;
        if (len > 0 && !found)
            return false;
        s += len;
        while (*s == ' ')
            s++;
    }
    return true;
}

static int client_from_row(struct oclient *c, const struct mg_store_client *row)
{
    json_error_t je;
    c->client_id = mg_xstrdup(row->client_id);
    c->name = mg_xstrdup(row->name && row->name[0] ? row->name : row->client_id);
    c->redirect_uris = json_loads(row->redirect_uris_json, JSON_REJECT_DUPLICATES, &je);
    json_t *meta =
        json_loads(row->metadata_json ? row->metadata_json : "{}", JSON_REJECT_DUPLICATES, &je);
    if (!json_is_array(c->redirect_uris) || !json_is_object(meta)) {
        json_decref(meta);
        return MG_EINVAL;
    }
    const char *sh = json_string_value(json_object_get(meta, "client_secret_hash"));
    if (sh && strlen(sh) == 2 * MG_TOKEN_HASH_LEN) {
        for (size_t i = 0; i < MG_TOKEN_HASH_LEN; i++) {
            unsigned v;
            if (sscanf(sh + 2 * i, "%2x", &v) != 1) {
                json_decref(meta);
                return MG_EINVAL;
            }
            c->secret_hash[i] = (uint8_t)v;
        }
        c->confidential = true;
    }
    c->allow_code = true;
    json_t *gt = json_object_get(meta, "grant_types");
    size_t i;
    json_t *v;
    c->allow_refresh = false;
    json_array_foreach(gt, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "refresh_token") == 0)
            c->allow_refresh = true;
        if (json_is_string(v) && strcmp(json_string_value(v), "client_credentials") == 0 &&
            c->confidential)
            c->allow_cc = true;
    }
    if (gt == NULL)
        c->allow_refresh = true;
    c->groups = json_array();
    json_decref(meta);
    return 0;
}

struct lookup_state {
    char *client_id;
    struct mg_store_client row;
    bool found;
};

static int client_get_work(struct mg_store *st, void *arg)
{
    struct oreq *o = arg;
    struct lookup_state *ls = o->lookup;
    int rc = mg_store_client_get(st, ls->client_id, &ls->row);
    if (rc == MG_ENOTFOUND)
        return 0;
    if (rc == 0)
        ls->found = true;
    return rc;
}

static void lookup_state_free(void *p)
{
    struct lookup_state *ls = p;
    if (ls == NULL)
        return;
    free(ls->client_id);
    if (ls->found)
        mg_store_client_fini(&ls->row);
    free(ls);
}

static void client_get_done(struct oreq *o, int status)
{
    struct lookup_state *ls = o->lookup;
    ostep next = o->after;
    if (status == 0 && ls->found && ls->row.kind != MG_STORE_CLIENT_METADATA_DOCUMENT) {
        if (client_from_row(&o->client, &ls->row) == 0)
            o->have_client = true;
        else
            mg_oauth__client_fini(&o->client);
    }
    lookup_state_free(ls);
    o->lookup = NULL;
    next(o, status);
}

/* --- client ID metadata documents ------------------------------------------------ */

/* draft-ietf-oauth-client-id-metadata-document: the client_id is an https
 * URL with a path, and the document it serves names itself. Only public
 * clients (token_endpoint_auth_method none). */
static const char *doc_validate(const char *url, const char *text, size_t len, json_t **out)
{
    json_error_t je;
    json_t *d = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    *out = NULL;
    if (!json_is_object(d)) {
        json_decref(d);
        return "the client metadata document is not a JSON object";
    }
    const char *why = NULL;
    const char *cid = json_string_value(json_object_get(d, "client_id"));
    json_t *ru = json_object_get(d, "redirect_uris");
    const char *am = json_string_value(json_object_get(d, "token_endpoint_auth_method"));
    if (cid == NULL || strcmp(cid, url) != 0)
        why = "the document's client_id does not equal its URL";
    else if (!json_is_array(ru) || json_array_size(ru) == 0 || json_array_size(ru) > 20)
        why = "the document needs 1 to 20 redirect_uris";
    else if (am && strcmp(am, "none") != 0)
        why = "only public clients (token_endpoint_auth_method none) may use a metadata document";
    else if (json_object_get(d, "client_secret") || json_object_get(d, "client_secret_expires_at"))
        why = "a metadata document must not carry a client secret";
    size_t i;
    json_t *v;
    json_array_foreach(ru, i, v)
    {
        if (!why && (!json_is_string(v) || json_string_length(v) > 2048))
            why = "redirect_uris must be strings";
    }
    if (why) {
        json_decref(d);
        return why;
    }
    *out = d;
    return NULL;
}

static bool doc_url_ok(const char *id)
{
    struct mg_fetch_url u;
    const char *why;
    if (strncmp(id, "https://", 8) != 0 || strlen(id) > 2048)
        return false;
    if (mg_fetch_url_parse(id, &u, &why) < 0 || !u.https)
        return false;
    /* The URL must have a path component (not just the origin) and no
     * fragment or dot segments. */
    return strcmp(u.target, "/") != 0 && strchr(id, '#') == NULL && strstr(id, "/./") == NULL &&
           strstr(id, "/../") == NULL;
}

static void client_from_doc(struct oclient *c, const char *url, json_t *d)
{
    c->client_id = mg_xstrdup(url);
    const char *name = json_string_value(json_object_get(d, "client_name"));
    c->name = mg_xstrdup(name && *name ? name : url);
    c->redirect_uris = json_incref(json_object_get(d, "redirect_uris"));
    c->allow_code = true;
    c->allow_refresh = true;
    c->groups = json_array();
}

static size_t doc_slot(const char *url)
{
    uint8_t h[32];
    SHA256((const unsigned char *)url, strlen(url), h);
    return ((size_t)h[0] | (size_t)h[1] << 8) % DOC_CACHE_SLOTS;
}

struct doc_fetch {
    struct oreq *o;
    ostep next;
    char *url;
};

static void doc_fetched(void *ud, const struct mg_fetch_result *res)
{
    struct doc_fetch *df = ud;
    struct oreq *o = df->o;
    o->fetch = NULL;
    ostep next = df->next;
    char *url = df->url;
    free(df);
    if (!mg_gw__req_resume(o->p)) {
        free(url);
        return;
    }
    const char *why = NULL;
    json_t *d = NULL;
    if (res->status < 0)
        why = res->error && *res->error ? res->error : mg_strstatus(res->status);
    else if (res->http_status != 200)
        why = "the client metadata document URL did not answer 200";
    else
        why = doc_validate(url, res->body, res->body_len, &d);
    if (why) {
        mg_log_info("client metadata document %s refused: %s", url, why);
        o->job_desc = why;
        free(url);
        next(o, MG_EDENIED);
        return;
    }
    client_from_doc(&o->client, url, d);
    o->have_client = true;
    struct oauth_ext *x = mg_oauth__ext(o->a);
    char *text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    size_t slot = doc_slot(url);
    pthread_mutex_lock(&x->doc_mu);
    free(x->docs[slot].url);
    free(x->docs[slot].json);
    x->docs[slot].url = url;
    x->docs[slot].json = text;
    x->docs[slot].fetched_at = mg_oauth__now();
    pthread_mutex_unlock(&x->doc_mu);
    next(o, 0);
}

static void doc_lookup(struct oreq *o, const char *url, ostep next)
{
    struct oauth_ext *x = mg_oauth__ext(o->a);
    const struct mg_conf_oauth *oc = &o->p->gw->conf->oauth;
    if (!oc->client_metadata_documents || !doc_url_ok(url)) {
        o->job_desc = "client metadata documents are not accepted here";
        next(o, MG_EDENIED);
        return;
    }
    size_t slot = doc_slot(url);
    char *cached = NULL;
    pthread_mutex_lock(&x->doc_mu);
    if (x->docs[slot].url && strcmp(x->docs[slot].url, url) == 0 &&
        mg_oauth__now() - x->docs[slot].fetched_at < DOC_CACHE_TTL_SEC)
        cached = mg_xstrdup(x->docs[slot].json);
    pthread_mutex_unlock(&x->doc_mu);
    if (cached) {
        json_t *d = NULL;
        if (doc_validate(url, cached, strlen(cached), &d) == NULL) {
            client_from_doc(&o->client, url, d);
            json_decref(d);
            o->have_client = true;
        }
        free(cached);
        next(o, 0);
        return;
    }
    struct doc_fetch *df = mg_xcalloc(1, sizeof *df);
    df->o = o;
    df->next = next;
    df->url = mg_xstrdup(url);
    static const char *const hdrs[] = {"Accept: application/json", NULL};
    struct mg_fetch_opts fo = {
        .headers = hdrs,
        .timeout_ms = oc->client_metadata_timeout_ms,
        .max_bytes = oc->client_metadata_max_bytes,
        .ca_file = oc->client_metadata_ca_file,
        .block_private = !oc->client_metadata_allow_private,
    };
    const char *why = NULL;
    o->p->pending++;
    if (mg_fetch(&o->p->w->pool, url, &fo, doc_fetched, df, &o->fetch, &why) < 0) {
        o->p->pending--;
        free(df->url);
        free(df);
        o->job_desc = why ? why : "cannot fetch the client metadata document";
        next(o, MG_EDENIED);
    }
}

void mg_oauth__client_lookup(struct oreq *o, const char *client_id, ostep next)
{
    struct oauth_ext *x = mg_oauth__ext(o->a);
    o->have_client = false;
    if (strlen(client_id) > 2048) {
        next(o, 0);
        return;
    }
    for (size_t i = 0; i < x->n_clients; i++) {
        const struct oclient *c = &x->clients[i];
        if (strcmp(c->client_id, client_id) == 0) {
            o->client = *c;
            o->client.client_id = mg_xstrdup(c->client_id);
            o->client.name = mg_xstrdup(c->name);
            o->client.redirect_uris = json_incref(c->redirect_uris);
            o->client.groups = json_incref(c->groups);
            o->have_client = true;
            next(o, 0);
            return;
        }
    }
    if (strncmp(client_id, "https://", 8) == 0) {
        doc_lookup(o, client_id, next);
        return;
    }
    struct lookup_state *ls = mg_xcalloc(1, sizeof *ls);
    ls->client_id = mg_xstrdup(client_id);
    o->lookup = ls;
    o->after = next;
    mg_oauth__run(o, client_get_work, client_get_done);
}

/* --- cookies --------------------------------------------------------------------- */

const char *mg_oauth__cookie(const struct mg_http_head *h, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct mg_http_header *x = &h->headers[i];
        if (!mg_str_ieq(x->name, x->name_len, "cookie"))
            continue;
        const char *s = x->value, *end = x->value + x->value_len;
        while (s < end) {
            while (s < end && (*s == ' ' || *s == ';'))
                s++;
            const char *e = memchr(s, ';', (size_t)(end - s));
            if (e == NULL)
                e = end;
            if ((size_t)(e - s) > nl && memcmp(s, name, nl) == 0 && s[nl] == '=') {
                *len = (size_t)(e - s) - nl - 1;
                return s + nl + 1;
            }
            s = e;
        }
    }
    return NULL;
}

/* --- metadata -------------------------------------------------------------------- */

static void serve_metadata(struct oreq *o)
{
    const struct mg_gw *gw = o->p->gw;
    const struct mg_conf_oauth *oc = &gw->conf->oauth;
    const char *iss = gw->issuer;
    struct mg_buf u;
    mg_buf_init(&u, 4096);
#define EP(path) (mg_buf_reset(&u), mg_buf_appendf(&u, "%s" OAUTH_PREFIX path, iss), u.data)
    json_t *d = json_object();
    json_object_set_new(d, "issuer", json_string(iss));
    json_object_set_new(d, "authorization_endpoint", json_string(EP("oauth/authorize")));
    json_object_set_new(d, "token_endpoint", json_string(EP("oauth/token")));
    if (oc->dynamic_registration)
        json_object_set_new(d, "registration_endpoint", json_string(EP("oauth/register")));
    json_object_set_new(d, "revocation_endpoint", json_string(EP("oauth/revoke")));
#undef EP
    mg_buf_fini(&u);
    json_object_set_new(d, "response_types_supported", json_pack("[s]", "code"));
    json_object_set_new(d, "response_modes_supported", json_pack("[s]", "query"));
    json_object_set_new(
        d, "grant_types_supported",
        json_pack("[s,s,s]", "authorization_code", "refresh_token", "client_credentials"));
    json_object_set_new(d, "code_challenge_methods_supported", json_pack("[s]", "S256"));
    json_t *am = json_pack("[s,s,s]", "none", "client_secret_basic", "client_secret_post");
    json_object_set_new(d, "token_endpoint_auth_methods_supported", json_incref(am));
    json_object_set_new(d, "revocation_endpoint_auth_methods_supported", am);
    json_t *scopes = json_array();
    for (size_t i = 0; i < gw->n_routes; i++)
        for (size_t j = 0; j < gw->routes[i].conf->n_scopes; j++) {
            const char *s = gw->routes[i].conf->scopes[j];
            bool dup = false;
            size_t k;
            json_t *v;
            json_array_foreach(scopes, k, v) dup = dup || strcmp(json_string_value(v), s) == 0;
            if (!dup)
                json_array_append_new(scopes, json_string(s));
        }
    json_object_set_new(d, "scopes_supported", scopes);
    json_object_set_new(d, "authorization_response_iss_parameter_supported", json_true());
    json_object_set_new(d, "client_id_metadata_document_supported",
                        json_boolean(oc->client_metadata_documents));
    char *body = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    mg_http_reply(o->p->req, 200, "application/json",
                  "Cache-Control: max-age=300\r\nAccess-Control-Allow-Origin: *\r\n", body,
                  strlen(body));
    free(body);
}

/* --- dispatch -------------------------------------------------------------------- */

static void oreq_free(void *state)
{
    struct oreq *o = state;
    if (o == NULL)
        return;
    if (o->fetch)
        mg_fetch_cancel(o->fetch);
    if (o->oidc_req)
        mg_oidc_cancel(o->oidc_req);
    if (o->ext_free)
        o->ext_free(o->ext);
    lookup_state_free(o->lookup);
    mg_form_fini(&o->form);
    mg_oauth__client_fini(&o->client);
    mg_oauth__authreq_fini(&o->ar);
    free(o->sealed_req);
    mg_identity_unref(o->session);
    mg_identity_unref(o->id_out);
    if (o->password) {
        OPENSSL_cleanse(o->password, strlen(o->password));
        free(o->password);
    }
    free(o->email);
    free(o->provider);
    free(o->set_cookie);
    free(o->scope_out);
    OPENSSL_cleanse(o->access, sizeof o->access);
    OPENSSL_cleanse(o->refresh, sizeof o->refresh);
    OPENSSL_cleanse(o->code, sizeof o->code);
    free(o);
}

static bool host_is_issuer(const struct mg_gw_req *p)
{
    const struct mg_http_header *h = mg_http_head_find(p->req->head, "host");
    const char *ih = p->gw->issuer_host;
    size_t n = strlen(ih);
    if (h == NULL)
        return false;
    if (mg_str_ieq(h->value, h->value_len, ih))
        return true;
    /* "host:443" for an https issuer written without the port. */
    return h->value_len > n && mg_str_ieq(h->value, n, ih) &&
           ((strncmp(p->gw->issuer, "https:", 6) == 0 && h->value_len == n + 4 &&
             memcmp(h->value + n, ":443", 4) == 0) ||
            (strncmp(p->gw->issuer, "http:", 5) == 0 && h->value_len == n + 3 &&
             memcmp(h->value + n, ":80", 3) == 0));
}

bool mg_oauth_dispatch(struct mg_gw_req *p)
{
    struct mg_http_req *req = p->req;
    const char *path = req->path;
    bool meta = strcmp(path, "/.well-known/oauth-authorization-server") == 0 ||
                strcmp(path, "/.well-known/openid-configuration") == 0;
    if (!meta && strncmp(path, OAUTH_PREFIX, sizeof OAUTH_PREFIX - 1) != 0)
        return false;
    if (!host_is_issuer(p)) {
        if (meta)
            return false; /* a route may serve its own metadata on other hosts */
        mg_gw__reply_error(p, 404, MG_RPC_GATEWAY_REFUSED,
                           "the authorization server is not on this host", NULL);
        return true;
    }
    if (p->gw->auth == NULL || p->gw->auth->ext == NULL) {
        mg_gw__reply_error(p, 503, MG_RPC_STORE_UNAVAILABLE, "sign-in is not available", NULL);
        return true;
    }
    struct oreq *o = mg_xcalloc(1, sizeof *o);
    o->p = p;
    o->a = p->gw->auth;
    o->now = mg_oauth__now();
    mg_form_init(&o->form, NULL);
    p->oauth = o;
    p->oauth_free = oreq_free;
    if (meta) {
        if (req->method != HTTP_GET && req->method != HTTP_HEAD)
            mg_gw__reply_error(p, 405, -32600, "method not allowed", "Allow: GET, HEAD\r\n");
        else
            serve_metadata(o);
        return true;
    }
    /* Parameters: the query for GET, the urlencoded body for POST. */
    mg_form_fini(&o->form);
    int frc;
    if (req->method == HTTP_POST) {
        const struct mg_http_header *ct = mg_http_head_find(req->head, "content-type");
        bool is_form = ct && ct->value_len >= 33 &&
                       mg_str_ieq(ct->value, 33, "application/x-www-form-urlencoded");
        bool is_json = ct && ct->value_len >= 16 && mg_str_ieq(ct->value, 16, "application/json");
        if (!is_form && !(is_json && strcmp(path, OAUTH_PREFIX "oauth/register") == 0)) {
            mg_form_init(&o->form, NULL);
            mg_oauth__reply_oerror(o, 400, "invalid_request",
                                   "the body must be application/x-www-form-urlencoded");
            return true;
        }
        if (is_json) {
            mg_form_init(&o->form, NULL);
            frc = 0;
        } else {
            frc =
                mg_form_parse(&o->form, NULL, req->body.data ? req->body.data : "", req->body.len);
        }
    } else {
        const char *q = strchr(req->target, '?');
        frc = mg_form_parse(&o->form, NULL, q ? q + 1 : "", q ? strlen(q + 1) : 0);
    }
    if (frc < 0) {
        mg_oauth__reply_oerror(o, 400, "invalid_request",
                               frc == MG_ELIMIT ? "too many or too long parameters"
                                                : "malformed parameters");
        return true;
    }
    o->form_ok = true;
    const char *ep = path + sizeof OAUTH_PREFIX - 1;
    if (strcmp(ep, "oauth/token") == 0 || strcmp(ep, "oauth/revoke") == 0 ||
        strcmp(ep, "oauth/register") == 0) {
        if (req->method != HTTP_POST) {
            mg_oauth__reply_oerror(o, 405, "invalid_request", "use POST");
            return true;
        }
        if (ep[6] == 't')
            mg_oauth__token(o);
        else if (ep[6] == 'r' && ep[8] == 'v')
            mg_oauth__revoke(o);
        else
            mg_oauth__register(o);
        return true;
    }
    if (!mg_oauth__pages(o, ep))
        mg_oauth__page_error(o, 404, "Not found", "There is no such page.");
    return true;
}

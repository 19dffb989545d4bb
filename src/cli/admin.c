/* The administration commands; see cli.h. */
#include "cli/args.h"
#include "cli/cli.h"

#include "authn/identity.h"
#include "authn/password.h"
#include "authn/token.h"
#include "conf/conf.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define GENERATED_PASSWORD_BYTES 15 /* 20 base64url characters, 120 bits */

struct opts {
    const char *config;
    const char *name, *groups, *owner, *expires, *route, *user, *client, *token, *id;
    bool json, generate, password_stdin;
    const char *pos[3];
    int n_pos;
};

static const char *const usage_text =
    "usage:\n"
    "  mcpgate users add EMAIL [--name NAME] [--groups a,b] [--generate-password | "
    "--password-stdin] -c FILE\n"
    "  mcpgate users list [--json] -c FILE\n"
    "  mcpgate users disable|enable EMAIL -c FILE      (disable also revokes the user's tokens)\n"
    "  mcpgate users passwd EMAIL [--generate-password | --password-stdin] -c FILE\n"
    "  mcpgate clients list [--json] -c FILE\n"
    "  mcpgate clients revoke CLIENT_ID -c FILE       (revokes its tokens, removes it)\n"
    "  mcpgate tokens list [--user SUBJECT] [--client ID] [--json] -c FILE\n"
    "  mcpgate tokens revoke (--id TOKEN_ID | --token TOKEN | --user SUBJECT | --client ID) -c "
    "FILE\n"
    "  mcpgate service-accounts create NAME [--groups a,b] [--expires 30d] [--owner EMAIL]\n"
    "                                   [--route URL] -c FILE   (prints the token once)\n"
    "  mcpgate service-accounts list [--json] -c FILE\n"
    "  mcpgate service-accounts revoke NAME -c FILE\n"
    "Without --password-stdin or --generate-password the password is asked on the terminal.\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct mg_cli_opt opts[] = {
        {"--name", offsetof(struct opts, name), false},
        {"--groups", offsetof(struct opts, groups), false},
        {"--owner", offsetof(struct opts, owner), false},
        {"--expires", offsetof(struct opts, expires), false},
        {"--route", offsetof(struct opts, route), false},
        {"--user", offsetof(struct opts, user), false},
        {"--client", offsetof(struct opts, client), false},
        {"--token", offsetof(struct opts, token), false},
        {"--id", offsetof(struct opts, id), false},
        {"-c", offsetof(struct opts, config), false},
        {"--config", offsetof(struct opts, config), false},
        {"--json", offsetof(struct opts, json), true},
        {"--generate-password", offsetof(struct opts, generate), true},
        {"--password-stdin", offsetof(struct opts, password_stdin), true},
    };
    size_t n_pos = 0;
    if (mg_cli_parse(argc, argv, opts, MG_ARRAY_LEN(opts), o, o->pos, MG_ARRAY_LEN(o->pos),
                     &n_pos) < 0)
        return -1;
    o->n_pos = (int)n_pos;
    if (o->config == NULL) {
        fprintf(stderr, "mcpgate: -c FILE is required (the gateway's configuration: it names "
                        "the store)\n");
        return -1;
    }
    return 0;
}

static int open_store(const char *config, struct mg_store **st)
{
    struct mg_conf *conf = NULL;
    char *err = NULL;
    if (mg_conf_load(config, &conf, &err) < 0) {
        fprintf(stderr, "%s\n", err ? err : "invalid configuration");
        free(err);
        return -1;
    }
    if (strncmp(conf->store_dsn, "sqlite:", 7) == 0) {
        /* The state directory may not exist yet on a fresh machine. */
        (void)mkdir(conf->state_dir, 0700);
    }
    int rc = mg_store_open(conf->store_dsn, st, &err);
    if (rc == 0 && (rc = mg_store_migrate(*st, (int64_t)time(NULL))) < 0)
        fprintf(stderr, "mcpgate: store: %s\n", mg_store_last_error(*st));
    else if (rc < 0)
        fprintf(stderr, "mcpgate: store %s: %s\n", conf->store_dsn, err ? err : "cannot open");
    free(err);
    mg_conf_unref(conf);
    if (rc < 0) {
        mg_store_free(*st);
        *st = NULL;
    }
    return rc;
}

static char *groups_json(const char *csv)
{
    json_t *a = json_array();
    for (const char *s = csv ? csv : ""; *s;) {
        size_t n = strcspn(s, ",");
        if (n > 0 && n <= 256)
            json_array_append_new(a, json_stringn(s, n));
        s += n;
        if (*s == ',')
            s++;
    }
    char *out = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return out;
}

static int read_password(const struct opts *o, char *out, size_t cap, bool *generated)
{
    *generated = false;
    if (o->generate) {
        uint8_t r[GENERATED_PASSWORD_BYTES];
        if (RAND_bytes(r, sizeof r) != 1)
            return -1;
        mg_authn_b64url_encode(r, sizeof r, out, cap);
        OPENSSL_cleanse(r, sizeof r);
        *generated = true;
        return 0;
    }
    bool tty = !o->password_stdin && isatty(STDIN_FILENO);
    struct termios old, noecho;
    if (tty) {
        fputs("password: ", stderr);
        tcgetattr(STDIN_FILENO, &old);
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &noecho);
    }
    char *line = fgets(out, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fputs("\n", stderr);
    }
    if (line == NULL)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0' || strlen(out) > MG_PASSWORD_MAX_LEN) {
        fprintf(stderr, "mcpgate: the password must be 1 to %d bytes\n", MG_PASSWORD_MAX_LEN);
        return -1;
    }
    return 0;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void print_time(int64_t t)
{
    char buf[32];
    struct tm tm;
    time_t tt = (time_t)t;
    if (t == 0) {
        printf("%-20s", "-");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-20s", buf);
}

static int fail_store(struct mg_store *st, const char *what)
{
    fprintf(stderr, "mcpgate: %s: %s\n", what, mg_store_last_error(st));
    return 1;
}

/* --- users ------------------------------------------------------------------------ */

static int users(struct mg_store *st, const struct opts *o)
{
    const char *sub = o->n_pos > 0 ? o->pos[0] : "";
    const char *email = o->n_pos > 1 ? o->pos[1] : NULL;
    if (strcmp(sub, "list") == 0) {
        struct mg_store_user *list = NULL;
        size_t n = 0;
        if (mg_store_user_list(st, &list, &n) < 0)
            return fail_store(st, "users list");
        json_t *arr = json_array();
        if (!o->json)
            printf("%-32s %-20s %-24s %-8s %s\n", "EMAIL", "NAME", "GROUPS", "STATE", "CREATED");
        for (size_t i = 0; i < n; i++) {
            const struct mg_store_user *u = &list[i];
            if (o->json) {
                json_error_t je;
                json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:b, s:I, s:I}", "email",
                                                     u->email, "name", u->name ? u->name : "",
                                                     "groups", json_loads(u->groups_json, 0, &je),
                                                     "disabled", u->disabled, "failed_logins",
                                                     (json_int_t)u->failed_logins, "created_at",
                                                     (json_int_t)u->created_at));
                continue;
            }
            printf("%-32s %-20s %-24s %-8s ", u->email, u->name ? u->name : "", u->groups_json,
                   u->disabled ? "disabled" : "active");
            print_time(u->created_at);
            printf("\n");
        }
        if (o->json) {
            char *s = json_dumps(arr, JSON_INDENT(2));
            puts(s);
            free(s);
        }
        json_decref(arr);
        mg_store_user_list_free(list, n);
        return 0;
    }
    if (email == NULL)
        return usage();
    if (strcmp(sub, "add") == 0 || strcmp(sub, "passwd") == 0) {
        if (strchr(email, '@') == NULL || strlen(email) > 320) {
            fprintf(stderr, "mcpgate: '%s' is not an email address\n", email);
            return 2;
        }
        char pw[MG_PASSWORD_MAX_LEN + 2], hash[256];
        bool generated;
        if (read_password(o, pw, sizeof pw, &generated) < 0) {
            OPENSSL_cleanse(pw, sizeof pw);
            fprintf(stderr, "mcpgate: no password given\n");
            return 1;
        }
        int rc = mg_password_hash(pw, hash, sizeof hash);
        if (rc < 0) {
            OPENSSL_cleanse(pw, sizeof pw);
            fprintf(stderr, "mcpgate: cannot hash the password: %s\n", mg_strstatus(rc));
            return 1;
        }
        if (strcmp(sub, "add") == 0) {
            char *g = groups_json(o->groups);
            struct mg_store_user u = {.email = (char *)email,
                                      .name = (char *)(o->name ? o->name : ""),
                                      .groups_json = g,
                                      .password_hash = hash};
            rc = mg_store_user_create(st, &u, now_s(), NULL);
            free(g);
        } else {
            rc = mg_store_user_set_password(st, email, hash);
            if (rc == 0)
                rc = mg_store_user_reset_failures(st, email);
        }
        OPENSSL_cleanse(hash, sizeof hash);
        if (rc < 0) {
            OPENSSL_cleanse(pw, sizeof pw);
            return fail_store(st, email);
        }
        if (generated)
            printf("%s\n", pw); /* printed once; not stored anywhere */
        else
            fprintf(stderr, "%s: %s\n", email, strcmp(sub, "add") == 0 ? "added" : "password set");
        OPENSSL_cleanse(pw, sizeof pw);
        return 0;
    }
    if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0) {
        bool dis = strcmp(sub, "disable") == 0;
        if (mg_store_user_set_disabled(st, email, dis) < 0)
            return fail_store(st, email);
        if (dis) {
            /* A disabled account keeps nothing: its grants end now. */
            char subj[400];
            size_t n = 0;
            snprintf(subj, sizeof subj, "user:%s", email);
            if (mg_store_token_revoke_subject(st, subj, now_s(), &n) < 0)
                return fail_store(st, email);
            fprintf(stderr, "%s: disabled, %zu token%s revoked\n", email, n, n == 1 ? "" : "s");
        } else {
            fprintf(stderr, "%s: enabled\n", email);
        }
        return 0;
    }
    return usage();
}

/* --- clients ---------------------------------------------------------------------- */

static int clients(struct mg_store *st, const struct opts *o)
{
    const char *sub = o->n_pos > 0 ? o->pos[0] : "";
    if (strcmp(sub, "list") == 0) {
        struct mg_store_client *list = NULL;
        size_t n = 0;
        if (mg_store_client_list(st, &list, &n) < 0)
            return fail_store(st, "clients list");
        json_t *arr = json_array();
        if (!o->json)
            printf("%-40s %-24s %-18s %-20s %s\n", "CLIENT_ID", "NAME", "KIND", "CREATED",
                   "REDIRECT_URIS");
        for (size_t i = 0; i < n; i++) {
            const struct mg_store_client *c = &list[i];
            if (o->json) {
                json_error_t je;
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o, s:I}", "client_id",
                                                     c->client_id, "name", c->name ? c->name : "",
                                                     "kind", mg_store_client_kind_name(c->kind),
                                                     "redirect_uris",
                                                     json_loads(c->redirect_uris_json, 0, &je),
                                                     "created_at", (json_int_t)c->created_at));
                continue;
            }
            printf("%-40s %-24s %-18s ", c->client_id, c->name ? c->name : "",
                   mg_store_client_kind_name(c->kind));
            print_time(c->created_at);
            printf(" %s\n", c->redirect_uris_json);
        }
        if (o->json) {
            char *s = json_dumps(arr, JSON_INDENT(2));
            puts(s);
            free(s);
        }
        json_decref(arr);
        mg_store_client_list_free(list, n);
        return 0;
    }
    if (strcmp(sub, "revoke") == 0 && o->n_pos > 1) {
        size_t n = 0;
        if (mg_store_token_revoke_client(st, o->pos[1], now_s(), &n) < 0)
            return fail_store(st, o->pos[1]);
        int rc = mg_store_client_delete(st, o->pos[1]);
        if (rc < 0 && rc != MG_ENOTFOUND)
            return fail_store(st, o->pos[1]);
        if (rc == MG_ENOTFOUND && n == 0) {
            fprintf(stderr, "mcpgate: no client %s\n", o->pos[1]);
            return 1;
        }
        fprintf(stderr, "%s: %zu token%s revoked%s\n", o->pos[1], n, n == 1 ? "" : "s",
                rc == 0 ? ", registration removed" : "");
        return 0;
    }
    return usage();
}

/* --- tokens ----------------------------------------------------------------------- */

static void token_id(const uint8_t *hash, char out[17])
{
    for (size_t i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", hash[i]);
}

static int tokens(struct mg_store *st, const struct opts *o)
{
    const char *sub = o->n_pos > 0 ? o->pos[0] : "";
    int64_t now = now_s();
    if (strcmp(sub, "list") == 0) {
        struct mg_store_token *list = NULL;
        size_t n = 0;
        if (mg_store_token_list(st, o->user, o->client, &list, &n) < 0)
            return fail_store(st, "tokens list");
        json_t *arr = json_array();
        if (!o->json)
            printf("%-16s %-8s %-28s %-24s %-20s %s\n", "TOKEN_ID", "KIND", "SUBJECT", "CLIENT",
                   "EXPIRES", "STATE");
        for (size_t i = 0; i < n; i++) {
            const struct mg_store_token *t = &list[i];
            if (t->kind == MG_STORE_TOKEN_CODE)
                continue;
            char id[17];
            token_id(t->hash, id);
            const char *state = t->revoked_at          ? "revoked"
                                : t->expires_at <= now ? "expired"
                                                       : "active";
            if (o->json) {
                json_t *row =
                    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "token_id", id, "kind",
                              mg_store_token_kind_name(t->kind), "subject", t->subject, "client_id",
                              t->client_id ? t->client_id : "", "audience",
                              t->audience ? t->audience : "", "scopes", t->scopes ? t->scopes : "",
                              "expires_at", (json_int_t)t->expires_at, "state", state);
                /* Who the token speaks for, as the identity snapshot says. */
                json_error_t je;
                json_t *idj = json_loads(t->identity_json ? t->identity_json : "{}", 0, &je);
                json_t *groups = json_object_get(idj, "groups");
                json_object_set_new(row, "groups",
                                    json_is_array(groups) ? json_incref(groups) : json_array());
                const char *email = json_string_value(json_object_get(idj, "email"));
                json_object_set_new(row, "email", json_string(email ? email : ""));
                json_decref(idj);
                json_array_append_new(arr, row);
                continue;
            }
            printf("%-16s %-8s %-28s %-24s ", id, mg_store_token_kind_name(t->kind), t->subject,
                   t->client_id ? t->client_id : "-");
            print_time(t->expires_at);
            printf(" %s\n", state);
        }
        if (o->json) {
            char *s = json_dumps(arr, JSON_INDENT(2));
            puts(s);
            free(s);
        }
        json_decref(arr);
        mg_store_token_list_free(list, n);
        return 0;
    }
    if (strcmp(sub, "revoke") != 0)
        return usage();
    size_t n = 0;
    int rc;
    if (o->token) {
        uint8_t h[MG_TOKEN_HASH_LEN];
        if (mg_token_hash(o->token, h) < 0)
            return 1;
        rc = mg_store_token_revoke(st, h, now, &n);
    } else if (o->id) {
        struct mg_store_token *list = NULL;
        size_t m = 0, found = 0;
        if (mg_store_token_list(st, NULL, NULL, &list, &m) < 0)
            return fail_store(st, "tokens");
        rc = MG_ENOTFOUND;
        for (size_t i = 0; i < m; i++) {
            char id[17];
            token_id(list[i].hash, id);
            if (list[i].has_hash && strlen(o->id) >= 8 && strncmp(id, o->id, strlen(o->id)) == 0) {
                size_t k = 0;
                /* A refresh token's grant ends with it. */
                if (list[i].kind == MG_STORE_TOKEN_REFRESH && list[i].family_id)
                    rc = mg_store_token_revoke_family(st, list[i].family_id, now, &k);
                else
                    rc = mg_store_token_revoke(st, list[i].hash, now, &k);
                n += k;
                found++;
                if (rc < 0)
                    break;
            }
        }
        mg_store_token_list_free(list, m);
        if (found == 0)
            rc = MG_ENOTFOUND;
    } else if (o->user) {
        rc = mg_store_token_revoke_subject(st, o->user, now, &n);
    } else if (o->client) {
        rc = mg_store_token_revoke_client(st, o->client, now, &n);
    } else {
        return usage();
    }
    if (rc == MG_ENOTFOUND) {
        fprintf(stderr, "mcpgate: no such token\n");
        return 1;
    }
    if (rc < 0)
        return fail_store(st, "revoke");
    fprintf(stderr, "%zu token%s revoked\n", n, n == 1 ? "" : "s");
    return 0;
}

/* --- service accounts ----------------------------------------------------------- */

static int parse_expiry(const char *s, int64_t *secs)
{
    size_t n = strlen(s);
    uint64_t v = 0;
    if (n >= 2 && s[n - 1] == 'd' && mg_parse_u64(s, n - 1, &v) == 0 && v > 0 && v <= 3650) {
        *secs = (int64_t)v * 86400;
        return 0;
    }
    uint64_t ms;
    if (mg_duration_parse(s, &ms) == 0 && ms >= 1000) {
        *secs = (int64_t)(ms / 1000);
        return 0;
    }
    return -1;
}

static int service_accounts(struct mg_store *st, const struct opts *o)
{
    const char *sub = o->n_pos > 0 ? o->pos[0] : "";
    int64_t now = now_s();
    if (strcmp(sub, "list") == 0) {
        struct mg_store_token *list = NULL;
        size_t n = 0;
        if (mg_store_token_list(st, NULL, NULL, &list, &n) < 0)
            return fail_store(st, "service-accounts list");
        json_t *arr = json_array();
        if (!o->json)
            printf("%-24s %-16s %-24s %-24s %-20s %s\n", "NAME", "TOKEN_ID", "OWNER", "GROUPS",
                   "EXPIRES", "STATE");
        for (size_t i = 0; i < n; i++) {
            const struct mg_store_token *t = &list[i];
            if (t->kind != MG_STORE_TOKEN_SERVICE)
                continue;
            json_error_t je;
            json_t *idj = json_loads(t->identity_json ? t->identity_json : "{}", 0, &je);
            const char *owner =
                json_string_value(json_object_get(json_object_get(idj, "claims"), "owner"));
            json_t *groups = json_object_get(idj, "groups");
            char *gs = json_dumps(groups ? groups : json_array(), JSON_COMPACT);
            char id[17];
            token_id(t->hash, id);
            const char *state = t->revoked_at          ? "revoked"
                                : t->expires_at <= now ? "expired"
                                                       : "active";
            const char *name = strncmp(t->subject, "sa:", 3) == 0 ? t->subject + 3 : t->subject;
            if (o->json) {
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:O, s:s, s:I, s:s}", "name",
                                                     name, "token_id", id, "owner",
                                                     owner ? owner : "", "groups",
                                                     groups ? groups : json_array(), "audience",
                                                     t->audience ? t->audience : "*", "expires_at",
                                                     (json_int_t)t->expires_at, "state", state));
            } else {
                printf("%-24s %-16s %-24s %-24s ", name, id, owner ? owner : "-", gs);
                print_time(t->expires_at);
                printf(" %s\n", state);
            }
            free(gs);
            json_decref(idj);
        }
        if (o->json) {
            char *s = json_dumps(arr, JSON_INDENT(2));
            puts(s);
            free(s);
        }
        json_decref(arr);
        mg_store_token_list_free(list, n);
        return 0;
    }
    if (o->n_pos < 2)
        return usage();
    const char *name = o->pos[1];
    char subj[128];
    bool ok = strlen(name) >= 1 && strlen(name) <= 64;
    for (const char *c = name; ok && *c; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' ||
             *c == '.';
    if (!ok) {
        fprintf(stderr, "mcpgate: a service account name is 1 to 64 of a-z 0-9 . _ -\n");
        return 2;
    }
    snprintf(subj, sizeof subj, "sa:%s", name);
    if (strcmp(sub, "revoke") == 0) {
        size_t n = 0;
        if (mg_store_token_revoke_subject(st, subj, now, &n) < 0)
            return fail_store(st, name);
        if (n == 0) {
            fprintf(stderr, "mcpgate: no active service account %s\n", name);
            return 1;
        }
        fprintf(stderr, "%s: revoked\n", name);
        return 0;
    }
    if (strcmp(sub, "create") != 0)
        return usage();
    int64_t ttl = 90 * 86400;
    if (o->expires && parse_expiry(o->expires, &ttl) < 0) {
        fprintf(stderr, "mcpgate: --expires takes a duration such as 12h or 30d (at most "
                        "3650d)\n");
        return 2;
    }
    struct mg_store_token *list = NULL;
    size_t n = 0;
    if (mg_store_token_list(st, subj, NULL, &list, &n) < 0)
        return fail_store(st, name);
    for (size_t i = 0; i < n; i++) {
        if (list[i].revoked_at == 0 && list[i].expires_at > now) {
            mg_store_token_list_free(list, n);
            fprintf(stderr, "mcpgate: service account %s already exists; revoke it first\n", name);
            return 1;
        }
    }
    mg_store_token_list_free(list, n);
    struct mg_identity *id = mg_identity_new();
    free(id->subject);
    id->subject = mg_xstrdup(subj);
    free(id->name);
    id->name = mg_xstrdup(name);
    free(id->idp);
    id->idp = mg_xstrdup("service_account");
    id->method = MG_AUTH_SERVICE;
    char *g = groups_json(o->groups);
    json_error_t je;
    json_t *ga = json_loads(g, 0, &je);
    mg_identity_set_groups_json(id, ga);
    json_decref(ga);
    free(g);
    if (o->owner)
        json_object_set_new(id->claims, "owner", json_string(o->owner));
    struct mg_buf js;
    mg_buf_init(&js, 65536);
    mg_identity_to_json(id, &js);
    mg_identity_unref(id);
    char tok[MG_TOKEN_BUF];
    struct mg_store_token t = {
        .kind = MG_STORE_TOKEN_SERVICE,
        .subject = subj,
        .audience = (char *)(o->route ? o->route : "*"),
        .scopes = "",
        .expires_at = now + ttl,
        .created_at = now,
        .identity_json = js.data,
    };
    int rc = mg_token_new(MG_TOKEN_SERVICE, tok, sizeof tok);
    if (rc == 0)
        rc = mg_token_hash(tok, t.hash);
    if (rc == 0)
        rc = mg_store_token_insert(st, &t);
    mg_buf_fini(&js);
    if (rc < 0) {
        OPENSSL_cleanse(tok, sizeof tok);
        return fail_store(st, name);
    }
    printf("%s\n", tok);
    fprintf(stderr, "%s: created; the token above is shown once. It expires in %lld days.\n", name,
            (long long)(ttl / 86400));
    OPENSSL_cleanse(tok, sizeof tok);
    return 0;
}

int mg_cli_admin(int argc, char **argv)
{
    struct opts o = {0};
    if (parse(argc, argv, &o) < 0)
        return usage();
    struct mg_store *st = NULL;
    if (open_store(o.config, &st) < 0)
        return 1;
    int rc;
    if (strcmp(argv[0], "users") == 0)
        rc = users(st, &o);
    else if (strcmp(argv[0], "clients") == 0)
        rc = clients(st, &o);
    else if (strcmp(argv[0], "tokens") == 0)
        rc = tokens(st, &o);
    else
        rc = service_accounts(st, &o);
    mg_store_free(st);
    return rc;
}

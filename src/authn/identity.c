/* Identity values: construction, reference counting and the JSON form stored
 * with tokens and sealed into browser sessions. */
#include "authn/identity.h"

#include <pthread.h>
#include <string.h>

#define IDENTITY_JSON_MAX 65536

struct mg_identity *mg_identity_new(void)
{
    struct mg_identity *id = mg_xcalloc(1, sizeof *id);
    atomic_init(&id->refs, 1);
    id->subject = mg_xstrdup("");
    id->email = mg_xstrdup("");
    id->name = mg_xstrdup("");
    id->client_id = mg_xstrdup("");
    id->idp = mg_xstrdup("");
    id->audience = mg_xstrdup("");
    id->scopes = mg_xstrdup("");
    id->claims = json_object();
    MG_ASSERT(id->claims != NULL);
    return id;
}

/* One anonymous identity for the process: public routes take a reference
 * on every request instead of building (and freeing) ten blocks. Never
 * changed after it is made, so threads share it; the static reference keeps
 * it alive to the end. */
static struct mg_identity *anonymous;
static pthread_once_t anonymous_once = PTHREAD_ONCE_INIT;

static void make_anonymous(void)
{
    anonymous = mg_identity_new();
    anonymous->immortal = true;
}

struct mg_identity *mg_identity_anonymous(void)
{
    pthread_once(&anonymous_once, make_anonymous);
    return anonymous;
}

void mg_identity_ref(struct mg_identity *id)
{
    if (!id->immortal)
        atomic_fetch_add(&id->refs, 1);
}

static void free_groups(struct mg_identity *id)
{
    for (size_t i = 0; i < id->n_groups; i++)
        free(id->groups[i]);
    free(id->groups);
    id->groups = NULL;
    id->n_groups = 0;
}

void mg_identity_unref(struct mg_identity *id)
{
    if (id == NULL || id->immortal || atomic_fetch_sub(&id->refs, 1) != 1)
        return;
    free(id->subject);
    free(id->email);
    free(id->name);
    free(id->client_id);
    free(id->idp);
    free(id->audience);
    free(id->scopes);
    free_groups(id);
    json_decref(id->claims);
    free(id);
}

int mg_identity_set_groups_json(struct mg_identity *id, const json_t *arr)
{
    if (!json_is_array(arr))
        return MG_EINVAL;
    free_groups(id);
    size_t n = MG_MIN(json_array_size(arr), (size_t)MG_IDENTITY_MAX_GROUPS);
    id->groups = mg_xcalloc(n ? n : 1, sizeof *id->groups);
    for (size_t i = 0; i < json_array_size(arr) && id->n_groups < n; i++) {
        const json_t *g = json_array_get(arr, i);
        if (json_is_string(g) && json_string_length(g) > 0 && json_string_length(g) <= 256 &&
            strlen(json_string_value(g)) == json_string_length(g))
            id->groups[id->n_groups++] = mg_xstrdup(json_string_value(g));
    }
    return 0;
}

bool mg_identity_in_group(const struct mg_identity *id, const char *group)
{
    for (size_t i = 0; i < id->n_groups; i++)
        if (strcmp(id->groups[i], group) == 0)
            return true;
    return false;
}

static const char *const method_names[] = {"none", "oauth", "service_account", "jwt", "client"};

const char *mg_auth_method_name(enum mg_auth_method m)
{
    return (size_t)m < MG_ARRAY_LEN(method_names) ? method_names[m] : "none";
}

int mg_identity_to_json(const struct mg_identity *id, struct mg_buf *out)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < id->n_groups; i++)
        json_array_append_new(groups, json_string(id->groups[i]));
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:O, s:s, s:s}", "sub", id->subject, "email",
                          id->email, "name", id->name, "groups", groups, "claims", id->claims,
                          "idp", id->idp, "method", mg_auth_method_name(id->method));
    if (o == NULL)
        return MG_ENOMEM;
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (s == NULL)
        return MG_ENOMEM;
    int rc = mg_buf_append(out, s, strlen(s));
    free(s);
    return rc;
}

static int take_string(json_t *o, const char *key, char **dst)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return MG_EINVAL;
    free(*dst);
    *dst = mg_xstrdup(json_string_value(v));
    return 0;
}

int mg_identity_from_json(const char *text, size_t len, struct mg_identity **out)
{
    *out = NULL;
    if (len > IDENTITY_JSON_MAX)
        return MG_ELIMIT;
    json_error_t jerr;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return MG_EINVAL;
    }
    struct mg_identity *id = mg_identity_new();
    int rc = 0;
    if (take_string(o, "sub", &id->subject) < 0 || take_string(o, "email", &id->email) < 0 ||
        take_string(o, "name", &id->name) < 0 || take_string(o, "idp", &id->idp) < 0)
        rc = MG_EINVAL;
    json_t *g = json_object_get(o, "groups");
    if (rc == 0 && g != NULL && mg_identity_set_groups_json(id, g) < 0)
        rc = MG_EINVAL;
    json_t *c = json_object_get(o, "claims");
    if (rc == 0 && c != NULL) {
        if (!json_is_object(c)) {
            rc = MG_EINVAL;
        } else {
            json_decref(id->claims);
            id->claims = json_incref(c);
        }
    }
    json_t *m = json_object_get(o, "method");
    if (rc == 0 && json_is_string(m)) {
        for (size_t i = 0; i < MG_ARRAY_LEN(method_names); i++)
            if (strcmp(json_string_value(m), method_names[i]) == 0)
                id->method = (enum mg_auth_method)i;
    }
    json_decref(o);
    if (rc < 0) {
        mg_identity_unref(id);
        return rc;
    }
    *out = id;
    return 0;
}

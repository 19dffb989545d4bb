/* Flat call arguments; see args.h. */
#include "mcp/args.h"

const struct mg_arg *mg_args_flat_get(const struct mg_args_flat *a, const char *key, size_t key_len)
{
    /* At most MG_ARGS_FLAT_MAX members: a scan beats any index. */
    for (size_t i = 0; i < a->n; i++)
        if (a->m[i].key_len == key_len && memcmp(a->m[i].key, key, key_len) == 0)
            return &a->m[i];
    return NULL;
}

json_t *mg_args_flat_tree(const struct mg_args_flat *a)
{
    if (a == NULL)
        return NULL;
    json_t *o = json_object();
    MG_ASSERT(o != NULL);
    for (size_t i = 0; i < a->n; i++) {
        const struct mg_arg *m = &a->m[i];
        json_t *v;
        switch (m->type) {
        case MG_ARG_STRING: v = json_stringn(m->s, m->s_len); break;
        case MG_ARG_INT: v = json_integer((json_int_t)m->i); break;
        case MG_ARG_TRUE: v = json_true(); break;
        case MG_ARG_FALSE: v = json_false(); break;
        default: v = json_null(); break;
        }
        /* The inspection checked the bytes: jansson takes them as they are. */
        MG_ASSERT(v != NULL && json_object_setn_new(o, m->key, m->key_len, v) == 0);
    }
    return o;
}

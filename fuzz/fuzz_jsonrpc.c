/* libFuzzer target for JSON-RPC inspection (src/mcp/jsonrpc): arbitrary bytes
 * as a request body. Checks the contract on every input: INVALID exactly when
 * there is an error text and then no id unless one parsed object carried it;
 * otherwise the counts add up, a single
 * message is one message, the method is a terminated string, the id (present
 * exactly when there is a request) is compact JSON of an allowed type, and
 * jansson agrees the body is one duplicate-free JSON object or array; flat
 * arguments are small, borrowed from the body, and stand for an object;
 * and the one-pass reading of plain requests agrees with the jansson
 * reading (flat arguments compared as the tree they stand for). */
#include "mcp/jsonrpc.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mg_jsonrpc_info i;
    mg_jsonrpc_inspect((const char *)data, size, &i);
    MG_ASSERT(memchr(i.method, '\0', sizeof i.method) != NULL);
    if (i.shape == MG_JSONRPC_INVALID) {
        MG_ASSERT(i.error != NULL && i.msgs == NULL && i.root == NULL && i.n_messages == 0);
        if (i.id_json) {
            json_t *root = json_loadb((const char *)data, size,
                                      JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
            MG_ASSERT(json_is_object(root));
            json_decref(root);
        }
    } else {
        MG_ASSERT(i.shape == MG_JSONRPC_SINGLE || i.shape == MG_JSONRPC_BATCH);
        MG_ASSERT(i.error == NULL);
        MG_ASSERT(i.n_messages >= 1);
        MG_ASSERT(i.n_messages == i.n_requests + i.n_notifications + i.n_responses);
        MG_ASSERT(i.shape == MG_JSONRPC_BATCH || i.n_messages == 1);
        MG_ASSERT((i.id_json != NULL) == (i.n_requests > 0));
        MG_ASSERT(i.method[0] == '\0' || i.n_requests + i.n_notifications > 0);
        MG_ASSERT(!i.has_initialize || i.n_requests + i.n_notifications > 0);
        json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
        if (root == NULL) /* integers beyond int64 are read as doubles */
            root = json_loadb((const char *)data, size,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
        MG_ASSERT(root != NULL);
        MG_ASSERT(i.shape == MG_JSONRPC_BATCH ? json_is_array(root) : json_is_object(root));
        json_decref(root);
        /* The one-pass reading has no tree: its message is the info's own. */
        MG_ASSERT(i.msgs != NULL && (i.root != NULL || (i.msgs == &i.one && i.n_messages == 1)));
        for (size_t k = 0; k < i.n_messages; k++) {
            const struct mg_jsonrpc_msg *m = &i.msgs[k];
            MG_ASSERT((m->method != NULL) == (m->kind != MG_JSONRPC_RESPONSE));
            MG_ASSERT((m->id != NULL) == (m->kind != MG_JSONRPC_NOTIFICATION));
            MG_ASSERT(m->arguments == NULL || json_is_object(m->arguments));
            MG_ASSERT(m->arguments == NULL || m->args_flat == NULL);
            if (m->args_flat) {
                const struct mg_args_flat *f = m->args_flat;
                const char *body = (const char *)data;
                MG_ASSERT(i.shape == MG_JSONRPC_SINGLE && f == &i.flat && f->n <= MG_ARGS_FLAT_MAX);
                for (size_t a = 0; a < f->n; a++) {
                    const struct mg_arg *x = &f->m[a];
                    MG_ASSERT(x->key >= body && x->key + x->key_len <= body + size);
                    MG_ASSERT(memchr(x->key, '\0', x->key_len) == NULL);
                    MG_ASSERT(mg_args_flat_get(f, x->key, x->key_len) == x);
                    if (x->type == MG_ARG_STRING)
                        MG_ASSERT(x->s >= body && x->s + x->s_len <= body + size &&
                                  memchr(x->s, '\\', x->s_len) == NULL);
                }
                json_t *tree = mg_args_flat_tree(f);
                MG_ASSERT(json_is_object(tree) && json_object_size(tree) == f->n);
                json_decref(tree);
            }
            if (m->method &&
                (strcmp(m->method, "tools/call") == 0 || strcmp(m->method, "resources/read") == 0))
                MG_ASSERT(m->name != NULL);
        }
        if (i.id_json) {
            json_t *id = json_loads(i.id_json, JSON_DECODE_ANY, NULL);
            MG_ASSERT(id != NULL);
            MG_ASSERT(json_is_string(id) || json_is_integer(id) || json_is_real(id) ||
                      json_is_null(id));
            json_decref(id);
            MG_ASSERT(strchr(i.id_json, '\n') == NULL);
        }
    }
    /* The one-pass reading (taken or declined) says what the tree says. */
    struct mg_jsonrpc_info t;
    mg_jsonrpc_inspect_tree((const char *)data, size, &t);
    MG_ASSERT(mg_jsonrpc_info_same(&i, &t));
    mg_jsonrpc_info_fini(&t);
    mg_jsonrpc_info_fini(&i);
    MG_ASSERT(i.id_json == NULL);
    return 0;
}

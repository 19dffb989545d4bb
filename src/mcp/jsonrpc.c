/* JSON-RPC inspection; see jsonrpc.h. Duplicate keys are refused (a message
 * with two "method" members means different things to different parsers),
 * as is anything that is not a JSON-RPC 2.0 object. */
#include "mcp/jsonrpc.h"

#include <jansson.h>

static bool check_message(json_t *m, struct mg_jsonrpc_info *out, bool first_req)
{
    if (!json_is_object(m)) {
        out->error = "message is not a JSON object";
        return false;
    }
    json_t *v = json_object_get(m, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
        out->error = "jsonrpc must be \"2.0\"";
        return false;
    }
    json_t *method = json_object_get(m, "method");
    json_t *id = json_object_get(m, "id");
    if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id) &&
        !json_is_real(id)) {
        out->error = "id must be a string or a number";
        return false;
    }
    if (method) {
        if (!json_is_string(method)) {
            out->error = "method must be a string";
            return false;
        }
        if (id)
            out->n_requests++;
        else
            out->n_notifications++;
        const char *name = json_string_value(method);
        if (strcmp(name, "initialize") == 0)
            out->has_initialize = true;
        if (out->method[0] == '\0')
            snprintf(out->method, sizeof out->method, "%s", name);
        if (id && first_req && out->id_json == NULL)
            out->id_json = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
    } else if (json_object_get(m, "result") || json_object_get(m, "error")) {
        if (!id) {
            out->error = "response without id";
            return false;
        }
        out->n_responses++;
    } else {
        out->error = "message has neither method nor result/error";
        return false;
    }
    out->n_messages++;
    return true;
}

void mg_jsonrpc_inspect(const char *body, size_t len, struct mg_jsonrpc_info *out)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        out->error = "body is not valid JSON";
        return;
    }
    if (json_is_array(root)) {
        size_t n = json_array_size(root);
        if (n == 0) {
            out->error = "empty batch";
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (!check_message(json_array_get(root, i), out, true))
                goto out;
        out->shape = MG_JSONRPC_BATCH;
    } else if (check_message(root, out, true)) {
        out->shape = MG_JSONRPC_SINGLE;
    }
out:
    if (out->shape == MG_JSONRPC_INVALID && out->id_json) {
        free(out->id_json);
        out->id_json = NULL;
    }
    json_decref(root);
}

void mg_jsonrpc_info_fini(struct mg_jsonrpc_info *info)
{
    free(info->id_json);
    info->id_json = NULL;
}

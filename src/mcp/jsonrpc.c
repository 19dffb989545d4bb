/* JSON-RPC inspection; see jsonrpc.h. Duplicate keys are refused (a message
 * with two "method" members means different things to different parsers),
 * as is anything that is not a JSON-RPC 2.0 object. */
#include "mcp/jsonrpc.h"

#include <jansson.h>

static bool check_message(json_t *m, struct mg_jsonrpc_info *out, bool first_req, bool as_real)
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
        if (out->method[0] == '\0') {
            snprintf(out->method, sizeof out->method, "%s", name);
            /* Cut at a character boundary: the method lands in JSON logs. */
            size_t n = strlen(out->method);
            if (n < strlen(name)) {
                while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
                    n--;
                out->method[n] = '\0';
            }
        }
        if (id && first_req && out->id_json == NULL) {
            /* Numbers were read as doubles only if some integer overflowed:
             * an integral id still prints as the integer it was. */
            double d = json_is_real(id) ? json_real_value(id) : 0.5;
            if (as_real && json_is_real(id) && d == (double)(long long)d &&
                d > -9007199254740992.0 && d < 9007199254740992.0) {
                json_t *i = json_integer((json_int_t)d);
                out->id_json = json_dumps(i, JSON_ENCODE_ANY | JSON_COMPACT);
                json_decref(i);
            } else {
                out->id_json = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
            }
        }
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
    bool as_real = false;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        as_real = true;
        /* An integer beyond int64 is valid JSON (RFC 8259 §6): read numbers
         * as doubles rather than call the message malformed. */
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    }
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
            if (!check_message(json_array_get(root, i), out, true, as_real))
                goto out;
        out->shape = MG_JSONRPC_BATCH;
    } else if (check_message(root, out, true, as_real)) {
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

/* JSON-RPC inspection; see jsonrpc.h. Duplicate keys are refused (a message
 * with two "method" members means different things to different parsers),
 * as is anything that is not a JSON-RPC 2.0 object. */
#include "mcp/jsonrpc.h"

#include <jansson.h>

/* The MCP methods whose target the policy judges, and where it is. */
static const struct {
    const char *method;
    const char *key; /* in params */
    bool arguments;
} targeted[] = {
    {"tools/call", "name", true},
    {"prompts/get", "name", true},
    {"resources/read", "uri", false},
    {"resources/subscribe", "uri", false},
    {"resources/unsubscribe", "uri", false},
};

/* Fills msg's target. A targeted method whose target is missing or not a
 * string, or whose arguments are not an object, is ambiguous: refused. */
static bool target_of(json_t *m, const char *method, struct mg_jsonrpc_msg *msg,
                      struct mg_jsonrpc_info *out)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(targeted); i++) {
        if (strcmp(method, targeted[i].method) != 0)
            continue;
        json_t *params = json_object_get(m, "params");
        json_t *t = json_object_get(params, targeted[i].key);
        if (!json_is_object(params) || !json_is_string(t) ||
            strlen(json_string_value(t)) != json_string_length(t)) {
            out->error = strcmp(targeted[i].key, "name") == 0
                             ? "params.name must be a string for this method"
                             : "params.uri must be a string for this method";
            return false;
        }
        msg->name = json_string_value(t);
        if (targeted[i].arguments) {
            json_t *a = json_object_get(params, "arguments");
            if (a && !json_is_object(a)) {
                out->error = "params.arguments must be an object";
                return false;
            }
            msg->arguments = a;
        }
        return true;
    }
    return true;
}

static bool check_message(json_t *m, struct mg_jsonrpc_info *out, bool first_req, bool as_real)
{
    struct mg_jsonrpc_msg *msg = &out->msgs[out->n_messages];
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
        if (strlen(name) != json_string_length(method)) {
            out->error = "method must not contain NUL";
            return false;
        }
        msg->kind = id ? MG_JSONRPC_REQUEST : MG_JSONRPC_NOTIFICATION;
        msg->method = name;
        msg->id = id;
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
            /* Range first: converting a double outside long long is UB. */
            if (as_real && json_is_real(id) && d > -9007199254740992.0 && d < 9007199254740992.0 &&
                d == (double)(long long)d) {
                json_t *i = json_integer((json_int_t)d);
                out->id_json = json_dumps(i, JSON_ENCODE_ANY | JSON_COMPACT);
                json_decref(i);
            } else {
                out->id_json = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
            }
        }
        if (!target_of(m, name, msg, out))
            return false;
    } else if (json_object_get(m, "result") || json_object_get(m, "error")) {
        if (!id) {
            out->error = "response without id";
            return false;
        }
        if (json_object_get(m, "result") && json_object_get(m, "error")) {
            out->error = "response with both result and error";
            return false;
        }
        out->n_responses++;
        msg->kind = MG_JSONRPC_RESPONSE;
        msg->id = id;
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
        if (n > MG_JSONRPC_MAX_BATCH) {
            out->error = "batch of more than 100 messages";
            goto out;
        }
        out->msgs = mg_xcalloc(n, sizeof *out->msgs);
        for (size_t i = 0; i < n; i++)
            if (!check_message(json_array_get(root, i), out, true, as_real))
                goto out;
        out->shape = MG_JSONRPC_BATCH;
    } else {
        out->msgs = mg_xcalloc(1, sizeof *out->msgs);
        if (check_message(root, out, true, as_real))
            out->shape = MG_JSONRPC_SINGLE;
    }
out:
    if (out->shape == MG_JSONRPC_INVALID) {
        /* A single message that parsed keeps its id for the error answer;
         * in a batch no one id speaks for the body. */
        if (root == NULL || json_is_array(root)) {
            free(out->id_json);
            out->id_json = NULL;
        }
        free(out->msgs);
        out->msgs = NULL;
        out->n_messages = 0;
        json_decref(root);
        return;
    }
    out->root = root;
}

void mg_jsonrpc_info_fini(struct mg_jsonrpc_info *info)
{
    free(info->id_json);
    info->id_json = NULL;
    free(info->msgs);
    info->msgs = NULL;
    json_decref(info->root);
    info->root = NULL;
}

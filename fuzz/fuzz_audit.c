/* libFuzzer target for audit records built from untrusted arguments: the
 * first byte picks the arguments mode, the rest is parsed as JSON and put
 * into a record, which is chained. Checks what verification relies on:
 * the canonical text parses back and serialises to the same bytes, stays
 * under MG_AUDIT_MAX_RECORD_BYTES, and in redacted mode no value under a
 * secret-looking key survives and no string is longer than its bound. When
 * the same bytes, as a tools/call's arguments, are read flat (mcp/args.h),
 * the flat reduction gives the tree's record byte for byte. The same bytes
 * also go through the --since parser. */
#include "audit/record.h"
#include "mcp/jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_redacted(const json_t *v, int depth)
{
    const char *k;
    size_t klen, i;
    json_t *x;
    MG_ASSERT(depth <= MG_AUDIT_MAX_DEPTH + 1);
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        json_object_keylen_foreach((json_t *)v, k, klen, x)
        {
            char *key = mg_xstrndup(k, klen);
            if (strlen(key) == klen && mg_audit_is_secret_key(key))
                MG_ASSERT(json_is_string(x) && strcmp(json_string_value(x), "[redacted]") == 0);
            free(key);
            check_redacted(x, depth + 1);
        }
        break;
    case JSON_ARRAY: json_array_foreach(v, i, x) check_redacted(x, depth + 1); break;
    case JSON_STRING: MG_ASSERT(json_string_length(v) <= MG_AUDIT_MAX_STRING + 40); break;
    default: break;
    }
}

/* The bytes as the arguments of a tools/call: if the inspection keeps them
 * flat, their record text must be the tree's. */
static void check_flat(const char *args_text, size_t n, const json_t *args,
                       enum mg_conf_audit_args mode)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                               "\"params\":{\"name\":\"q\",\"arguments\":",
                      tail[] = "}}";
    char *body = mg_xmalloc(sizeof head + n + sizeof tail);
    size_t len = 0;
    memcpy(body, head, sizeof head - 1);
    len += sizeof head - 1;
    memcpy(body + len, args_text, n);
    len += n;
    memcpy(body + len, tail, sizeof tail - 1);
    len += sizeof tail - 1;
    struct mg_jsonrpc_info info;
    mg_jsonrpc_inspect(body, len, &info);
    if (info.n_messages == 1 && info.msgs[0].args_flat) {
        MG_ASSERT(json_is_object(args));
        char *a = NULL, *b = NULL, hash[MG_AUDIT_HASH_HEX + 1];
        size_t la = 0, lb = 0;
        struct mg_audit_record *r = mg_audit_record_new();
        mg_audit_record_set_arguments(r, args, mode);
        MG_ASSERT(mg_audit_record_chain(r, 1, mg_audit_zero_hash, &a, &la, hash) == 0);
        mg_audit_record_set_arguments_flat(r, info.msgs[0].args_flat, mode);
        MG_ASSERT(mg_audit_record_chain(r, 1, mg_audit_zero_hash, &b, &lb, hash) == 0);
        MG_ASSERT(la == lb && memcmp(a, b, la) == 0);
        free(a);
        free(b);
        mg_audit_record_free(r);
    }
    mg_jsonrpc_info_fini(&info);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mg_audit_record *r;
    enum mg_conf_audit_args mode;
    json_t *args, *back;
    char *text = NULL, *again, hash[MG_AUDIT_HASH_HEX + 1], *s;
    size_t len = 0;
    int64_t t;

    if (size < 1)
        return 0;
    s = mg_xstrndup((const char *)data + 1, size - 1);
    (void)mg_audit_parse_since(s, 1700000000000LL, &t);
    free(s);
    mode = (enum mg_conf_audit_args)(data[0] % 4);
    args = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!args)
        return 0;
    check_flat((const char *)data + 1, size - 1, args, mode);
    r = mg_audit_record_new();
    mg_audit_record_set_arguments(r, args, mode);
    if (json_is_string(args))
        mg_audit_record_set_call(r, "tools/call", json_string_value(args));
    mg_audit_record_set_jsonrpc_id(r, args);
    MG_ASSERT(mg_audit_record_chain(r, 1, mg_audit_zero_hash, &text, &len, hash) == 0);
    MG_ASSERT(len <= MG_AUDIT_MAX_RECORD_BYTES && memchr(text, '\n', len) == NULL);
    back = json_loadb(text, len, MG_AUDIT_JSON_FLAGS, NULL);
    MG_ASSERT(back != NULL);
    again = json_dumps(back, JSON_COMPACT | JSON_SORT_KEYS);
    MG_ASSERT(again && strlen(again) == len && memcmp(again, text, len) == 0);
    if (mode == MG_CONF_AUDIT_ARGS_REDACTED && json_object_get(back, "arguments"))
        check_redacted(json_object_get(back, "arguments"), 0);
    free(again);
    json_decref(back);
    free(text);
    mg_audit_record_free(r);
    json_decref(args);
    return 0;
}

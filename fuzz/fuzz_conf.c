/* libFuzzer target for the configuration loader: arbitrary bytes through
 * mg_conf_load_string, and the same bytes as one string through the URL,
 * duration and listen-address parsers. Checks the loader's contract on
 * every input: success gives a conf and no error text, failure gives error
 * text whose every line is located in the named file, and no conf. */
#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_errors(const char *err)
{
    static const char prefix[] = "fuzz.yaml:";
    const char *line = err;
    MG_ASSERT(err != NULL && *err != '\0');
    while (line) {
        MG_ASSERT(strncmp(line, prefix, sizeof prefix - 1) == 0);
        MG_ASSERT(line[sizeof prefix - 1] >= '1' && line[sizeof prefix - 1] <= '9');
        line = strchr(line, '\n');
        if (line)
            line++;
    }
}

static void check_conf(const struct mg_conf *c)
{
    MG_ASSERT(c->n_routes >= 1 && c->address && c->state_dir && c->log_level);
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct mg_conf_route *r = &c->routes[i];
        MG_ASSERT(r->name && r->from.host && r->from.path && r->timeout_ms > 0);
        MG_ASSERT(r->kind == MG_UPSTREAM_STDIO ? r->stdio.command != NULL : r->to.host != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mg_conf *c = NULL;
    char *err = NULL, *s;
    int rc = mg_conf_load_string("fuzz.yaml", (const char *)data, size, &c, &err);
    if (rc == 0) {
        MG_ASSERT(c != NULL && err == NULL);
        check_conf(c);
        mg_conf_ref(c);
        mg_conf_unref(c);
    } else {
        MG_ASSERT(rc < 0 && c == NULL);
        check_errors(err);
    }
    mg_conf_unref(c);
    free(err);

    /* The small syntaxes, on a NUL-terminated copy. */
    s = mg_xstrndup((const char *)data, size);
    {
        struct mg_url u;
        uint64_t ms;
        char *host = NULL;
        uint16_t port;
        if (mg_url_parse(s, &u) == 0)
            MG_ASSERT(u.scheme && u.host && u.path && u.port > 0);
        mg_url_fini(&u);
        (void)mg_duration_parse(s, &ms);
        if (mg_hostport_parse(s, &host, &port) == 0)
            MG_ASSERT(host && port > 0);
        free(host);
    }
    free(s);
    return 0;
}

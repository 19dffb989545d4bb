/* Unit tests for src/web/tmpl: escaping of every special byte, raw values
 * only when marked trusted, sections (lists, if, unless, nesting, scoping),
 * comments, each syntax error with its position, every render error (missing
 * names, also inside hidden sections; wrong kinds; the cap), directory
 * loading with its bounds, and the shipped web/ pages: they compile, render
 * with hostile values escaped, keep the form-field contract, and follow the
 * accessibility rules (lang, one h1, a label for every visible input, no
 * script, no external resources). */
#include "web/tmpl.h"

#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

/* Renders src with ctx; returns the page or "ERR <rc> <message>" (caller
 * frees). */
static char *run(const char *src, const struct mg_tmpl_ctx *ctx, size_t cap)
{
    struct mg_tmpl *t = NULL;
    char *err = NULL;
    struct mg_buf b, r;
    mg_buf_init(&b, cap);
    mg_buf_init(&r, 1 << 16);
    int rc = mg_tmpl_compile("t", src, strlen(src), &t, &err);
    if (rc == MG_OK)
        rc = mg_tmpl_render(t, ctx, &b, &err);
    if (rc == MG_OK)
        mg_buf_append(&r, b.data ? b.data : "", b.len);
    else
        mg_buf_appendf(&r, "ERR %d %s", rc, err ? err : "(no message)");
    free(err);
    mg_tmpl_free(t);
    mg_buf_fini(&b);
    return mg_buf_steal(&r, NULL);
}

#define IS(src, ctx, want, ...)                                                                    \
    do {                                                                                           \
        char *got_ = run(src, ctx, 1 << 16);                                                       \
        TAP_IS_STR(got_, want, __VA_ARGS__);                                                       \
        free(got_);                                                                                \
    } while (0)

static void test_escape(void)
{
    const struct mg_tmpl_var v[] = {
        MG_TMPL_STR("x", "<script>alert(\"1\" & '2')</script>"),
        MG_TMPL_STR("u", "caf\xc3\xa9 \xf0\x9f\x98\x80"),
        MG_TMPL_STR("bad", "a\xff"
                           "b\xc3(c\xed\xa0\x80"),
        MG_TMPL_STR("ctl", "a\tb\nc\rd\x01"
                           "e\x7f"
                           "f\x1b"),
        MG_TMPL_STR("n", NULL),
        MG_TMPL_RAW("h", "<b>bold</b>"),
    };
    const struct mg_tmpl_ctx c = {v, MG_ARRAY_LEN(v)};
    IS("{{x}}", &c, "&lt;script&gt;alert(&quot;1&quot; &amp; &#39;2&#39;)&lt;/script&gt;",
       "& < > \" ' escaped");
    IS("<a title=\"{{x}}\">", &c,
       "<a title=\"&lt;script&gt;alert(&quot;1&quot; &amp; &#39;2&#39;)&lt;/script&gt;\">",
       "escaped inside an attribute");
    IS("{{u}}", &c, "caf\xc3\xa9 \xf0\x9f\x98\x80", "valid UTF-8 kept");
    IS("{{bad}}", &c,
       "a\xef\xbf\xbd"
       "b\xef\xbf\xbd(c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
       "invalid UTF-8 becomes U+FFFD");
    IS("{{ctl}}", &c,
       "a\tb\nc\rd\xef\xbf\xbd"
       "e\xef\xbf\xbd"
       "f\xef\xbf\xbd",
       "controls but tab, LF, CR become U+FFFD");
    IS("[{{n}}]", &c, "[]", "NULL renders empty");
    IS("{{{h}}}", &c, "<b>bold</b>", "trusted HTML raw");
    IS("{{h}}", &c, "&lt;b&gt;bold&lt;/b&gt;", "trusted HTML escaped in {{}}");
    IS("{{{x}}}", &c, "ERR -4 t:1:1: {{{x}}} is text, not trusted HTML", "raw text refused");

    struct mg_buf b;
    mg_buf_init(&b, 8);
    mg_buf_appends(&b, "ab");
    TAP_IS_INT(mg_tmpl_escape(&b, "<>", 2), MG_ELIMIT, "escape over cap");
    TAP_IS_STR(b.data, "ab", "escape leaves buffer unchanged");
    TAP_IS_INT(mg_tmpl_escape(&b, "<'", 2), MG_ELIMIT, "escape over cap by one");
    TAP_IS_INT(mg_tmpl_escape(&b, "&x", 2), MG_OK, "escape to the cap");
    TAP_IS_STR(b.data, "ab&amp;x", "escape appended");
    mg_buf_fini(&b);
}

static void test_sections(void)
{
    const struct mg_tmpl_var s1[] = {MG_TMPL_STR("scope", "read"), MG_TMPL_STR("who", "item")};
    const struct mg_tmpl_var s2[] = {MG_TMPL_STR("scope", "write<")};
    const struct mg_tmpl_ctx scopes[] = {{s1, 2}, {s2, 1}};
    const struct mg_tmpl_var inner1[] = {MG_TMPL_STR("n", "1")};
    const struct mg_tmpl_var inner2[] = {MG_TMPL_STR("n", "2")};
    const struct mg_tmpl_ctx inner[] = {{inner1, 1}, {inner2, 1}};
    const struct mg_tmpl_var o1[] = {MG_TMPL_STR("g", "a"), MG_TMPL_LIST("in", inner, 2)};
    const struct mg_tmpl_var o2[] = {MG_TMPL_STR("g", "b"), MG_TMPL_LIST("in", inner, 1)};
    const struct mg_tmpl_ctx outer[] = {{o1, 2}, {o2, 2}};
    const struct mg_tmpl_var v[] = {
        MG_TMPL_LIST("scopes", scopes, 2), MG_TMPL_LIST("none", NULL, 0),
        MG_TMPL_LIST("outer", outer, 2),   MG_TMPL_STR("who", "top"),
        MG_TMPL_STR("empty", ""),          MG_TMPL_STR("full", "x"),
        MG_TMPL_STR("nul", NULL),
    };
    const struct mg_tmpl_ctx c = {v, MG_ARRAY_LEN(v)};
    IS("<ul>{{#scopes}}<li>{{scope}}</li>{{/scopes}}</ul>", &c,
       "<ul><li>read</li><li>write&lt;</li></ul>", "list");
    IS("{{#scopes}}{{who}},{{/scopes}}", &c, "item,top,", "item names hide outer ones");
    IS("[{{#none}}x{{/none}}]", &c, "[]", "empty list renders nothing");
    IS("{{#outer}}{{g}}:{{#in}}{{g}}{{n}}{{/in}};{{/outer}}", &c, "a:a1a2;b:b1;", "nested lists");
    IS("{{?scopes}}has{{/scopes}}{{^scopes}}none{{/scopes}}", &c, "has", "? and ^ on a list");
    IS("{{?none}}has{{/none}}{{^none}}none{{/none}}", &c, "none", "? and ^ on an empty list");
    IS("{{?full}}[{{full}}]{{/full}}{{^full}}no{{/full}}", &c, "[x]", "? and ^ on text");
    IS("{{?empty}}yes{{/empty}}{{^empty}}no{{/empty}}", &c, "no", "? and ^ on empty text");
    IS("{{?nul}}yes{{/nul}}{{^nul}}no{{/nul}}", &c, "no", "? and ^ on NULL");
    IS("a{{! a comment with {{ inside }}b{{!}}c", &c, "abc", "comments");
    IS("a{{! x {{y}} z }}b", &c, "a z }}b", "a comment ends at the first }}");
    IS("} }} { {x} ", &c, "} }} { {x} ", "lone braces are text");
    IS("", &c, "", "empty template");
    IS("{{who}}", NULL, "ERR -4 t:1:1: no value for \"who\"", "NULL context has no names");
    IS("plain", NULL, "plain", "NULL context without names");

    /* Render errors, with positions. */
    IS("a\n  {{nope}}", &c, "ERR -4 t:2:3: no value for \"nope\"", "unknown name");
    IS("{{?empty}}{{typo}}{{/empty}}", &c, "ERR -4 t:1:11: no value for \"typo\"",
       "unknown name inside a hidden section");
    IS("{{^full}}{{{who}}}{{/full}}", &c, "ERR -4 t:1:10: {{{who}}} is text, not trusted HTML",
       "wrong kind inside a hidden section");
    IS("{{#scopes}}{{scope}}{{typo}}{{/scopes}}", &c, "ERR -4 t:1:21: no value for \"typo\"",
       "unknown name inside a list");
    IS("{{scopes}}", &c, "ERR -4 t:1:1: {{scopes}} is a list, not text", "list as text");
    IS("{{#who}}x{{/who}}", &c, "ERR -4 t:1:1: {{#who}} is text, not a list", "text as list");
    IS("{{{scopes}}}", &c, "ERR -4 t:1:1: {{{scopes}}} is a list, not trusted HTML", "list raw");
}

static void test_syntax(void)
{
    static const struct {
        const char *src, *want;
    } bad[] = {
        {"{{", "t:1:1: unterminated tag"},
        {"ab{{x", "t:1:3: unterminated tag"},
        {"{{x}", "t:1:1: unterminated tag"},
        {"{{{x}}", "t:1:5: \"{{{\" must be closed by \"}}}\""},
        {"{{{x}", "t:1:1: unterminated tag"},
        {"{{}}", "t:1:3: expected a name ([A-Za-z0-9_], no spaces) in tag"},
        {"{{ x }}", "t:1:3: expected a name ([A-Za-z0-9_], no spaces) in tag"},
        {"{{#}}", "t:1:4: expected a name ([A-Za-z0-9_], no spaces) in tag"},
        {"{{{#x}}}", "t:1:4: expected a name ([A-Za-z0-9_], no spaces) in tag"},
        {"{{x y}}", "t:1:4: unexpected byte 0x20 in tag (names are [A-Za-z0-9_])"},
        {"{{x-y}}", "t:1:4: unexpected '-' in tag (names are [A-Za-z0-9_])"},
        {"{{x.y}}", "t:1:4: unexpected '.' in tag (names are [A-Za-z0-9_])"},
        {"{{x\n}}", "t:1:4: unexpected byte 0x0a in tag (names are [A-Za-z0-9_])"},
        {"{{&x}}", "t:1:3: expected a name ([A-Za-z0-9_], no spaces) in tag"},
        {"{{x}y", "t:1:4: expected \"}}\""},
        {"{{x}}}", "t:1:6: '}' right after a tag (\"{{{name}}}\" is the raw form)"},
        {"{{{x}}}}", "t:1:8: '}' right after a tag (\"{{{name}}}\" is the raw form)"},
        {"{{!never ends", "t:1:1: unterminated comment"},
        {"{{!never ends }", "t:1:1: unterminated comment"},
        {"x\n{{#a}}\n", "t:2:1: section \"a\" is never closed"},
        {"{{#a}}{{?b}}{{/b}}", "t:1:1: section \"a\" is never closed"},
        {"{{/a}}", "t:1:1: {{/a}} closes no section"},
        {"{{#a}}{{/a}}{{/a}}", "t:1:13: {{/a}} closes no section"},
        {"{{#a}}\n {{/b}}", "t:2:2: {{/b}} closes the section \"a\" opened at 1:1"},
        {"{{#a}}{{^b}}{{/a}}{{/b}}", "t:1:13: {{/a}} closes the section \"b\" opened at 1:7"},
        {"{{#ab}}{{/a}}", "t:1:8: {{/a}} closes the section \"ab\" opened at 1:1"},
        {"{{?a}}{{/ab}}", "t:1:7: {{/ab}} closes the section \"a\" opened at 1:1"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        struct mg_tmpl *t = (struct mg_tmpl *)1;
        char *err = NULL;
        int rc = mg_tmpl_compile("t", bad[i].src, strlen(bad[i].src), &t, &err);
        TAP_IS_INT(rc, MG_EINVAL, "syntax error %zu refused", i);
        TAP_OK(t == NULL, "syntax error %zu: no template", i);
        TAP_IS_STR(err, bad[i].want, "syntax error %zu message", i);
        free(err);
    }

    char name[MG_TMPL_MAX_NAME + 2], src[200], want[200];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(src, sizeof src, "{{%s}}", name);
    snprintf(want, sizeof want, "ERR -4 t:1:3: name longer than %d bytes", MG_TMPL_MAX_NAME);
    IS(src, NULL, want, "65-byte name refused");
    const struct mg_tmpl_var v64[] = {MG_TMPL_STR(name + 1, "ok")};
    const struct mg_tmpl_ctx c64 = {v64, 1};
    snprintf(src, sizeof src, "{{%s}}", name + 1);
    IS(src, &c64, "ok", "64-byte name accepted");

    /* Depth: 8 sections nest, 9 do not. */
    const struct mg_tmpl_var one[] = {MG_TMPL_STR("a", "x")};
    const struct mg_tmpl_ctx c = {one, 1};
    struct mg_buf b;
    mg_buf_init(&b, 4096);
    for (int i = 0; i < MG_TMPL_MAX_DEPTH; i++)
        mg_buf_appends(&b, "{{?a}}");
    mg_buf_appends(&b, "deep");
    for (int i = 0; i < MG_TMPL_MAX_DEPTH; i++)
        mg_buf_appends(&b, "{{/a}}");
    IS(b.data, &c, "deep", "8 nested sections");
    mg_buf_reset(&b);
    for (int i = 0; i <= MG_TMPL_MAX_DEPTH; i++)
        mg_buf_appends(&b, "{{?a}}");
    snprintf(want, sizeof want, "ERR -4 t:1:%d: sections nested deeper than %d",
             MG_TMPL_MAX_DEPTH * 6 + 1, MG_TMPL_MAX_DEPTH);
    IS(b.data, &c, want, "9 nested sections refused");
    mg_buf_fini(&b);

    struct mg_tmpl *t = NULL;
    char *err = NULL;
    TAP_IS_INT(mg_tmpl_compile("t", "ab\0c", 4, &t, &err), MG_EINVAL, "NUL refused");
    TAP_IS_STR(err, "t:1:3: NUL byte in template", "NUL message");
    free(err);
    char *big = mg_xcalloc(1, MG_TMPL_MAX_BYTES + 1);
    memset(big, 'x', MG_TMPL_MAX_BYTES + 1);
    TAP_IS_INT(mg_tmpl_compile("t", big, MG_TMPL_MAX_BYTES + 1, &t, &err), MG_ELIMIT,
               "over-large template refused");
    free(err);
    TAP_IS_INT(mg_tmpl_compile("t", big, MG_TMPL_MAX_BYTES, &t, NULL), MG_OK,
               "largest template accepted (err may be NULL)");
    TAP_IS_STR(mg_tmpl_name(t), "t", "template name");
    mg_tmpl_free(t);
    free(big);
    mg_tmpl_free(NULL);
}

static void test_cap(void)
{
    const struct mg_tmpl_var v[] = {MG_TMPL_STR("x", "<<<<")};
    const struct mg_tmpl_ctx c = {v, 1};
    struct mg_tmpl *t = NULL;
    char *err = NULL;
    struct mg_buf b;
    TAP_IS_INT(mg_tmpl_compile("cap", "[{{x}}]", 7, &t, NULL), MG_OK, "compile");
    mg_buf_init(&b, 23);
    mg_buf_appends(&b, "head:");
    TAP_IS_INT(mg_tmpl_render(t, &c, &b, &err), MG_OK, "render to exactly the cap");
    TAP_IS_STR(b.data, "head:[&lt;&lt;&lt;&lt;]", "rendered after existing bytes");
    b.max = 22;
    b.len = 5;
    TAP_IS_INT(mg_tmpl_render(t, &c, &b, &err), MG_ELIMIT, "cap - 1");
    TAP_IS_STR(b.data, "head:", "buffer unchanged after ELIMIT");
    TAP_IS_STR(err, "cap: page larger than 22 bytes", "cap message");
    free(err);
    mg_buf_fini(&b);
    mg_tmpl_free(t);
}

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    MG_ASSERT(f != NULL);
    MG_ASSERT(fwrite(text, 1, len, f) == len);
    fclose(f);
}

static void test_load(void)
{
    char dir[] = "/tmp/mg-tmpl-XXXXXX", path[600];
    struct mg_tmpl_set *set = (struct mg_tmpl_set *)1;
    char *err = NULL;
    MG_ASSERT(mkdtemp(dir) != NULL);

    TAP_IS_INT(mg_tmpl_set_load(dir, 0, &set, &err), MG_ENOTFOUND, "empty directory");
    TAP_OK(set == NULL, "no set on failure");
    TAP_OK(err && strstr(err, "no *.html templates"), "empty directory message: %s", err);
    free(err);

    write_file(dir, "a.html", "A {{x}}", 7);
    write_file(dir, "b.html", "B", 1);
    write_file(dir, ".hidden.html", "{{", 2);
    write_file(dir, "notes.txt", "{{", 2);
    write_file(dir, ".html", "{{", 2);
    snprintf(path, sizeof path, "%s/sub.html", dir);
    MG_ASSERT(mkdir(path, 0700) == 0);
    TAP_IS_INT(mg_tmpl_set_load(dir, 0, &set, &err), MG_OK, "load");
    TAP_OK(err == NULL, "no message on success");
    TAP_IS_INT(mg_tmpl_set_count(set), 2, "two templates (hidden, other and directories skipped)");
    const struct mg_tmpl *a = mg_tmpl_set_get(set, "a.html");
    TAP_OK(a != NULL && strcmp(mg_tmpl_name(a), "a.html") == 0, "get a.html");
    TAP_OK(mg_tmpl_set_get(set, "b.html") != NULL, "get b.html");
    TAP_OK(mg_tmpl_set_get(set, "c.html") == NULL, "no c.html");
    TAP_OK(mg_tmpl_set_get(set, "notes.txt") == NULL, "no notes.txt");
    const struct mg_tmpl_var v[] = {MG_TMPL_STR("x", "&")};
    const struct mg_tmpl_ctx c = {v, 1};
    struct mg_buf b;
    mg_buf_init(&b, 100);
    TAP_IS_INT(mg_tmpl_render(a, &c, &b, NULL), MG_OK, "render loaded template");
    TAP_IS_STR(b.data, "A &amp;", "loaded template output");
    mg_buf_fini(&b);
    mg_tmpl_set_free(set);

    /* Bounds: the file size (exact and one over), then a syntax error. */
    TAP_IS_INT(mg_tmpl_set_load(dir, 7, &set, &err), MG_OK, "file at max_bytes");
    mg_tmpl_set_free(set);
    TAP_IS_INT(mg_tmpl_set_load(dir, 6, &set, &err), MG_ELIMIT, "file over max_bytes");
    TAP_OK(err && strstr(err, "a.html: larger than 6 bytes"), "size message: %s", err);
    free(err);
    write_file(dir, "bad.html", "ok\n{{#x}}", 9);
    TAP_IS_INT(mg_tmpl_set_load(dir, 0, &set, &err), MG_EINVAL, "syntax error in a file");
    TAP_IS_STR(err, "bad.html:2:1: section \"x\" is never closed", "syntax error message");
    free(err);
    snprintf(path, sizeof path, "%s/bad.html", dir);
    unlink(path);

    /* More than MG_TMPL_MAX_FILES. */
    for (int i = 0; i < MG_TMPL_MAX_FILES - 1; i++) {
        char n[32];
        snprintf(n, sizeof n, "f%02d.html", i);
        write_file(dir, n, "f", 1);
    }
    TAP_IS_INT(mg_tmpl_set_load(dir, 0, &set, &err), MG_ELIMIT, "65 templates refused");
    free(err);
    snprintf(path, sizeof path, "%s/f00.html", dir);
    unlink(path);
    TAP_IS_INT(mg_tmpl_set_load(dir, 0, &set, &err), MG_OK, "64 templates accepted");
    TAP_IS_INT(set ? mg_tmpl_set_count(set) : 0, MG_TMPL_MAX_FILES, "64 loaded");
    mg_tmpl_set_free(set);

    TAP_IS_INT(mg_tmpl_set_load("/nonexistent/mcpgate-web", 0, &set, &err), MG_EIO,
               "missing directory");
    TAP_OK(err && strstr(err, "/nonexistent/mcpgate-web: "), "missing directory message: %s", err);
    free(err);
    mg_tmpl_set_free(NULL);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    MG_ASSERT(system(cmd) == 0);
}

/* An inline event handler: " on" letters "=". */
static bool has_event_attr(const char *html)
{
    for (const char *p = html; (p = strstr(p, " on")) != NULL; p++) {
        const char *q = p + 3;
        while (*q >= 'a' && *q <= 'z')
            q++;
        if (q > p + 3 && *q == '=')
            return true;
    }
    return false;
}

/* Accessibility and safety rules checked on a rendered page. */
static void check_page(const char *name, const char *html)
{
    size_t n_h1 = 0;
    for (const char *p = html; (p = strstr(p, "<h1")) != NULL; p++)
        n_h1++;
    TAP_IS_INT(n_h1, 1, "%s: one h1", name);
    TAP_OK(strncmp(html, "<!DOCTYPE html>\n<html lang=\"en\">", 32) == 0,
           "%s: doctype first, html lang", name);
    TAP_OK(strstr(html, "name=\"viewport\" content=\"width=device-width") != NULL,
           "%s: viewport for narrow screens", name);
    TAP_OK(strstr(html, "<title>") != NULL && strstr(html, "<main>") != NULL, "%s: title and main",
           name);
    TAP_OK(strstr(html, "<script") == NULL && strstr(html, "javascript:") == NULL &&
               !has_event_attr(html),
           "%s: no script", name);
    TAP_OK(strstr(html, "src=") == NULL && strstr(html, "<link") == NULL &&
               strstr(html, "href=\"http") == NULL && strstr(html, "url(") == NULL &&
               strstr(html, "@import") == NULL,
           "%s: no external resources", name);
    TAP_OK(strstr(html, "outline:3px") != NULL, "%s: visible focus style", name);
    /* Every visible input has a label pointing at its id. */
    int unlabelled = 0, inputs = 0;
    for (const char *p = html; (p = strstr(p, "<input")) != NULL; p++) {
        const char *end = strchr(p, '>');
        MG_ASSERT(end != NULL);
        char tag[1024];
        snprintf(tag, sizeof tag, "%.*s", (int)(end - p), p);
        if (strstr(tag, "type=\"hidden\""))
            continue;
        inputs++;
        const char *id = strstr(tag, " id=\"");
        char label[128] = "";
        if (id != NULL)
            snprintf(label, sizeof label, "<label for=\"%.*s\">", (int)strcspn(id + 5, "\""),
                     id + 5);
        if (id == NULL || strstr(html, label) == NULL)
            unlabelled++;
    }
    TAP_IS_INT(unlabelled, 0, "%s: all %d visible inputs labelled", name, inputs);
}

static char *render_page(const struct mg_tmpl_set *set, const char *name,
                         const struct mg_tmpl_ctx *ctx)
{
    const struct mg_tmpl *t = mg_tmpl_set_get(set, name);
    char *err = NULL;
    struct mg_buf b;
    mg_buf_init(&b, 1 << 16);
    TAP_OK(t != NULL, "%s present", name);
    if (t == NULL)
        return mg_xstrdup("");
    int rc = mg_tmpl_render(t, ctx, &b, &err);
    TAP_IS_INT(rc, MG_OK, "%s renders (%s)", name, err ? err : "ok");
    free(err);
    return mg_buf_steal(&b, NULL);
}

#define EVIL     "<script>x</script>\"'&"
#define EVIL_ESC "&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;"

static void test_web(void)
{
    const char *dir = getenv("MG_WEB_DIR") ? getenv("MG_WEB_DIR") : "web";
    struct mg_tmpl_set *set = NULL;
    char *err = NULL;
    TAP_IS_INT(mg_tmpl_set_load(dir, 0, &set, &err), MG_OK, "web/ loads (%s)", err ? err : "ok");
    free(err);
    if (set == NULL)
        return;
    TAP_IS_INT(mg_tmpl_set_count(set), 4, "four pages");

    const struct mg_tmpl_var p1[] = {MG_TMPL_STR("provider", "google"),
                                     MG_TMPL_STR("label", "Google " EVIL)};
    const struct mg_tmpl_var p2[] = {MG_TMPL_STR("provider", "corp"),
                                     MG_TMPL_STR("label", "Corp SSO")};
    const struct mg_tmpl_ctx providers[] = {{p1, 2}, {p2, 2}};
    struct mg_tmpl_var si[] = {
        MG_TMPL_STR("client_name", "Client " EVIL),
        MG_TMPL_STR("resource", "https://gw.example/sql"),
        MG_TMPL_STR("req", "REQ" EVIL),
        MG_TMPL_STR("csrf", "CSRF" EVIL),
        MG_TMPL_STR("error", "Wrong " EVIL),
        MG_TMPL_STR("builtin", "1"),
        MG_TMPL_STR("email", "a@example.com" EVIL),
        MG_TMPL_LIST("providers", providers, 2),
    };
    struct mg_tmpl_ctx c = {si, MG_ARRAY_LEN(si)};
    char *h = render_page(set, "signin.html", &c);
    check_page("signin.html", h);
    TAP_OK(strstr(h, EVIL) == NULL, "signin: nothing unescaped");
    TAP_OK(strstr(h, "Client " EVIL_ESC) && strstr(h, "Wrong " EVIL_ESC) &&
               strstr(h, "value=\"a@example.com" EVIL_ESC "\""),
           "signin: values escaped");
    TAP_OK(strstr(h, "<form method=\"post\" action=\"/_mcpgate/signin\">") != NULL,
           "signin: account form posts to /_mcpgate/signin");
    TAP_OK(strstr(h, "name=\"email\"") && strstr(h, "name=\"password\"") &&
               strstr(h, "type=\"password\""),
           "signin: email and password fields");
    TAP_OK(strstr(h, "<input type=\"hidden\" name=\"req\" value=\"REQ" EVIL_ESC "\">") &&
               strstr(h, "<input type=\"hidden\" name=\"csrf\" value=\"CSRF" EVIL_ESC "\">"),
           "signin: hidden req and csrf");
    size_t n_forms = 0, n_req = 0;
    for (const char *p = h; (p = strstr(p, "action=\"/_mcpgate/signin/provider\"")) != NULL; p++)
        n_forms++;
    for (const char *p = h; (p = strstr(p, "name=\"req\"")) != NULL; p++)
        n_req++;
    TAP_IS_INT(n_forms, 2, "signin: one provider form per provider");
    TAP_IS_INT(n_req, 3, "signin: every form carries req");
    TAP_OK(strstr(h, "name=\"provider\" value=\"google\"") &&
               strstr(h, "name=\"provider\" value=\"corp\""),
           "signin: provider ids");
    TAP_OK(strstr(h, "role=\"alert\"") != NULL, "signin: error announced");
    free(h);

    /* Without error, providers, or account form. */
    si[4] = (struct mg_tmpl_var)MG_TMPL_STR("error", "");
    si[7] = (struct mg_tmpl_var)MG_TMPL_LIST("providers", NULL, 0);
    h = render_page(set, "signin.html", &c);
    check_page("signin.html (no providers)", h);
    TAP_OK(strstr(h, "role=\"alert\"") == NULL, "signin: no error area without error");
    TAP_OK(strstr(h, "/_mcpgate/signin/provider") == NULL, "signin: no provider section");
    TAP_OK(strstr(h, "name=\"password\"") != NULL, "signin: account form alone");
    free(h);
    si[5] = (struct mg_tmpl_var)MG_TMPL_STR("builtin", "");
    h = render_page(set, "signin.html", &c);
    TAP_OK(strstr(h, "<form") == NULL && strstr(h, "No way to sign in") != NULL,
           "signin: nothing configured says so");
    free(h);
    si[7] = (struct mg_tmpl_var)MG_TMPL_LIST("providers", providers, 1);
    h = render_page(set, "signin.html", &c);
    TAP_OK(strstr(h, "name=\"password\"") == NULL && strstr(h, "/_mcpgate/signin/provider"),
           "signin: providers alone");
    check_page("signin.html (providers only)", h);
    free(h);

    const struct mg_tmpl_var s1[] = {MG_TMPL_STR("scope", "sql:read")};
    const struct mg_tmpl_var s2[] = {MG_TMPL_STR("scope", "sql:" EVIL)};
    const struct mg_tmpl_ctx scopes[] = {{s1, 1}, {s2, 1}};
    struct mg_tmpl_var co[] = {
        MG_TMPL_STR("client_name", "Client " EVIL),
        MG_TMPL_STR("client_id", "https://client.example/" EVIL),
        MG_TMPL_STR("redirect_host", "client.example" EVIL),
        MG_TMPL_STR("resource", "https://gw.example/sql" EVIL),
        MG_TMPL_LIST("scopes", scopes, 2),
        MG_TMPL_STR("user", "alice@example.com" EVIL),
        MG_TMPL_STR("req", "REQ" EVIL),
        MG_TMPL_STR("csrf", "CSRF" EVIL),
        MG_TMPL_STR("provider", ""),
    };
    c = (struct mg_tmpl_ctx){co, MG_ARRAY_LEN(co)};
    h = render_page(set, "consent.html", &c);
    check_page("consent.html", h);
    TAP_OK(strstr(h, EVIL) == NULL, "consent: nothing unescaped");
    TAP_OK(strstr(h, "<form method=\"post\" action=\"/_mcpgate/consent\">") != NULL,
           "consent: posts to /_mcpgate/consent");
    TAP_OK(strstr(h, "<input type=\"hidden\" name=\"req\" value=\"REQ" EVIL_ESC "\">") &&
               strstr(h, "<input type=\"hidden\" name=\"csrf\" value=\"CSRF" EVIL_ESC "\">"),
           "consent: hidden req and csrf");
    TAP_OK(strstr(h, "type=\"submit\" name=\"decision\" value=\"allow\"") &&
               strstr(h, "type=\"submit\" name=\"decision\" value=\"deny\""),
           "consent: allow and deny buttons");
    TAP_OK(strstr(h, "https://client.example/" EVIL_ESC) && strstr(h, "client.example" EVIL_ESC) &&
               strstr(h, "https://gw.example/sql" EVIL_ESC) && strstr(h, "<li>sql:read</li>") &&
               strstr(h, "<li>sql:" EVIL_ESC "</li>") && strstr(h, "alice@example.com" EVIL_ESC),
           "consent: client, redirect host, resource, scopes, user shown");
    free(h);
    co[4] = (struct mg_tmpl_var)MG_TMPL_LIST("scopes", NULL, 0);
    h = render_page(set, "consent.html", &c);
    TAP_OK(strstr(h, "<li>") == NULL && strstr(h, "no specific scopes") != NULL,
           "consent: no scopes says so");
    TAP_OK(strstr(h, "name=\"provider\"") == NULL, "consent: no provider field when signed in");
    free(h);
    co[5] = (struct mg_tmpl_var)MG_TMPL_STR("user", "");
    co[8] = (struct mg_tmpl_var)MG_TMPL_STR("provider", "corp" EVIL);
    h = render_page(set, "consent.html", &c);
    TAP_OK(strstr(h, "<input type=\"hidden\" name=\"provider\" value=\"corp" EVIL_ESC "\">") &&
               strstr(h, "Signed in as") == NULL,
           "consent before a provider sign-in: provider field, nobody signed in yet");
    free(h);

    h = render_page(set, "signedout.html", NULL);
    check_page("signedout.html", h);
    free(h);

    struct mg_tmpl_var er[] = {
        MG_TMPL_STR("title", "Bad " EVIL),
        MG_TMPL_STR("message", "Msg " EVIL),
        MG_TMPL_STR("hint", "Hint " EVIL),
    };
    c = (struct mg_tmpl_ctx){er, MG_ARRAY_LEN(er)};
    h = render_page(set, "error.html", &c);
    check_page("error.html", h);
    TAP_OK(strstr(h, EVIL) == NULL, "error: nothing unescaped");
    TAP_OK(strstr(h, "<title>Bad " EVIL_ESC) && strstr(h, "<h1>Bad " EVIL_ESC "</h1>") &&
               strstr(h, "Msg " EVIL_ESC) && strstr(h, "Hint " EVIL_ESC),
           "error: title, message and hint");
    free(h);
    er[2] = (struct mg_tmpl_var)MG_TMPL_STR("hint", "");
    h = render_page(set, "error.html", &c);
    TAP_OK(strstr(h, "class=\"muted\"") == NULL, "error: no hint paragraph without a hint");
    free(h);

    mg_tmpl_set_free(set);
}

int main(void)
{
    test_escape();
    test_sections();
    test_syntax();
    test_cap();
    test_load();
    test_web();
    return tap_done();
}

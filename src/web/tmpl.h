/* HTML templates for the pages the gateway serves to browsers (sign-in,
 * consent, signed out, errors). Loaded once at start-up from a directory,
 * compiled into a flat node list, rendered many times into bounded buffers.
 * Escaping is the default and cannot be forgotten: a raw value must be both
 * written as {{{name}}} in the template and marked MG_TMPL_HTML by the code.
 * Pure apart from mg_tmpl_set_load reading files; a compiled template is
 * immutable, so threads may render it at once.
 *
 * Syntax (a small subset of Mustache; nothing else is special):
 *
 *   {{name}}              the value of name, HTML-escaped (& < > " ' become
 *                         entities; invalid UTF-8 and control characters other
 *                         than tab, LF and CR become U+FFFD)
 *   {{{name}}}            the value of name as is; it must be MG_TMPL_HTML
 *   {{#name}}...{{/name}} the body once per item of the list name; an item's
 *                         names hide the enclosing ones
 *   {{?name}}...{{/name}} the body once if name (text or list) is not empty
 *   {{^name}}...{{/name}} the body once if name (text or list) is empty
 *   {{!comment}}          nothing; ends at the first "}}"
 *
 * A name is 1..64 of [A-Za-z0-9_], with no spaces inside the braces. There is
 * no way to write a literal "{{". Sections nest up to MG_TMPL_MAX_DEPTH.
 * Every name a template uses must be given at render time, with the right
 * kind (a list for {{#}}, text or HTML for {{}}): a missing value is an error,
 * never an empty string, so a typo cannot silently blank part of a page.
 *
 * Escaping makes a value safe in element content and in quoted attribute
 * values. It does not make a value safe as a URL (href, action, src), in an
 * unquoted attribute, or inside <style> or <script>: templates must not put
 * values there. */
#ifndef MG_WEB_TMPL_H
#define MG_WEB_TMPL_H

#include "core/buf.h"

#define MG_TMPL_MAX_BYTES 65536 /* default bound on one template file */
#define MG_TMPL_MAX_FILES 64
#define MG_TMPL_MAX_DEPTH 8
#define MG_TMPL_MAX_NAME  64

enum mg_tmpl_kind {
    MG_TMPL_TEXT, /* escaped wherever it goes */
    MG_TMPL_HTML, /* a trusted fragment the code built; allowed in {{{name}}} */
    MG_TMPL_LIST, /* items for {{#name}}, tested by {{?name}} and {{^name}} */
};

struct mg_tmpl_ctx;

/* One named value. Everything it points at is the caller's and need only
 * live during the render. A NULL value renders as "" (and is empty). */
struct mg_tmpl_var {
    const char *name;
    enum mg_tmpl_kind kind;
    const char *value;               /* TEXT, HTML: NUL-terminated */
    const struct mg_tmpl_ctx *items; /* LIST: n_items contexts */
    size_t n_items;
};

/* The names visible to a template, or to one item of a list. */
struct mg_tmpl_ctx {
    const struct mg_tmpl_var *vars;
    size_t n_vars;
};

/* Initialisers for arrays of mg_tmpl_var. */
#define MG_TMPL_STR(n, v)                                                                          \
    {                                                                                              \
        .name = (n), .kind = MG_TMPL_TEXT, .value = (v)                                            \
    }
#define MG_TMPL_RAW(n, v)                                                                          \
    {                                                                                              \
        .name = (n), .kind = MG_TMPL_HTML, .value = (v)                                            \
    }
#define MG_TMPL_LIST(n, i, k)                                                                      \
    {                                                                                              \
        .name = (n), .kind = MG_TMPL_LIST, .items = (i), .n_items = (k)                            \
    }

struct mg_tmpl;
struct mg_tmpl_set;

/* Compiles len bytes of src (copied; the caller keeps src) named name (used
 * in messages and by mg_tmpl_set_get). On 0 *out is the caller's
 * (mg_tmpl_free). MG_ELIMIT if len > MG_TMPL_MAX_BYTES, MG_EINVAL for a
 * syntax error (unterminated tag, bad or empty name, "{{{" not closed by
 * "}}}", a "}" right after a tag, a section closed without being opened,
 * under another name, or never; nesting deeper than MG_TMPL_MAX_DEPTH; a NUL
 * byte). On failure *out is NULL and, if err is not NULL, *err (caller frees)
 * is "NAME:LINE:COL: message". */
int mg_tmpl_compile(const char *name, const char *src, size_t len, struct mg_tmpl **out,
                    char **err);
void mg_tmpl_free(struct mg_tmpl *t); /* NULL is a no-op */
/* The name given at compile time (owned by t). */
const char *mg_tmpl_name(const struct mg_tmpl *t);

/* Renders t with ctx (read only; NULL means no names) and appends the result
 * to out, whose cap bounds the page. MG_ELIMIT if the cap is reached,
 * MG_EINVAL if a name is missing or of the wrong kind (text where a list is
 * needed, a list in {{name}}, text in {{{name}}}); out is then unchanged and,
 * if err is not NULL, *err (caller frees) is "NAME:LINE:COL: message". */
int mg_tmpl_render(const struct mg_tmpl *t, const struct mg_tmpl_ctx *ctx, struct mg_buf *out,
                   char **err);

/* Appends n bytes of s HTML-escaped as {{name}} does, for code that builds an
 * MG_TMPL_HTML fragment. MG_ELIMIT (out unchanged) at the cap. */
int mg_tmpl_escape(struct mg_buf *out, const char *s, size_t n);

/* Loads and compiles every regular file dir/ *.html (names starting with '.'
 * are skipped; subdirectories are not read), each at most max_bytes (0, or
 * anything above MG_TMPL_MAX_BYTES, means MG_TMPL_MAX_BYTES). On 0 *out is
 * the caller's (mg_tmpl_set_free). MG_EIO if dir or a file cannot be read, MG_ENOTFOUND
 * if there is no template, MG_ELIMIT for a file over max_bytes or more than
 * MG_TMPL_MAX_FILES files, MG_EINVAL for a syntax error; then *out is NULL
 * and *err (if err is not NULL; caller frees) says which file and where. */
int mg_tmpl_set_load(const char *dir, size_t max_bytes, struct mg_tmpl_set **out, char **err);
void mg_tmpl_set_free(struct mg_tmpl_set *set); /* NULL is a no-op */
/* The template with file name name ("signin.html"), owned by set; NULL if
 * there is none. */
const struct mg_tmpl *mg_tmpl_set_get(const struct mg_tmpl_set *set, const char *name);
size_t mg_tmpl_set_count(const struct mg_tmpl_set *set);

#endif

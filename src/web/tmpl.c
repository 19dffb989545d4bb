/* Template compilation and rendering; the syntax is in tmpl.h. A compiled
 * template is its own copy of the source plus a flat array of nodes: text
 * runs and names point into the copy, and a section node records the index
 * just past its body, so rendering is a loop over a range with recursion
 * only into sections (depth bounded at compile time). Sections that are not
 * rendered are still walked without output, so a misspelt name inside an
 * error branch is reported on the first render, not on the first error. */
#include "web/tmpl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

enum node_kind {
    N_TEXT,
    N_VAR,    /* {{name}} */
    N_RAW,    /* {{{name}}} */
    N_EACH,   /* {{#name}} */
    N_IF,     /* {{?name}} */
    N_UNLESS, /* {{^name}} */
};

struct node {
    enum node_kind kind;
    const char *s; /* text, or the name */
    size_t len;
    size_t end; /* sections: index of the node after the body */
    size_t at;  /* offset of the tag in the source, for messages */
};

struct mg_tmpl {
    char *name;
    char *src;
    size_t src_len;
    struct node *nodes;
    size_t n_nodes, cap_nodes;
};

struct mg_tmpl_set {
    struct mg_tmpl **t;
    size_t n;
};

__attribute__((format(printf, 2, 3))) static void errf(char **err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(*err);
    *err = mg_xstrdup(msg);
}

/* 1-based line and column (in bytes) of offset at in t's source. */
static void line_col(const struct mg_tmpl *t, size_t at, unsigned *line, unsigned *col)
{
    size_t l = 1, c = 1;
    for (size_t i = 0; i < at && i < t->src_len; i++) {
        if (t->src[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = (unsigned)l;
    *col = (unsigned)c;
}

__attribute__((format(printf, 4, 5))) static void errat(char **err, const struct mg_tmpl *t,
                                                        size_t at, const char *fmt, ...)
{
    char msg[384];
    unsigned line, col;
    va_list ap;
    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    line_col(t, at, &line, &col);
    errf(err, "%s:%u:%u: %s", t->name, line, col, msg);
}

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static struct node *add_node(struct mg_tmpl *t, enum node_kind kind, const char *s, size_t len,
                             size_t at)
{
    if (t->n_nodes == t->cap_nodes) {
        t->cap_nodes = t->cap_nodes ? 2 * t->cap_nodes : 32;
        t->nodes = mg_xrealloc(t->nodes, t->cap_nodes * sizeof *t->nodes);
    }
    struct node *n = &t->nodes[t->n_nodes++];
    *n = (struct node){.kind = kind, .s = s, .len = len, .end = 0, .at = at};
    return n;
}

static int parse(struct mg_tmpl *t, char **err)
{
    const char *src = t->src;
    size_t len = t->src_len, pos = 0;
    size_t open[MG_TMPL_MAX_DEPTH];
    size_t depth = 0;

    const char *nul = memchr(src, '\0', len);
    if (nul != NULL) {
        errat(err, t, (size_t)(nul - src), "NUL byte in template");
        return MG_EINVAL;
    }
    while (pos < len) {
        const char *tag = memmem(src + pos, len - pos, "{{", 2);
        size_t at = tag ? (size_t)(tag - src) : len;
        if (at > pos)
            add_node(t, N_TEXT, src + pos, at - pos, pos);
        if (tag == NULL)
            break;

        size_t p = at + 2;
        bool raw = p < len && src[p] == '{';
        char sigil = 0;
        if (raw)
            p++;
        else if (p < len && src[p] != '\0' && strchr("#?^/!", src[p]) != NULL)
            sigil = src[p++];
        if (sigil == '!') {
            const char *end = memmem(src + p, len - p, "}}", 2);
            if (end == NULL) {
                errat(err, t, at, "unterminated comment");
                return MG_EINVAL;
            }
            pos = (size_t)(end - src) + 2;
            continue;
        }

        size_t name_at = p;
        while (p < len && is_name_char(src[p]))
            p++;
        size_t name_len = p - name_at;
        size_t close_len = raw ? 3 : 2, nb = 0;
        if (p == len) {
            errat(err, t, at, "unterminated tag");
            return MG_EINVAL;
        }
        if (name_len == 0) {
            errat(err, t, p, "expected a name ([A-Za-z0-9_], no spaces) in tag");
            return MG_EINVAL;
        }
        if (name_len > MG_TMPL_MAX_NAME) {
            errat(err, t, name_at, "name longer than %d bytes", MG_TMPL_MAX_NAME);
            return MG_EINVAL;
        }
        if (src[p] != '}') {
            unsigned char c = (unsigned char)src[p];
            if (c > 0x20 && c < 0x7f)
                errat(err, t, p, "unexpected '%c' in tag (names are [A-Za-z0-9_])", c);
            else
                errat(err, t, p, "unexpected byte 0x%02x in tag (names are [A-Za-z0-9_])", c);
            return MG_EINVAL;
        }
        while (p + nb < len && src[p + nb] == '}' && nb <= close_len)
            nb++;
        if (nb < close_len) {
            if (raw && nb == 2)
                errat(err, t, p, "\"{{{\" must be closed by \"}}}\"");
            else if (p + nb == len)
                errat(err, t, at, "unterminated tag");
            else
                errat(err, t, p, "expected \"%s\"", raw ? "}}}" : "}}");
            return MG_EINVAL;
        }
        if (nb > close_len) {
            errat(err, t, p + close_len, "'}' right after a tag (\"{{{name}}}\" is the raw form)");
            return MG_EINVAL;
        }
        p += close_len;

        const char *name = src + name_at;
        switch (sigil) {
        case 0: add_node(t, raw ? N_RAW : N_VAR, name, name_len, at); break;
        case '#':
        case '?':
        case '^':
            if (depth == MG_TMPL_MAX_DEPTH) {
                errat(err, t, at, "sections nested deeper than %d", MG_TMPL_MAX_DEPTH);
                return MG_EINVAL;
            }
            open[depth++] = t->n_nodes;
            add_node(t, sigil == '#' ? N_EACH : sigil == '?' ? N_IF : N_UNLESS, name, name_len, at);
            break;
        case '/': {
            if (depth == 0) {
                errat(err, t, at, "{{/%.*s}} closes no section", (int)name_len, name);
                return MG_EINVAL;
            }
            struct node *o = &t->nodes[open[depth - 1]];
            if (o->len != name_len || memcmp(o->s, name, name_len) != 0) {
                unsigned l, c;
                line_col(t, o->at, &l, &c);
                errat(err, t, at, "{{/%.*s}} closes the section \"%.*s\" opened at %u:%u",
                      (int)name_len, name, (int)o->len, o->s, l, c);
                return MG_EINVAL;
            }
            o->end = t->n_nodes;
            depth--;
            break;
        }
        default: MG_ASSERT(0);
        }
        pos = p;
    }
    if (depth > 0) {
        const struct node *o = &t->nodes[open[depth - 1]];
        errat(err, t, o->at, "section \"%.*s\" is never closed", (int)o->len, o->s);
        return MG_EINVAL;
    }
    return MG_OK;
}

int mg_tmpl_compile(const char *name, const char *src, size_t len, struct mg_tmpl **out, char **err)
{
    struct mg_tmpl *t = NULL;
    int rc = MG_ELIMIT;

    *out = NULL;
    if (err)
        *err = NULL;
    if (len > MG_TMPL_MAX_BYTES) {
        errf(err, "%s: template larger than %d bytes", name, MG_TMPL_MAX_BYTES);
        goto out;
    }
    t = mg_xcalloc(1, sizeof *t);
    t->name = mg_xstrdup(name);
    t->src = mg_xmalloc(len + 1);
    if (len > 0)
        memcpy(t->src, src, len);
    t->src[len] = '\0';
    t->src_len = len;
    rc = parse(t, err);
    if (rc == MG_OK) {
        *out = t;
        t = NULL;
    }
out:
    mg_tmpl_free(t);
    return rc;
}

void mg_tmpl_free(struct mg_tmpl *t)
{
    if (t == NULL)
        return;
    free(t->nodes);
    free(t->src);
    free(t->name);
    free(t);
}

const char *mg_tmpl_name(const struct mg_tmpl *t)
{
    return t->name;
}

static int escape(struct mg_buf *out, const char *s, size_t n)
{
    static const char fffd[] = "\xef\xbf\xbd";
    int rc = MG_OK;
    for (size_t i = 0; rc == MG_OK && i < n;) {
        size_t j = i;
        /* A run of bytes that need nothing goes in one append. */
        while (j < n) {
            unsigned char c = (unsigned char)s[j];
            if (c >= 0x80 || c == '&' || c == '<' || c == '>' || c == '"' || c == '\'' ||
                c == 0x7f || (c < 0x20 && c != '\t' && c != '\n' && c != '\r'))
                break;
            j++;
        }
        if (j > i) {
            rc = mg_buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&': rc = mg_buf_append(out, "&amp;", 5); break;
        case '<': rc = mg_buf_append(out, "&lt;", 4); break;
        case '>': rc = mg_buf_append(out, "&gt;", 4); break;
        case '"': rc = mg_buf_append(out, "&quot;", 6); break;
        case '\'': rc = mg_buf_append(out, "&#39;", 5); break;
        default:
            if (c >= 0x80) {
                size_t l = mg_utf8_seq_len((const unsigned char *)s + i, n - i);
                if (l > 0) {
                    rc = mg_buf_append(out, s + i, l);
                    i += l;
                    continue;
                }
            }
            rc = mg_buf_append(out, fffd, 3);
        }
        i++;
    }
    return rc;
}

int mg_tmpl_escape(struct mg_buf *out, const char *s, size_t n)
{
    size_t mark = out->len;
    int rc = escape(out, s, n);
    if (rc != MG_OK && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
}

struct scope {
    const struct mg_tmpl_ctx *ctx;
    const struct scope *up;
};

static const struct mg_tmpl_var *lookup(const struct scope *sc, const struct node *n)
{
    for (; sc != NULL; sc = sc->up) {
        if (sc->ctx == NULL)
            continue;
        for (size_t i = 0; i < sc->ctx->n_vars; i++) {
            const struct mg_tmpl_var *v = &sc->ctx->vars[i];
            if (v->name && strlen(v->name) == n->len && memcmp(v->name, n->s, n->len) == 0)
                return v;
        }
    }
    return NULL;
}

static const char *kind_name(enum mg_tmpl_kind k)
{
    switch (k) {
    case MG_TMPL_TEXT: return "text";
    case MG_TMPL_HTML: return "HTML";
    case MG_TMPL_LIST: return "a list";
    default: return "of an unknown kind";
    }
}

/* Renders nodes [from, to) in scope sc; with dry set, checks names and kinds
 * but writes nothing (a section that is not shown). */
static int render(const struct mg_tmpl *t, size_t from, size_t to, const struct scope *sc, bool dry,
                  struct mg_buf *out, char **err)
{
    int rc = MG_OK;
    for (size_t i = from; rc == MG_OK && i < to;) {
        const struct node *n = &t->nodes[i];
        if (n->kind == N_TEXT) {
            if (!dry)
                rc = mg_buf_append(out, n->s, n->len);
            i++;
            continue;
        }
        const struct mg_tmpl_var *v = lookup(sc, n);
        if (v == NULL) {
            errat(err, t, n->at, "no value for \"%.*s\"", (int)n->len, n->s);
            return MG_EINVAL;
        }
        const char *s = v->value ? v->value : "";
        switch (n->kind) {
        case N_VAR:
            if (v->kind != MG_TMPL_TEXT && v->kind != MG_TMPL_HTML) {
                errat(err, t, n->at, "{{%.*s}} is %s, not text", (int)n->len, n->s,
                      kind_name(v->kind));
                return MG_EINVAL;
            }
            if (!dry)
                rc = escape(out, s, strlen(s));
            i++;
            break;
        case N_RAW:
            if (v->kind != MG_TMPL_HTML) {
                errat(err, t, n->at, "{{{%.*s}}} is %s, not trusted HTML", (int)n->len, n->s,
                      kind_name(v->kind));
                return MG_EINVAL;
            }
            if (!dry)
                rc = mg_buf_appends(out, s);
            i++;
            break;
        case N_EACH:
            if (v->kind != MG_TMPL_LIST) {
                errat(err, t, n->at, "{{#%.*s}} is %s, not a list", (int)n->len, n->s,
                      kind_name(v->kind));
                return MG_EINVAL;
            }
            for (size_t k = 0; rc == MG_OK && k < v->n_items; k++) {
                struct scope item = {&v->items[k], sc};
                rc = render(t, i + 1, n->end, &item, dry, out, err);
            }
            i = n->end;
            break;
        case N_IF:
        case N_UNLESS: {
            bool empty;
            if (v->kind == MG_TMPL_LIST)
                empty = v->n_items == 0;
            else if (v->kind == MG_TMPL_TEXT || v->kind == MG_TMPL_HTML)
                empty = s[0] == '\0';
            else {
                errat(err, t, n->at, "\"%.*s\" is %s", (int)n->len, n->s, kind_name(v->kind));
                return MG_EINVAL;
            }
            bool show = (n->kind == N_IF) != empty;
            rc = render(t, i + 1, n->end, sc, dry || !show, out, err);
            i = n->end;
            break;
        }
        default: MG_ASSERT(0);
        }
    }
    if (rc == MG_ELIMIT && err != NULL && *err == NULL)
        errf(err, "%s: page larger than %zu bytes", t->name, out->max);
    return rc;
}

int mg_tmpl_render(const struct mg_tmpl *t, const struct mg_tmpl_ctx *ctx, struct mg_buf *out,
                   char **err)
{
    struct scope top = {ctx, NULL};
    size_t mark = out->len;
    if (err)
        *err = NULL;
    int rc = render(t, 0, t->n_nodes, &top, false, out, err);
    if (rc != MG_OK && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
}

/* Reads the regular file path (at most max bytes) into a new buffer.
 * MG_ENOTFOUND: not a regular file (skipped by the caller). */
static int read_file(const char *path, size_t max, char **data, size_t *len, char **err)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd = -1, rc = MG_EIO;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        errf(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = MG_ENOTFOUND;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = MG_ELIMIT;
        errf(err, "%s: larger than %zu bytes", path, max);
        goto out;
    }
    /* Read to EOF, one byte past the bound, in case the file grew. */
    buf = mg_xmalloc(max + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            errf(err, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            rc = MG_ELIMIT;
            errf(err, "%s: larger than %zu bytes", path, max);
            goto out;
        }
    }
    *data = buf;
    *len = n;
    buf = NULL;
    rc = MG_OK;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int cmp_tmpl(const void *a, const void *b)
{
    const struct mg_tmpl *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

int mg_tmpl_set_load(const char *dir, size_t max_bytes, struct mg_tmpl_set **out, char **err)
{
    struct mg_tmpl_set *set = mg_xcalloc(1, sizeof *set);
    DIR *d = NULL;
    struct dirent *de;
    int rc = MG_EIO;

    *out = NULL;
    if (err)
        *err = NULL;
    if (max_bytes == 0 || max_bytes > MG_TMPL_MAX_BYTES)
        max_bytes = MG_TMPL_MAX_BYTES;
    d = opendir(dir);
    if (d == NULL) {
        errf(err, "%s: %s", dir, strerror(errno));
        goto out;
    }
    rc = MG_OK;
    while (rc == MG_OK && (de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] == '.' || nl <= 5 || strcmp(de->d_name + nl - 5, ".html") != 0)
            continue;
        char path[4096];
        char *data = NULL;
        size_t len = 0;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path) {
            errf(err, "%s/%s: path too long", dir, de->d_name);
            rc = MG_ELIMIT;
            break;
        }
        rc = read_file(path, max_bytes, &data, &len, err);
        if (rc == MG_ENOTFOUND) {
            rc = MG_OK;
            continue;
        }
        if (rc != MG_OK)
            break;
        if (set->n == MG_TMPL_MAX_FILES) {
            free(data);
            errf(err, "%s: more than %d templates", dir, MG_TMPL_MAX_FILES);
            rc = MG_ELIMIT;
            break;
        }
        struct mg_tmpl *t = NULL;
        rc = mg_tmpl_compile(de->d_name, data, len, &t, err);
        free(data);
        if (rc != MG_OK)
            break;
        set->t = mg_xrealloc(set->t, (set->n + 1) * sizeof *set->t);
        set->t[set->n++] = t;
    }
    if (rc == MG_OK && set->n == 0) {
        errf(err, "%s: no *.html templates", dir);
        rc = MG_ENOTFOUND;
    }
    if (rc == MG_OK) {
        qsort(set->t, set->n, sizeof *set->t, cmp_tmpl);
        *out = set;
        set = NULL;
    }
out:
    if (d != NULL)
        closedir(d);
    mg_tmpl_set_free(set);
    return rc;
}

void mg_tmpl_set_free(struct mg_tmpl_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        mg_tmpl_free(set->t[i]);
    free(set->t);
    free(set);
}

const struct mg_tmpl *mg_tmpl_set_get(const struct mg_tmpl_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->t[i]->name, name) == 0)
            return set->t[i];
    return NULL;
}

size_t mg_tmpl_set_count(const struct mg_tmpl_set *set)
{
    return set->n;
}

/* The urlencoded parser and encoder; see form.h. The parser is a byte-at-a-time
 * state machine so that a split input gives exactly the result of a whole
 * one; decoded names and values collect in bounded buffers and become pairs
 * when their sequence ends. */
#include "http/form.h"

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = mg_utf8_seq_len(u + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

void mg_form_init(struct mg_form *f, const struct mg_form_limits *lim)
{
    memset(f, 0, sizeof *f);
    f->lim = lim ? *lim : MG_FORM_LIMITS_DEFAULT;
    mg_buf_init(&f->name, f->lim.max_name);
    mg_buf_init(&f->value, f->lim.max_value);
}

void mg_form_fini(struct mg_form *f)
{
    for (size_t i = 0; i < f->n_pairs; i++) {
        free(f->pairs[i].name);
        free(f->pairs[i].value);
    }
    free(f->pairs);
    f->pairs = NULL;
    f->n_pairs = 0;
    mg_buf_fini(&f->name);
    mg_buf_fini(&f->value);
}

/* One decoded byte of the current name or value. */
static int emit(struct mg_form *f, unsigned char c)
{
    if (c == '\0')
        return MG_EINVAL;
    f->in_pair = true;
    return mg_buf_append(f->in_value ? &f->value : &f->name, &c, 1);
}

/* The end of a sequence ('&' or the end of input): WHATWG skips empty ones. */
static int end_pair(struct mg_form *f)
{
    if (!f->in_pair)
        return MG_OK;
    if (!utf8_valid(f->name.data, f->name.len) || !utf8_valid(f->value.data, f->value.len))
        return MG_EINVAL;
    if (f->n_pairs >= f->lim.max_pairs)
        return MG_ELIMIT;
    /* Growing one at a time is fine: at most max_pairs (64 by default). */
    f->pairs = mg_xrealloc(f->pairs, (f->n_pairs + 1) * sizeof *f->pairs);
    struct mg_form_pair *p = &f->pairs[f->n_pairs++];
    p->name = mg_xstrndup(f->name.data ? f->name.data : "", f->name.len);
    p->name_len = f->name.len;
    p->value = mg_xstrndup(f->value.data ? f->value.data : "", f->value.len);
    p->value_len = f->value.len;
    mg_buf_reset(&f->name);
    mg_buf_reset(&f->value);
    f->in_value = false;
    f->in_pair = false;
    return MG_OK;
}

static int feed_byte(struct mg_form *f, unsigned char c)
{
    if (f->esc > 0) {
        int v = hex_value(c);
        if (v < 0)
            return MG_EINVAL;
        if (f->esc == 2) {
            f->esc_hi = (unsigned char)v;
            f->esc = 1;
            return MG_OK;
        }
        f->esc = 0;
        return emit(f, (unsigned char)(f->esc_hi << 4 | v));
    }
    switch (c) {
    case '&': return end_pair(f);
    case '%':
        f->esc = 2;
        f->in_pair = true;
        return MG_OK;
    case '+': return emit(f, ' ');
    case '=':
        if (!f->in_value) {
            f->in_value = true;
            f->in_pair = true;
            return MG_OK;
        }
        return emit(f, c);
    default: return emit(f, c);
    }
}

int mg_form_feed(struct mg_form *f, const char *data, size_t len)
{
    if (f->status != MG_OK)
        return f->status;
    if (f->ended)
        return MG_EINVAL;
    /* The bytes within the limit are parsed first, so that an error in them
     * is reported the same however the input was split. */
    size_t room = f->lim.max_bytes - f->n_bytes;
    size_t n = MG_MIN(len, room);
    f->n_bytes += n;
    for (size_t i = 0; i < n; i++) {
        int rc = feed_byte(f, (unsigned char)data[i]);
        if (rc != MG_OK)
            return f->status = rc;
    }
    if (len > room)
        return f->status = MG_ELIMIT;
    return MG_OK;
}

int mg_form_end(struct mg_form *f)
{
    if (f->status != MG_OK)
        return f->status;
    if (f->ended)
        return MG_EINVAL;
    f->ended = true;
    /* "a=%4" ends inside an escape: malformed, as in the middle. */
    int rc = f->esc > 0 ? MG_EINVAL : end_pair(f);
    if (rc != MG_OK)
        f->status = rc;
    /* The decoding buffers are not needed any more. */
    mg_buf_fini(&f->name);
    mg_buf_fini(&f->value);
    return rc;
}

int mg_form_parse(struct mg_form *f, const struct mg_form_limits *lim, const char *data, size_t len)
{
    mg_form_init(f, lim);
    int rc = mg_form_feed(f, data, len);
    if (rc == MG_OK)
        rc = mg_form_end(f);
    return rc;
}

int mg_form_get(const struct mg_form *f, const char *name, const char **value)
{
    const char *found = NULL;
    int rc = MG_ENOTFOUND;
    MG_ASSERT(f->ended && f->status == MG_OK);
    for (size_t i = 0; i < f->n_pairs; i++) {
        if (strcmp(f->pairs[i].name, name) != 0)
            continue;
        if (found != NULL) {
            found = NULL;
            rc = MG_EINVAL;
            break;
        }
        found = f->pairs[i].value;
        rc = MG_OK;
    }
    *value = found;
    return rc;
}

size_t mg_form_count_of(const struct mg_form *f, const char *name)
{
    size_t n = 0;
    MG_ASSERT(f->ended && f->status == MG_OK);
    for (size_t i = 0; i < f->n_pairs; i++)
        n += strcmp(f->pairs[i].name, name) == 0;
    return n;
}

/* RFC 3986 §2.3. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int encode(struct mg_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = MG_OK;
    for (size_t i = 0; rc == MG_OK && i < len;) {
        /* Runs of unreserved bytes go in one append. */
        size_t j = i;
        while (j < len && is_unreserved((unsigned char)s[j]))
            j++;
        if (j > i) {
            rc = mg_buf_append(b, s + i, j - i);
            i = j;
            continue;
        }
        unsigned char c = (unsigned char)s[i++];
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        rc = mg_buf_append(b, e, 3);
    }
    return rc;
}

int mg_form_encode(struct mg_buf *b, const char *s, size_t len)
{
    size_t mark = b->len;
    int rc = encode(b, s, len);
    if (rc != MG_OK && b->data) {
        b->len = mark;
        b->data[mark] = '\0';
    }
    return rc;
}

int mg_form_append(struct mg_buf *b, const char *name, const char *value)
{
    size_t mark = b->len;
    int rc = MG_OK;
    if (b->len > 0)
        rc = mg_buf_append(b, "&", 1);
    if (rc == MG_OK)
        rc = encode(b, name, strlen(name));
    if (rc == MG_OK)
        rc = mg_buf_append(b, "=", 1);
    if (rc == MG_OK)
        rc = encode(b, value, strlen(value));
    if (rc != MG_OK && b->data) {
        b->len = mark;
        b->data[mark] = '\0';
    }
    return rc;
}

int mg_form_url_append(struct mg_buf *b, const char *url, const struct mg_form_param *params,
                       size_t n_params)
{
    struct mg_form existing;
    size_t mark = b->len;
    size_t len = strlen(url);
    const char *q = memchr(url, '?', len);
    int rc = MG_OK;

    mg_form_init(&existing, NULL);
    if (len == 0) {
        rc = MG_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '#') {
            rc = MG_EINVAL;
            goto out;
        }
    }
    if (q != NULL) {
        mg_form_fini(&existing);
        if (mg_form_parse(&existing, NULL, q + 1, len - (size_t)(q + 1 - url)) != MG_OK) {
            rc = MG_EINVAL;
            goto out;
        }
        for (size_t i = 0; i < n_params; i++) {
            if (mg_form_count_of(&existing, params[i].name) > 0) {
                rc = MG_EINVAL;
                goto out;
            }
        }
    }

    rc = mg_buf_append(b, url, len);
    if (rc == MG_OK && n_params > 0) {
        /* "cb" -> "cb?", "cb?a=1" -> "cb?a=1&", "cb?" and "cb?a=1&" stay.
         * Only the first '?' starts the query: "cb?a?" needs an '&'. */
        bool empty_query = q != NULL && q == url + len - 1;
        if (q == NULL)
            rc = mg_buf_append(b, "?", 1);
        else if (!empty_query && url[len - 1] != '&')
            rc = mg_buf_append(b, "&", 1);
    }
    for (size_t i = 0; rc == MG_OK && i < n_params; i++) {
        if (i > 0)
            rc = mg_buf_append(b, "&", 1);
        if (rc == MG_OK)
            rc = encode(b, params[i].name, strlen(params[i].name));
        if (rc == MG_OK)
            rc = mg_buf_append(b, "=", 1);
        if (rc == MG_OK)
            rc = encode(b, params[i].value, strlen(params[i].value));
    }
out:
    mg_form_fini(&existing);
    if (rc != MG_OK && b->data) {
        b->len = mark;
        b->data[mark] = '\0';
    }
    return rc;
}

/* Bounded growable buffers; see buf.h. */
#include "core/buf.h"

#include <stdarg.h>

void mg_buf_init(struct mg_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void mg_buf_fini(struct mg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void mg_buf_reset(struct mg_buf *b)
{
    b->len = 0;
}

static int reserve(struct mg_buf *b, size_t extra)
{
    if (extra > b->max - b->len)
        return MG_ELIMIT;
    size_t need = b->len + extra + 1; /* room for a NUL terminator */
    if (need <= b->cap)
        return MG_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->data = mg_xrealloc(b->data, cap);
    b->cap = cap;
    return MG_OK;
}

int mg_buf_reserve(struct mg_buf *b, size_t extra)
{
    return reserve(b, extra);
}

int mg_buf_append_slow(struct mg_buf *b, const void *data, size_t n)
{
    int rc = reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return MG_OK;
}

int mg_buf_appends(struct mg_buf *b, const char *s)
{
    return mg_buf_append(b, s, strlen(s));
}

int mg_buf_appendf(struct mg_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MG_EINVAL;
    if ((size_t)n < sizeof small)
        return mg_buf_append(b, small, (size_t)n);
    int rc = reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MG_OK;
}

int mg_buf_append_u64(struct mg_buf *b, uint64_t v)
{
    char tmp[MG_U64_DEC];
    const char *d = mg_u64_dec(tmp, v);
    return mg_buf_append(b, d, (size_t)(tmp + sizeof tmp - d));
}

void mg_buf_consume(struct mg_buf *b, size_t n)
{
    MG_ASSERT(n <= b->len);
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (b->data)
        b->data[b->len] = '\0';
}

char *mg_buf_steal(struct mg_buf *b, size_t *len)
{
    char *d = b->data;
    if (len)
        *len = b->len;
    if (d == NULL)
        d = mg_xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

int mg_buf_append_json_str(struct mg_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = mg_buf_append(b, "\"", 1);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            /* Invalid UTF-8 becomes U+FFFD so every log line stays valid JSON. */
            size_t l = mg_utf8_seq_len((const unsigned char *)s + i, n - i);
            if (l == 0) {
                rc = mg_buf_append(b, "\\ufffd", 6);
            } else {
                rc = mg_buf_append(b, s + i, l);
                i += l - 1;
            }
        } else if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = mg_buf_append(b, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = mg_buf_append(b, e, 6);
        } else {
            rc = mg_buf_append(b, &s[i], 1);
        }
    }
    if (rc == 0)
        rc = mg_buf_append(b, "\"", 1);
    return rc;
}

/* A growable byte buffer with a hard cap fixed at init (curl's dynbuf idea):
 * appending past the cap fails with MG_ELIMIT instead of growing without end. */
#ifndef MG_CORE_BUF_H
#define MG_CORE_BUF_H

#include "core/common.h"

struct mg_buf {
    char *data;
    size_t len;
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len */
};

void mg_buf_init(struct mg_buf *b, size_t max);
void mg_buf_fini(struct mg_buf *b);
void mg_buf_reset(struct mg_buf *b);
/* Makes room for extra more bytes at once (one allocation instead of a
 * few doublings, for a buffer whose usual size is known); MG_ELIMIT past
 * max. */
int mg_buf_reserve(struct mg_buf *b, size_t extra);
/* Appends n bytes; MG_ELIMIT if len would exceed max (nothing appended). */
int mg_buf_append_slow(struct mg_buf *b, const void *data, size_t n);
/* Inline when there is room and len + n is within max: a request makes
 * dozens of small appends (bench/RESULTS.md). */
static inline int mg_buf_append(struct mg_buf *b, const void *data, size_t n)
{
    if (n < b->cap - b->len && n <= b->max - b->len) { /* cap 0 goes slow */
        if (n)
            memcpy(b->data + b->len, data, n);
        b->len += n;
        b->data[b->len] = '\0';
        return MG_OK;
    }
    return mg_buf_append_slow(b, data, n);
}
int mg_buf_appends(struct mg_buf *b, const char *s);
int mg_buf_appendf(struct mg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends an unsigned number in decimal (no printf on hot paths). */
int mg_buf_append_u64(struct mg_buf *b, uint64_t v);
/* Removes the first n bytes. */
void mg_buf_consume(struct mg_buf *b, size_t n);
/* Hands the bytes to the caller (who frees them) and resets the buffer. */
char *mg_buf_steal(struct mg_buf *b, size_t *len);
/* Appends s as a JSON string literal (with quotes). */
int mg_buf_append_json_str(struct mg_buf *b, const char *s, size_t n);

#endif

/* Implementation of the helpers declared in common.h: status names, the
 * never-failing allocators, and small string and time utilities. */
#define _POSIX_C_SOURCE 200809L
#include "core/common.h"

#include <time.h>

const char *mg_strstatus(int status)
{
    switch (status) {
    case MG_OK: return "ok";
    case MG_ENOMEM: return "out of memory";
    case MG_ELIMIT: return "limit exceeded";
    case MG_EPROTO: return "protocol error";
    case MG_EINVAL: return "invalid input";
    case MG_EAGAIN: return "incomplete input";
    case MG_EIO: return "I/O error";
    case MG_ENOTFOUND: return "not found";
    case MG_EDENIED: return "denied";
    case MG_ETIMEDOUT: return "timed out";
    case MG_ECLOSED: return "connection closed";
    case MG_ETLS: return "TLS error";
    case MG_ECANCELED: return "cancelled";
    default: return "unknown error";
    }
}

void mg_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "mcpgate: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

static void *check(void *p)
{
    if (p == NULL) {
        fputs("mcpgate: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *mg_xmalloc(size_t n)
{
    return check(malloc(n ? n : 1));
}
/* Small blocks are malloc'd and cleared: glibc 2.36's calloc never takes
 * from the per-thread cache malloc uses, and several blocks per request
 * are made here (bench/RESULTS.md). */
void *mg_xcalloc(size_t n, size_t size)
{
    n = n ? n : 1;
    size = size ? size : 1;
    if (size <= 1024 && n <= 1024 / size) {
        void *p = check(malloc(n * size));
        /* Keeps the compiler from folding malloc + memset back into calloc. */
        __asm__ volatile("" : : "r"(p) : "memory");
        memset(p, 0, n * size);
        return p;
    }
    return check(calloc(n, size));
}
void *mg_xrealloc(void *p, size_t n)
{
    return check(realloc(p, n ? n : 1));
}
char *mg_xstrdup(const char *s)
{
    return check(strdup(s));
}
char *mg_xstrndup(const char *s, size_t n)
{
    return check(strndup(s, n));
}

/* ASCII only, whatever the locale (header names, tokens). One pass that
 * stops at the first difference, without strlen (bench/RESULTS.md). */
bool mg_str_ieq_slow(const char *a, size_t a_len, const char *b)
{
    for (size_t i = 0; i < a_len; i++) {
        if (b[i] == '\0' ||
            mg_ascii_lower((unsigned char)a[i]) != mg_ascii_lower((unsigned char)b[i]))
            return false;
    }
    return b[a_len] == '\0';
}

char *mg_u64_dec(char buf[MG_U64_DEC], uint64_t v)
{
    char *d = buf + MG_U64_DEC;
    do {
        *--d = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return d;
}

bool mg_str_eq(const char *a, size_t a_len, const char *b)
{
    return strlen(b) == a_len && memcmp(a, b, a_len) == 0;
}

int mg_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return MG_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return MG_EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return MG_ELIMIT;
        v = v * 10 + d;
    }
    *out = v;
    return MG_OK;
}

uint64_t mg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mg_now_ms(void)
{
    return mg_now_ns() / 1000000u;
}

size_t mg_utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

const char *mg_quote(struct mg_quoted *q, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o >= sizeof q->s - 8) {
            memcpy(q->s + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            q->s[o++] = (char)c;
        } else {
            q->s[o++] = '\\';
            q->s[o++] = 'x';
            q->s[o++] = hex[c >> 4];
            q->s[o++] = hex[c & 15];
        }
    }
    q->s[o] = '\0';
    return q->s;
}

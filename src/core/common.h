/* Common definitions every mcpgate module includes: the one status enum, the
 * release-mode assert, small helpers, and the poisoning of unsafe libc calls. */
#ifndef MG_CORE_COMMON_H
#define MG_CORE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One status space for the whole code base: 0 is success, every failure is a
 * negative MG_E* value. Protocol errors (HTTP status, JSON-RPC codes) are data
 * and are mapped once at the edge. */
enum mg_status {
    MG_OK = 0,
    MG_ENOMEM = -1, /* allocation failed */
    MG_ELIMIT = -2, /* a configured bound was hit */
    MG_EPROTO = -3, /* the peer violated its protocol */
    MG_EINVAL = -4, /* bad argument or bad input */
    MG_EAGAIN = -5, /* need more input */
    MG_EIO = -6,    /* operating-system I/O error */
    MG_ENOTFOUND = -7,
    MG_EDENIED = -8,
    MG_ETIMEDOUT = -9,
    MG_ECLOSED = -10, /* the peer went away */
    MG_ETLS = -11,
    MG_ECANCELED = -12, /* the operation was cancelled before it ran */
};

const char *mg_strstatus(int status);

/* An assert that stays in release builds: a security gateway stops rather than
 * run on corrupted state. */
#define MG_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            mg_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)

_Noreturn void mg_assert_fail(const char *expr, const char *file, int line);

#define MG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MG_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define MG_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define MG_UNUSED(x)    (void)(x)

/* Allocation that cannot return NULL: out of memory aborts. A gateway that
 * cannot allocate a few bytes cannot answer anyone correctly either. */
void *mg_xmalloc(size_t n);
void *mg_xcalloc(size_t n, size_t size);
void *mg_xrealloc(void *p, size_t n);
char *mg_xstrdup(const char *s);
char *mg_xstrndup(const char *s, size_t n);

/* Case-insensitive (ASCII) comparison of a length-delimited string with a
 * C string. The first byte is compared inline: most header names differ
 * there, and proxies compare every header against every name they filter. */
static inline unsigned char mg_ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}
bool mg_str_ieq_slow(const char *a, size_t a_len, const char *b);
static inline bool mg_str_ieq(const char *a, size_t a_len, const char *b)
{
    if (a_len == 0)
        return b[0] == '\0';
    if (mg_ascii_lower((unsigned char)a[0]) != mg_ascii_lower((unsigned char)b[0]))
        return false;
    return mg_str_ieq_slow(a, a_len, b);
}
bool mg_str_eq(const char *a, size_t a_len, const char *b);
/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0 if the bytes are not one. */
size_t mg_utf8_seq_len(const unsigned char *s, size_t n);
/* User text quoted for a message: printable ASCII as is, anything else
 * (and '\\') as \xHH, cut at about 60 characters with "...", so a value
 * can never forge a line of its own in "FILE:LINE:COL: message" output or
 * in errors joined by newlines. The result lives in q. */
struct mg_quoted {
    char s[72];
};
const char *mg_quote(struct mg_quoted *q, const char *s, size_t n);
/* Parses a decimal unsigned integer that must fill the whole slice. */
int mg_parse_u64(const char *s, size_t len, uint64_t *out);
/* v in decimal, without printf (hot paths): the digits are written to the
 * end of buf, which they fill from the returned pointer on (no NUL). */
#define MG_U64_DEC 20
char *mg_u64_dec(char buf[MG_U64_DEC], uint64_t v);

/* Monotonic time in milliseconds / nanoseconds. */
uint64_t mg_now_ms(void);
uint64_t mg_now_ns(void);

/* Banned calls. Fortified headers may define some of them as macros (clang
 * does), and a macro cannot be poisoned, so each is poisoned only when it is
 * a plain function here. */
#if defined(__GNUC__) && !defined(MG_NO_POISON)
#ifndef strcpy
#pragma GCC poison strcpy
#endif
#ifndef strcat
#pragma GCC poison strcat
#endif
#ifndef sprintf
#pragma GCC poison sprintf
#endif
#ifndef gets
#pragma GCC poison gets
#endif
#ifndef strtok
#pragma GCC poison strtok
#endif
#ifndef atoi
#pragma GCC poison atoi
#endif
#endif

#endif

/* application/x-www-form-urlencoded bodies and URL query strings, as the
 * OAuth endpoints and sign-in forms read them: the WHATWG URL standard's
 * urlencoded parser (§5.1: split on '&', skip empty sequences, split each at
 * the first '=', '+' is a space, percent-decode), made strict where the
 * standard is lenient, because OAuth parameters are security decisions
 * (RFC 6749 §3.1): a malformed escape, invalid UTF-8 or a NUL after decoding
 * is an error, never a replacement character. Bounded (total bytes, pairs,
 * name and value lengths). Also the encoder for outbound forms and for
 * redirect URLs (RFC 6749 §4.1.2, RFC 9207). Pure: no I/O, no globals. */
#ifndef MG_HTTP_FORM_H
#define MG_HTTP_FORM_H

#include "core/buf.h"

/* Defaults: a token or sign-in request is a few hundred bytes; a client
 * assertion JWT or a client metadata URL a few KiB. */
#define MG_FORM_MAX_BYTES 16384
#define MG_FORM_MAX_PAIRS 64
#define MG_FORM_MAX_NAME  128
#define MG_FORM_MAX_VALUE 8192

struct mg_form_limits {
    size_t max_bytes; /* encoded input, all feeds together */
    size_t max_pairs;
    size_t max_name;  /* decoded bytes of one name */
    size_t max_value; /* decoded bytes of one value */
};

#define MG_FORM_LIMITS_DEFAULT                                                                     \
    ((struct mg_form_limits){MG_FORM_MAX_BYTES, MG_FORM_MAX_PAIRS, MG_FORM_MAX_NAME,               \
                             MG_FORM_MAX_VALUE})

/* One decoded pair. Both strings are NUL-terminated, valid UTF-8 (RFC 3629)
 * and hold no NUL, so they can be used as C strings; the lengths are given
 * anyway. A sequence without '=' gives an empty value. */
struct mg_form_pair {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
};

/* A parsed form. pairs[0..n_pairs) are in input order, owned by the form and
 * read-only for callers; the other fields are the parser's. */
struct mg_form {
    struct mg_form_pair *pairs;
    size_t n_pairs;

    struct mg_form_limits lim;
    struct mg_buf name, value; /* the pair being decoded */
    size_t n_bytes;            /* encoded bytes fed so far */
    int status;                /* first error, sticky */
    unsigned esc;              /* hex digits of a '%' escape still owed: 0, 2 or 1 */
    unsigned char esc_hi;      /* the first of them */
    bool in_value;             /* past the pair's '=' */
    bool in_pair;              /* the current sequence is not empty */
    bool ended;
};

/* Prepares f for feeding; lim NULL means MG_FORM_LIMITS_DEFAULT (the limits
 * are copied). Every initialised form must be released with mg_form_fini,
 * whatever the parse returned. */
void mg_form_init(struct mg_form *f, const struct mg_form_limits *lim);
/* Frees the pairs and the parser state; f may then be initialised again. */
void mg_form_fini(struct mg_form *f);

/* Feeds len encoded bytes (data is only read during the call). Input may be
 * split anywhere, even inside an escape; the result is the same as feeding it
 * whole. Returns 0, or the first error, which sticks to f:
 *   MG_ELIMIT  total bytes, pair count, a name or a value over its limit;
 *   MG_EINVAL  '%' not followed by two hex digits, a decoded name or value
 *              that is not UTF-8 or holds a NUL (%00). */
int mg_form_feed(struct mg_form *f, const char *data, size_t len);
/* Ends the input: completes the last pair. Returns 0 or the sticky error
 * (MG_EINVAL if the input ends inside an escape). After a 0 the form may be
 * queried; feeding an ended form is MG_EINVAL. */
int mg_form_end(struct mg_form *f);
/* mg_form_init + mg_form_feed + mg_form_end over one buffer. f must be
 * released with mg_form_fini whatever this returns. */
int mg_form_parse(struct mg_form *f, const struct mg_form_limits *lim, const char *data,
                  size_t len);

/* Looks name up in a form that ended with 0 (asserted). On 0 *value points at
 * the pair's value (owned by f, valid until mg_form_fini). MG_ENOTFOUND if
 * absent; MG_EINVAL if name appears more than once (RFC 6749 §3.1: "Request
 * and response parameters MUST NOT be included more than once"). *value is
 * NULL on failure. */
int mg_form_get(const struct mg_form *f, const char *name, const char **value);
/* How many pairs are called name: for the parameters that may repeat, such
 * as "resource" (RFC 8707 §2), read pairs[] directly. */
size_t mg_form_count_of(const struct mg_form *f, const char *name);

/* Percent-encodes len bytes of s onto b: everything except RFC 3986
 * unreserved characters (ALPHA DIGIT - . _ ~) becomes %XX with upper-case
 * hex (so a space is %20, never '+'; every urlencoded parser reads both).
 * MG_ELIMIT if b's cap would be passed; b is then unchanged. */
int mg_form_encode(struct mg_buf *b, const char *s, size_t len);
/* Appends "name=value", both encoded, preceded by '&' when b is not empty:
 * b holds only the form being built. MG_ELIMIT as above, b unchanged. */
int mg_form_append(struct mg_buf *b, const char *name, const char *value);

/* A parameter to add to a URL; both strings are the caller's. */
struct mg_form_param {
    const char *name;
    const char *value;
};

/* Appends url to b with params added to its query, for the redirect back to a
 * client's redirect_uri ("code", "state", "iss"). RFC 6749 §3.1.2: the
 * registered URI's query is kept byte for byte and extended ('?' or '&' as
 * needed). MG_EINVAL, b unchanged, if url is empty, holds a fragment (§3.1.2
 * forbids one), a byte that cannot appear in a Location header (controls,
 * space, non-ASCII), a query that does not parse as a form, or already has
 * one of the parameters' names (the client could not tell which is ours).
 * MG_ELIMIT if b's cap would be passed. */
int mg_form_url_append(struct mg_buf *b, const char *url, const struct mg_form_param *params,
                       size_t n_params);

#endif

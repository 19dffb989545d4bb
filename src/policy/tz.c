/* Time zones for policy criteria: TZif parsing (RFC 8536), the POSIX TZ
 * rules of a TZif footer (POSIX.1-2017 §8.3, with RFC 8536 §3.3.1's
 * extensions), and civil-date arithmetic. Everything but mg_policy_tz_load
 * is pure; lookups allocate nothing. */
#include "policy/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A POSIX TZ rule date: Jn (1..365, February 29 never counted), n (0..365),
 * or Mm.w.d (month, week 1..5 where 5 is the last, weekday 0 = Sunday). */
enum rule_kind { RULE_JULIAN1, RULE_JULIAN0, RULE_MWD };

struct rule_date {
    enum rule_kind kind;
    int n, m, w, d;
    int32_t time; /* seconds after local midnight, -167h..167h */
};

struct posix_tz {
    bool valid;
    bool has_dst;
    int32_t std_off, dst_off; /* seconds east of UTC */
    struct rule_date start, end;
};

struct mg_policy_tz {
    int64_t *trans; /* ascending transition times */
    uint8_t *trans_type;
    size_t n_trans;
    int32_t *type_off; /* utoff of each local time type */
    size_t n_types;
    struct posix_tz footer;
    int32_t fixed; /* used when n_types == 0 */
};

/* ---------------------------------------------------------------------------
 * Civil dates (proleptic Gregorian), by counting days in 400-year eras.
 */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t mg_policy_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;
    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void mg_policy_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t z = days + 719468, era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
    static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* ---------------------------------------------------------------------------
 * POSIX TZ strings (the TZif footer), e.g. "CET-1CEST,M3.5.0,M10.5.0/3".
 */

struct scan {
    const char *s, *end;
};

static bool sc_digit(const struct scan *sc)
{
    return sc->s < sc->end && *sc->s >= '0' && *sc->s <= '9';
}

static bool sc_num(struct scan *sc, int max_digits, int *out)
{
    int v = 0, n = 0;
    while (sc_digit(sc) && n < max_digits) {
        v = v * 10 + (*sc->s++ - '0');
        n++;
    }
    *out = v;
    return n > 0;
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits,
 * '+' and '-'. */
static bool sc_name(struct scan *sc)
{
    const char *start = sc->s;
    if (sc->s < sc->end && *sc->s == '<') {
        sc->s++;
        start = sc->s;
        while (sc->s < sc->end && *sc->s != '>') {
            char c = *sc->s;
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '-'))
                return false;
            sc->s++;
        }
        if (sc->s == sc->end || sc->s - start < 3)
            return false;
        sc->s++;
        return true;
    }
    while (sc->s < sc->end &&
           ((*sc->s >= 'A' && *sc->s <= 'Z') || (*sc->s >= 'a' && *sc->s <= 'z')))
        sc->s++;
    return sc->s - start >= 3;
}

/* [+-]hh[:mm[:ss]] with hh at most max_h; the value in seconds. */
static bool sc_hms(struct scan *sc, int max_h, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (sc->s < sc->end && (*sc->s == '+' || *sc->s == '-'))
        sign = *sc->s++ == '-' ? -1 : 1;
    if (!sc_num(sc, 3, &h) || h > max_h)
        return false;
    if (sc->s < sc->end && *sc->s == ':') {
        sc->s++;
        if (!sc_num(sc, 2, &m) || m > 59)
            return false;
        if (sc->s < sc->end && *sc->s == ':') {
            sc->s++;
            if (!sc_num(sc, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

static bool sc_rule_date(struct scan *sc, struct rule_date *r)
{
    if (sc->s < sc->end && *sc->s == 'J') {
        sc->s++;
        r->kind = RULE_JULIAN1;
        if (!sc_num(sc, 3, &r->n) || r->n < 1 || r->n > 365)
            return false;
    } else if (sc->s < sc->end && *sc->s == 'M') {
        sc->s++;
        r->kind = RULE_MWD;
        if (!sc_num(sc, 2, &r->m) || r->m < 1 || r->m > 12)
            return false;
        if (sc->s == sc->end || *sc->s++ != '.' || !sc_num(sc, 1, &r->w) || r->w < 1 || r->w > 5)
            return false;
        if (sc->s == sc->end || *sc->s++ != '.' || !sc_num(sc, 1, &r->d) || r->d > 6)
            return false;
    } else {
        r->kind = RULE_JULIAN0;
        if (!sc_num(sc, 3, &r->n) || r->n > 365)
            return false;
    }
    r->time = 7200;
    if (sc->s < sc->end && *sc->s == '/') {
        sc->s++;
        /* RFC 8536 §3.3.1: hours may range over -167..167. */
        if (!sc_hms(sc, 167, &r->time))
            return false;
    }
    return true;
}

static bool posix_parse(const char *s, size_t len, struct posix_tz *out)
{
    struct scan sc = {s, s + len};
    int32_t off;
    memset(out, 0, sizeof *out);
    if (len == 0)
        return true; /* no rule: the last transition's type holds */
    if (!sc_name(&sc) || !sc_hms(&sc, 24, &off))
        return false;
    out->std_off = -off; /* POSIX offsets count hours west */
    out->dst_off = out->std_off + 3600;
    if (sc.s < sc.end) {
        if (!sc_name(&sc))
            return false;
        out->has_dst = true;
        if (sc.s < sc.end && *sc.s != ',') {
            if (!sc_hms(&sc, 24, &off))
                return false;
            out->dst_off = -off;
        }
        if (sc.s < sc.end) {
            if (*sc.s++ != ',' || !sc_rule_date(&sc, &out->start) || sc.s == sc.end ||
                *sc.s++ != ',' || !sc_rule_date(&sc, &out->end))
                return false;
        } else {
            /* POSIX leaves the default rule to the implementation; the
             * United States' since 2007 is what other libraries use. */
            out->start = (struct rule_date){.kind = RULE_MWD, .m = 3, .w = 2, .d = 0, .time = 7200};
            out->end = (struct rule_date){.kind = RULE_MWD, .m = 11, .w = 1, .d = 0, .time = 7200};
        }
    }
    if (sc.s != sc.end)
        return false;
    out->valid = true;
    return true;
}

/* The day (since the epoch) a rule date falls on in year y. */
static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    int64_t jan1 = mg_policy_days_from_civil(y, 1, 1), first;
    int wd1, day;
    switch (r->kind) {
    case RULE_JULIAN1: return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60 ? 1 : 0);
    case RULE_JULIAN0: return jan1 + r->n;
    case RULE_MWD:
    default:
        first = mg_policy_days_from_civil(y, (unsigned)r->m, 1);
        wd1 = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        day = 1 + (r->d - wd1 + 7) % 7 + (r->w - 1) * 7;
        while ((unsigned)day > month_days(y, (unsigned)r->m))
            day -= 7;
        return first + day - 1;
    }
}

static int32_t posix_offset(const struct posix_tz *p, int64_t t)
{
    int64_t y, start, end;
    unsigned m, d;
    if (!p->has_dst)
        return p->std_off;
    mg_policy_civil_from_days(floor_div(t + p->std_off, 86400), &y, &m, &d);
    /* Each transition is given in the local time in force before it. */
    start = rule_day(&p->start, y) * 86400 + p->start.time - p->std_off;
    end = rule_day(&p->end, y) * 86400 + p->end.time - p->dst_off;
    if (start < end)
        return t >= start && t < end ? p->dst_off : p->std_off;
    return t >= end && t < start ? p->std_off : p->dst_off;
}

/* ---------------------------------------------------------------------------
 * TZif (RFC 8536).
 */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_header {
    int version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static bool header_parse(const unsigned char *p, size_t len, struct tzif_header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    h->version = p[4] == 0 ? 1 : p[4] - '0';
    if (h->version < 1 || h->version > 4)
        return false;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return true;
}

/* Bytes of the data block after a header, with 4- or 8-byte times;
 * SIZE_MAX when the counts are out of bounds. */
static size_t block_len(const struct tzif_header *h, size_t tsize)
{
    if (h->timecnt > MG_POLICY_TZ_MAX_TRANS || h->typecnt > MG_POLICY_TZ_MAX_TYPES ||
        h->charcnt > 65536 || h->leapcnt > 65536 || (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return SIZE_MAX;
    return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

void mg_policy_tz_free(struct mg_policy_tz *z)
{
    if (z == NULL)
        return;
    free(z->trans);
    free(z->trans_type);
    free(z->type_off);
    free(z);
}

int mg_policy_tz_parse(const unsigned char *data, size_t len, struct mg_policy_tz **out,
                       const char **why)
{
    struct tzif_header h;
    struct mg_policy_tz *z = NULL;
    const unsigned char *p = data, *end = data + len;
    size_t tsize = 4, blen;
    int rc = MG_EINVAL;

    *out = NULL;
    *why = "not a TZif file";
    if (!header_parse(p, len, &h))
        goto done;
    blen = block_len(&h, 4);
    *why = "TZif counts out of bounds";
    if (h.version >= 2) {
        /* Skip the version 1 block: the 64-bit one that follows is the
         * complete one (RFC 8536 §3.1). */
        if (blen == SIZE_MAX || (size_t)(end - p) - 44 < blen)
            goto done;
        p += 44 + blen;
        *why = "bad second TZif header";
        if (!header_parse(p, (size_t)(end - p), &h))
            goto done;
        tsize = 8;
    }
    blen = block_len(&h, tsize);
    *why = "TZif counts out of bounds";
    if (blen == SIZE_MAX || h.typecnt == 0 || h.charcnt == 0 || (size_t)(end - p) < 44 ||
        (size_t)(end - p) - 44 < blen)
        goto done;
    *why = "TZif leap-second records are not supported (use a zone outside right/)";
    if (h.leapcnt != 0)
        goto done;
    p += 44;

    z = mg_xcalloc(1, sizeof *z);
    z->n_trans = h.timecnt;
    z->n_types = h.typecnt;
    z->trans = mg_xcalloc(h.timecnt ? h.timecnt : 1, sizeof *z->trans);
    z->trans_type = mg_xcalloc(h.timecnt ? h.timecnt : 1, 1);
    z->type_off = mg_xcalloc(h.typecnt, sizeof *z->type_off);
    *why = "TZif transitions are not in ascending order";
    for (size_t i = 0; i < h.timecnt; i++) {
        z->trans[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            goto done;
    }
    p += h.timecnt * tsize;
    *why = "TZif transition names a missing local time type";
    for (size_t i = 0; i < h.timecnt; i++) {
        z->trans_type[i] = p[i];
        if (p[i] >= h.typecnt)
            goto done;
    }
    p += h.timecnt;
    *why = "TZif offset out of range";
    for (size_t i = 0; i < h.typecnt; i++) {
        int32_t off = (int32_t)be32(p + i * 6);
        /* RFC 8536 §3.2: -89999..93599 (just under -25 h .. +26 h). */
        if (off < -89999 || off > 93599 || p[i * 6 + 4] > 1 || p[i * 6 + 5] >= h.charcnt)
            goto done;
        z->type_off[i] = off;
    }
    p += (size_t)h.typecnt * 6 + h.charcnt + h.isstdcnt + h.isutcnt;

    if (h.version >= 2) {
        const unsigned char *nl;
        *why = "bad TZif footer";
        if (p >= end || *p != '\n')
            goto done;
        p++;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL || !posix_parse((const char *)p, (size_t)(nl - p), &z->footer))
            goto done;
    }
    *why = NULL;
    *out = z;
    z = NULL;
    rc = MG_OK;
done:
    mg_policy_tz_free(z);
    return rc;
}

struct mg_policy_tz *mg_policy_tz_fixed(int32_t utoff)
{
    struct mg_policy_tz *z = mg_xcalloc(1, sizeof *z);
    z->fixed = utoff;
    return z;
}

static bool two_digits(const char *s, int *out)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return false;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return true;
}

bool mg_policy_tz_fixed_parse(const char *name, int32_t *utoff)
{
    size_t n = strlen(name);
    int h, m = 0;
    if (strcmp(name, "UTC") == 0 || strcmp(name, "GMT") == 0 || strcmp(name, "Z") == 0) {
        *utoff = 0;
        return true;
    }
    if (n < 3 || (name[0] != '+' && name[0] != '-') || !two_digits(name + 1, &h))
        return false;
    if (n == 6 && name[3] == ':') {
        if (!two_digits(name + 4, &m))
            return false;
    } else if (n == 5) {
        if (!two_digits(name + 3, &m))
            return false;
    } else if (n != 3) {
        return false;
    }
    if (h > 18 || m > 59 || (h == 18 && m > 0))
        return false;
    *utoff = (name[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return true;
}

static bool zone_name_ok(const char *name)
{
    size_t n = strlen(name), comp = 0;
    if (n == 0 || n > MG_POLICY_TZ_NAME_MAX || name[0] == '/')
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        if (c == '/' || c == '\0') {
            const char *seg = name + i - comp;
            if (comp == 0 || (comp == 1 && seg[0] == '.') ||
                (comp == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            comp = 0;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '+' || c == '-'))
            return false;
        comp++;
    }
    return true;
}

int mg_policy_tz_load(const char *tzdir, const char *name, struct mg_policy_tz **out,
                      const char **why)
{
    char path[512];
    unsigned char *data = NULL;
    size_t len = 0;
    struct stat st;
    int fd = -1, rc = MG_EINVAL;
    int32_t off;

    *out = NULL;
    if (mg_policy_tz_fixed_parse(name, &off)) {
        *out = mg_policy_tz_fixed(off);
        *why = NULL;
        return MG_OK;
    }
    *why = "not a time zone name";
    if (!zone_name_ok(name))
        return MG_EINVAL;
    if (tzdir == NULL)
        tzdir = MG_POLICY_TZDIR;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", tzdir, name) >= sizeof path)
        return MG_EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "unknown time zone";
        return errno == ENOENT || errno == ENOTDIR ? MG_ENOTFOUND : MG_EINVAL;
    }
    *why = "time zone file is not a regular file of at most 256 KiB";
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MG_POLICY_TZ_FILE_MAX)
        goto done;
    data = mg_xmalloc((size_t)st.st_size + 1);
    while (len < (size_t)st.st_size + 1) {
        ssize_t got = read(fd, data + len, (size_t)st.st_size + 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            *why = "cannot read the time zone file";
            goto done;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (len > (size_t)st.st_size)
        goto done; /* grew while read */
    rc = mg_policy_tz_parse(data, len, out, why);
done:
    free(data);
    close(fd);
    return rc;
}

int32_t mg_policy_tz_offset(const struct mg_policy_tz *z, int64_t t)
{
    size_t lo, hi;
    if (z->n_types == 0)
        return z->fixed;
    /* RFC 8536 §3.2: before the first transition, type 0 holds. */
    if (z->n_trans == 0 || t < z->trans[0])
        return z->n_trans == 0 && z->footer.valid ? posix_offset(&z->footer, t) : z->type_off[0];
    if (t >= z->trans[z->n_trans - 1] && z->footer.valid)
        return posix_offset(&z->footer, t);
    lo = 0;
    hi = z->n_trans; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->type_off[z->trans_type[lo]];
}

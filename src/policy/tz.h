/* Time zones and civil dates for the time-based policy criteria (date,
 * day_of_week, time_of_day). A zone is UTC, a fixed offset, or an IANA zone
 * read once, when a policy is compiled, from the system's TZif files
 * (RFC 8536), including the POSIX TZ rule in their footer for times past the
 * last transition. Looking up an offset is pure and allocates nothing, so
 * policy evaluation can call it on the hot path. */
#ifndef MG_POLICY_TZ_H
#define MG_POLICY_TZ_H

#include "core/common.h"

#define MG_POLICY_TZDIR        "/usr/share/zoneinfo"
#define MG_POLICY_TZ_NAME_MAX  64
#define MG_POLICY_TZ_FILE_MAX  (256 * 1024)
#define MG_POLICY_TZ_MAX_TRANS 4096
#define MG_POLICY_TZ_MAX_TYPES 256

struct mg_policy_tz;

/* Parses TZif data (RFC 8536, versions 1 to 4). Files with leap-second
 * records ("right/" zones) are refused: policy times are POSIX times. On
 * failure *why says what is wrong (a static string). Pure. */
int mg_policy_tz_parse(const unsigned char *data, size_t len, struct mg_policy_tz **out,
                       const char **why);

/* A zone whose offset never changes (seconds east of UTC). */
struct mg_policy_tz *mg_policy_tz_fixed(int32_t utoff);

/* Parses a zone name that needs no file: "UTC", "GMT", "Z", or an ISO 8601
 * offset "+HH:MM", "-HH:MM", "+HHMM", "+HH". Returns false for any other
 * name. */
bool mg_policy_tz_fixed_parse(const char *name, int32_t *utoff);

/* Loads a zone by name: a fixed one above, else the IANA name (letters,
 * digits, "._+-" and "/" between components; no "." or ".." component) read
 * from tzdir (NULL: MG_POLICY_TZDIR). MG_EINVAL for a bad name or file,
 * MG_ENOTFOUND for a missing one; *why says which. */
int mg_policy_tz_load(const char *tzdir, const char *name, struct mg_policy_tz **out,
                      const char **why);

void mg_policy_tz_free(struct mg_policy_tz *z);

/* The offset from UTC, in seconds east, in force at unix time t. Pure. */
int32_t mg_policy_tz_offset(const struct mg_policy_tz *z, int64_t t);

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31),
 * and back. */
int64_t mg_policy_days_from_civil(int64_t y, unsigned m, unsigned d);
void mg_policy_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

#endif

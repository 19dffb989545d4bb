/* Audit records: one per policy decision, allowed or denied. This module is
 * pure (no threads, no I/O): it builds a record on the loop that made the
 * decision (a plain struct: bounded copies of its strings, the arguments
 * already reduced to text as audit.arguments says), and the writer thread
 * turns it into its canonical text (compact JSON, keys sorted) chained to
 * the record before it by that record's SHA-256. The writer (audit.h) and
 * the verifier (verify.h) are built on it.
 *
 * A record, as written (one line of the file sink; the store's record
 * column; one syslog message):
 *
 *   {"arguments":{"password":"[redacted]","sql":"DROP TABLE t"},"decision":"deny",
 *    "decision_id":"9f2c…(32 hex)","identity":{"auth_method":"oauth","client_id":"…",
 *    "email":"a@example.com","groups":["admins"],"subject":"user:a@example.com",
 *    "token_id":"…"},"jsonrpc_id":7,"latency_ms":0,"method":"tools/call","name":"execute",
 *    "prev":"…(64 hex)","reason":"denied_by_rule","route":"sql",
 *    "rule":"routes[sql].policy[0].deny.or[1]","seq":42,"session":"…",
 *    "source":"203.0.113.9","time":"2025-06-01T12:00:00.123Z","upstream_status":0,"v":1}
 *
 * Every field is always present (strings "" and numbers 0 when unknown,
 * jsonrpc_id null), except the arguments: "arguments" (redacted, full),
 * "argument_keys" (keys) or neither (none). */
#ifndef MG_AUDIT_RECORD_H
#define MG_AUDIT_RECORD_H

#include "authn/identity.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "core/common.h"

#include <jansson.h>

#define MG_AUDIT_HASH_HEX       64        /* SHA-256 as lower-case hex */
#define MG_AUDIT_DECISION_ID    32        /* 128 random bits as lower-case hex */
#define MG_AUDIT_MAX_STRING     256       /* redacted: longer strings are cut */
#define MG_AUDIT_MAX_FIELD      1024      /* route, names, identity strings: longer are cut */
#define MG_AUDIT_MAX_ARGS_BYTES (1 << 20) /* serialised arguments kept, any mode */
#define MG_AUDIT_MAX_DEPTH      32        /* argument nesting kept; deeper is a marker */
/* The longest canonical record: the arguments' bound (measured serialised)
 * plus every other field at its bound, escaped: about 270 strings (256
 * groups) of at most ~1,060 bytes, each at most 6 times longer as JSON
 * ("\u001f"), is under 2 MiB. Anything longer in a file or table was not
 * written by mcpgate; readers stop there. */
#define MG_AUDIT_MAX_RECORD_BYTES (MG_AUDIT_MAX_ARGS_BYTES + (3 << 20))

/* How every reader parses a record: duplicate keys are never written, and
 * \u0000 may be (full arguments are kept as sent; JSON allows it). */
#define MG_AUDIT_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

struct mg_audit_record;
struct mg_args_flat; /* mcp/args.h */

/* A record stamped with the current time (CLOCK_REALTIME, ms) and a fresh
 * decision id, decision "deny" until set, every other field empty. Never
 * NULL (allocation failure aborts). Owned by the caller until submitted
 * (mg_audit_submit takes it) or freed. */
struct mg_audit_record *mg_audit_record_new(void);
/* NULL is a no-op. */
void mg_audit_record_free(struct mg_audit_record *r);
/* Records are made on the workers and freed on the audit writer's thread:
 * through malloc, every one went to the arena of a thread whose cache never
 * held any (bench/RESULTS.md). Between start and stop, a thread's records
 * come from its own pool, and a record freed on another thread goes back to
 * its pool through a lock-free list. Start before the threads that make
 * records; stop after every record is freed and those threads are gone
 * (it frees the pools). Without start, records are plain malloc blocks. */
void mg_audit_record_pool_start(void);
void mg_audit_record_pool_stop(void);

/* The 32-hex-digit decision id, for the caller's denial (data.decision_id).
 * Valid while the record lives; copy it before submitting. */
const char *mg_audit_record_decision_id(const struct mg_audit_record *r);
int64_t mg_audit_record_time_ms(const struct mg_audit_record *r);

/* Setters copy what they are given (strings, identity fields, JSON), so the
 * caller's values may go away at once. NULL strings mean "". Strings that
 * are not valid UTF-8 have each bad byte replaced by U+FFFD; strings over
 * MG_AUDIT_MAX_FIELD bytes are cut (see record.c). */
void mg_audit_record_set_time_ms(struct mg_audit_record *r, int64_t unix_ms);
void mg_audit_record_set_route(struct mg_audit_record *r, const char *route);
/* NULL: anonymous (auth_method "none"). */
void mg_audit_record_set_identity(struct mg_audit_record *r, const struct mg_identity *id);
void mg_audit_record_set_source(struct mg_audit_record *r, const char *address);
void mg_audit_record_set_session(struct mg_audit_record *r, const char *mcp_session_id);
/* A JSON-RPC id: a string, an integer, a real or null (anything else is
 * recorded as null). id_json is its JSON text (mg_jsonrpc_info.id_json);
 * NULL or unparsable text is null. */
void mg_audit_record_set_jsonrpc_id(struct mg_audit_record *r, const json_t *id);
void mg_audit_record_set_jsonrpc_id_json(struct mg_audit_record *r, const char *id_json);
/* method: the JSON-RPC method; name: the tool or prompt name, or the
 * resource URI ("" when the method has none). */
void mg_audit_record_set_call(struct mg_audit_record *r, const char *method, const char *name);
/* The call's arguments (params.arguments), reduced per mode; NULL: none. */
void mg_audit_record_set_arguments(struct mg_audit_record *r, const json_t *args,
                                   enum mg_conf_audit_args mode);
/* The same for arguments in their flat form (mcp/args.h): byte for byte the
 * text mg_audit_record_set_arguments gives for the tree they stand for;
 * their strings are copied, so the body may go away at once. */
void mg_audit_record_set_arguments_flat(struct mg_audit_record *r, const struct mg_args_flat *args,
                                        enum mg_conf_audit_args mode);
/* rule: the path of the rule that decided ("routes[sql].policy[0].deny.or[1]");
 * reason: the reason code. */
void mg_audit_record_set_decision(struct mg_audit_record *r, bool allow, const char *rule,
                                  const char *reason);
/* The upstream's HTTP status (0: the request never reached it) and the
 * time from the request's arrival to the decision's outcome. */
void mg_audit_record_set_upstream(struct mg_audit_record *r, int status, int64_t latency_ms);

/* The record's fields as the store indexes them (bounded as in the text);
 * pointers valid while r lives and until the next call. */
struct mg_audit_record_cols {
    const char *route, *subject, *email, *method, *name, *decision;
};
void mg_audit_record_cols(struct mg_audit_record *r, struct mg_audit_record_cols *out);

/* The canonical text of r chained at seq after prev (MG_AUDIT_HASH_HEX hex
 * digits), appended to out: compact JSON with sorted keys, without a
 * newline, at most MG_AUDIT_MAX_RECORD_BYTES; hash gets its SHA-256 in hex.
 * Calling it again (another seq, after a lost race for the chain's head)
 * gives the text for that seq. MG_ELIMIT (nothing appended) if out cannot
 * take MG_AUDIT_MAX_RECORD_BYTES more. */
int mg_audit_record_append(const struct mg_audit_record *r, int64_t seq, const char *prev,
                           struct mg_buf *out, char hash[MG_AUDIT_HASH_HEX + 1]);
/* The same text in a new string: *out (malloc'd, caller frees), *len. */
int mg_audit_record_chain(struct mg_audit_record *r, int64_t seq, const char *prev, char **out,
                          size_t *len, char hash[MG_AUDIT_HASH_HEX + 1]);
/* Bytes the record holds, roughly (for the queue's byte bound). */
size_t mg_audit_record_size(const struct mg_audit_record *r);
/* Room in every record for the writer's queue entry (audit.c), valid while
 * the record lives: queueing then allocates nothing, and the writer thread
 * frees one block per record. */
#define MG_AUDIT_RECORD_LINK 64
void *mg_audit_record_link(struct mg_audit_record *r);

/* Argument reduction alone (what set_arguments stores): a new value the
 * caller owns, or NULL for MG_CONF_AUDIT_ARGS_NONE / no arguments. For
 * MG_CONF_AUDIT_ARGS_KEYS the sorted top-level names (NULL if args is not an
 * object). */
json_t *mg_audit_args_reduce(const json_t *args, enum mg_conf_audit_args mode);
/* True if values under this key are masked in redacted mode. */
bool mg_audit_is_secret_key(const char *key);

/* SHA-256 of data as lower-case hex. */
void mg_audit_hash_hex(const void *data, size_t len, char out[MG_AUDIT_HASH_HEX + 1]);
/* 64 '0's: the prev of the first record. */
extern const char mg_audit_zero_hash[MG_AUDIT_HASH_HEX + 1];
/* RFC 3339 UTC with milliseconds: "2025-06-01T12:00:00.123Z" (cap >= 25). */
void mg_audit_format_time(int64_t unix_ms, char *out, size_t cap);
/* Parses RFC 3339 ("2025-06-01T12:00:00Z", with optional fraction and a
 * numeric offset), a date ("2025-06-01", midnight UTC) or a duration back
 * from now_ms ("90s", "15m", "24h", "7d"). MG_EINVAL otherwise. */
int mg_audit_parse_since(const char *s, int64_t now_ms, int64_t *unix_ms);

#endif

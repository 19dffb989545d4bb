/* The compiled form of a policy, shared by the compiler (compile.c), the
 * evaluator (eval.c) and the lint checks (lint.c). Flat arrays, resolved
 * once: literals interned and sorted, CIDRs parsed, JSON Pointers split,
 * time zones loaded. Nothing here changes after mg_policy_compile returns. */
#ifndef MG_POLICY_POLICY_INT_H
#define MG_POLICY_POLICY_INT_H

#include "policy/policy.h"
#include "policy/tz.h"

enum op_kind { OP_AND, OP_OR, OP_NOT, OP_NOR };
enum action_kind { ACT_ALLOW, ACT_DENY };

enum crit_kind {
    CR_ACCEPT,
    CR_REJECT,
    CR_AUTHENTICATED_USER,
    CR_USER,
    CR_EMAIL,
    CR_DOMAIN,
    CR_GROUPS,
    CR_CLAIM,
    CR_CLIENT_ID,
    CR_HTTP_METHOD,
    CR_HTTP_PATH,
    CR_SOURCE_IP,
    CR_DATE,
    CR_DAY_OF_WEEK,
    CR_TIME_OF_DAY,
    CR_MCP_METHOD,
    CR_MCP_TOOL,
    CR_MCP_TOOL_CLASS,
    CR_MCP_ARGUMENT,
    CR_MCP_RESOURCE,
    CR_MCP_PROMPT,
    CR_COUNT
};

/* A literal from the policy. Criteria on strings use s/len only; the type
 * matters for mcp_argument, where 5, "5", true and null differ. */
enum lit_type { LIT_STR, LIT_NUM, LIT_BOOL, LIT_NULL };

struct lit {
    const char *s; /* NUL-terminated, interned */
    uint32_t len;
    uint32_t hash; /* mg_policy__hash(s, len) */
    uint8_t type;
    bool b;      /* LIT_BOOL */
    bool is_int; /* LIT_NUM: i holds it exactly */
    int64_t i;
    double d; /* LIT_NUM: always set */
};

enum mop_kind {
    M_IS,
    M_NOT,
    M_IN,
    M_NOT_IN,
    M_STARTS_WITH,
    M_ENDS_WITH,
    M_CONTAINS,
    M_HAS,     /* list: some element is the value */
    M_LIST_IS, /* list: exactly one element, and it is the value */
    M_EXCLUDE, /* list: no element is the value */
    M_LT,
    M_LE,
    M_GT,
    M_GE,
    M_EXISTS,
};

/* One matcher operator; a criterion holds all of its operators (AND). */
struct mop {
    uint8_t kind;
    bool sorted; /* in/not_in lits sorted by (len, bytes) for binary search */
    uint32_t n;
    const struct lit *lits;
};

/* A range as two 64-bit words of the address (big-endian read), masked;
 * IPv4 uses the high 32 bits of hi. */
struct cidr {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;
    uint64_t hi, lo;   /* network */
    uint64_t mhi, mlo; /* mask */
};

/* A JSON Pointer segment (unescaped) or a claim path segment. */
struct seg {
    const char *s; /* NUL-terminated */
    uint32_t len;
    int64_t idx; /* array index, or -1 when the segment is not one */
};

enum constness { CONST_UNKNOWN, CONST_TRUE, CONST_FALSE };

struct crit {
    uint8_t kind;
    bool fold;     /* ASCII case-insensitive (domain): literals are lower case */
    uint8_t n_ops; /* string and list matchers, mcp_argument */
    uint8_t constant;
    const struct mop *ops;
    const char *path;
    int line, col;
    union {
        struct {
            const char *key; /* claim: the whole sub-path, tried first */
            const struct seg *seg;
            uint32_t n_seg;
            uint8_t slot; /* 1 + index of the per-decision cache of the value; 0: none */
        } ptr;
        struct {
            const struct cidr *v;
            uint32_t n;
        } ip;
        struct {
            int64_t after, before;
            bool has_after, has_before;
        } date;
        struct {
            uint8_t days; /* bit 0 = Sunday */
            uint8_t zone;
        } dow;
        struct {
            int32_t after, before; /* seconds after local midnight */
            bool has_after, has_before;
            uint8_t zone;
        } tod;
    } u;
};

struct term {
    uint8_t op;
    uint8_t action;
    uint32_t first, n; /* crits[first .. first + n) */
    /* For and: bloom bits of values the caller must have (a group it must
     * be in, a tool name it must call, ...). A decision whose caller bloom
     * lacks one of them skips the term without evaluating it. */
    uint64_t need;
    uint64_t need_caller; /* the bits of need that are not of the item (MG_POLICY__ITEM_KINDS) */
    bool item_dep;        /* some criterion looks at the item: a name or a tool class */
    /* For and: a criterion on the MCP name (pre_kind - 1: tool, prompt or
     * resource) with an is (pre_exact) or starts_with literal of pre_full
     * bytes; its first bytes, zero-padded into a word, and their mask. The
     * evaluator rejects the term when the name does not begin with them.
     * pre_kind 0: none. */
    uint8_t pre_kind;
    bool pre_exact;
    uint32_t pre_full;
    uint64_t pre_word, pre_mask;
    const char *path;
    int line, col;
};

/* A finding the compiler already knows about, replayed by lint. */
struct note {
    const char *path;
    int line, col;
    const char *msg;
};

/* Distinct claim paths and argument pointers whose resolved value one
 * decision caches (criteria sharing a path resolve it once). */
#define POLICY_PTR_SLOTS 32

struct arena_chunk;

struct mg_policy {
    const char *prefix;
    int line, col;
    uint32_t n_rules;
    struct term *allow, *deny;
    uint32_t n_allow, n_deny;
    struct crit *crits;
    uint32_t n_crits;
    struct mg_policy_tz *zones[MG_POLICY_MAX_ZONES];
    const char *zone_names[MG_POLICY_MAX_ZONES];
    uint32_t n_zones;
    struct note *notes;
    uint32_t n_notes;
    uint32_t n_slots;
    uint32_t bloom_kinds; /* bit per crit_kind that some term's need uses */
    struct arena_chunk *arena;
};

/* The attributes that change from item to item of a list answer; a
 * prepared evaluation (mg_policy_prep) derives everything else once. */
#define MG_POLICY__ITEM_KINDS                                                                      \
    (1u << CR_MCP_TOOL | 1u << CR_MCP_PROMPT | 1u << CR_MCP_RESOURCE | 1u << CR_MCP_TOOL_CLASS)

/* FNV-1a, for comparing group names against literals without memcmp. */
static inline uint32_t mg_policy__hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The bloom bit of a value of an attribute (crit_kind). */
static inline uint64_t mg_policy__bloom(unsigned kind, uint32_t hash)
{
    uint32_t x = (hash ^ (kind * 0x9e3779b9u)) * 0x85ebca6bu;
    return 1ull << (x >> 26);
}

/* Names for messages. */
const char *mg_policy__crit_name(enum crit_kind k);
const char *mg_policy__op_name(enum op_kind k);

#endif

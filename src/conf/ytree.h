/* The YAML tree the configuration loader builds (libyaml events to nodes
 * with 1-based positions), shared with the modules that compile their own
 * sections from it (policies) so their errors can point at FILE:LINE:COL.
 * Nodes are owned by the loader and live only while a file is loaded. */
#ifndef MG_CONF_YTREE_H
#define MG_CONF_YTREE_H

#include "core/common.h"

enum mg_ynode_kind { MG_YNODE_SCALAR, MG_YNODE_SEQ, MG_YNODE_MAP };

struct mg_ynode {
    enum mg_ynode_kind kind;
    int line, col; /* 1-based */
    bool plain;    /* an unquoted scalar: only those can be null */
    char *str;     /* scalar text, NUL-terminated, never contains NUL */
    size_t len;
    struct mg_ynode **kids; /* list items, or keys and values alternating */
    size_t n_kids, kids_cap;
};

/* Parses one YAML document into a tree under the loader's rules (no
 * anchors, aliases, tags or duplicate keys; bounded size and nesting), for
 * tools and tests that compile a section on its own (`mcpgate policy`).
 * On failure *err holds "NAME:LINE:COL: message" lines (caller frees) and
 * *root is NULL; an empty document is an error. */
int mg_ytree_parse(const char *name, const char *text, size_t len, struct mg_ynode **root,
                   char **err);
/* Frees a tree from mg_ytree_parse; NULL is a no-op. */
void mg_ytree_free(struct mg_ynode *root);

/* YAML 1.2 core-schema null: an unquoted "", "~", "null", "Null", "NULL". */
bool mg_ynode_is_null(const struct mg_ynode *n);

#endif

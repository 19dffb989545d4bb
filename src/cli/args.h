/* Command-line options for the administration commands, parsed one way:
 * `--flag VALUE` options stored as strings, switches stored as bools, and
 * the remaining words as positional arguments. */
#ifndef MG_CLI_ARGS_H
#define MG_CLI_ARGS_H

#include "core/common.h"

#include <stddef.h>

struct mg_cli_opt {
    const char *flag; /* "--route", "-c", ... */
    size_t off;       /* offsetof the field in the caller's options struct */
    bool is_switch;   /* a bool field set by the flag alone; else a const char * */
};

/* Parses argv[1..argc): options into out, other words into pos (at most
 * max_pos; *n_pos gets how many). Returns 0, or -1 after printing why to
 * stderr (a missing value, an unknown option, one word too many) and for
 * --help / -h, so the caller prints its usage. */
int mg_cli_parse(int argc, char **argv, const struct mg_cli_opt *opts, size_t n_opts, void *out,
                 const char **pos, size_t max_pos, size_t *n_pos);

#endif
